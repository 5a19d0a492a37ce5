--
-- privileges: an ordinary role's writes are captured although it has no
-- right on the dualwrite schema; it can neither read the outbox nor the
-- connection settings, nor switch capture off.
--
CREATE ROLE dw_app NOLOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO dw_app;
SET ROLE dw_app;
INSERT INTO orders VALUES (8001, 'from app role', 10, NULL);
UPDATE orders SET note = 'app was here' WHERE id = 8001;
-- what it may not do
SELECT count(*) FROM dualwrite._outbox_0;
SELECT * FROM dualwrite.tables;
SELECT * FROM dualwrite.status;
SELECT dualwrite.enable('orders');
SELECT dualwrite.disable('orders');
SET session_replication_role = replica;
SET dualwrite.target_server = 'elsewhere';
SHOW dualwrite.target_server;
ALTER TABLE orders DISABLE TRIGGER dualwrite_capture;
DROP TRIGGER dualwrite_capture ON orders;
SELECT umoptions FROM pg_user_mappings WHERE srvname = 'modern';
SELECT srvoptions IS NOT NULL AS sees_server_options FROM pg_foreign_server WHERE srvname = 'modern';
DELETE FROM orders WHERE id = 7002;
RESET ROLE;

SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.orders ORDER BY id;

--
-- The delivering role: every table of a server is delivered through the
-- user mapping of one role (dualwrite.servers), and the modern side is
-- validated through that mapping, privileges included, before anything
-- is stored.  Here dw_deliver, a password-authenticated non-superuser,
-- delivers to its own modern database.
--
CREATE DATABASE dw_modern_pw;
\c dw_modern_pw
REVOKE TEMPORARY ON DATABASE dw_modern_pw FROM PUBLIC;
CREATE TABLE public.pw_orders (id bigint PRIMARY KEY, v text);
\c contrib_regression
CREATE TABLE pw_orders (id bigint PRIMARY KEY, v text);
DO $$
BEGIN
    EXECUTE format('CREATE SERVER modern_pw FOREIGN DATA WRAPPER dualwrite OPTIONS (host %L, port %L, dbname %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), 'dw_modern_pw');
END $$;
-- only superusers choose the delivering role
SET ROLE dw_app;
SELECT dualwrite.set_delivery_role('modern_pw', 'dw_app');
RESET ROLE;
-- each missing piece is named, with what to create or GRANT
SELECT dualwrite.set_delivery_role('modern_pw', 'dw_deliver');
CREATE USER MAPPING FOR dw_deliver SERVER modern_pw OPTIONS (user 'dw_deliver', password 'dw_deliver_pw');
SELECT dualwrite.set_delivery_role('modern_pw', 'dw_deliver');
GRANT SET ON PARAMETER session_replication_role TO dw_deliver;
SELECT dualwrite.set_delivery_role('modern_pw', 'dw_deliver');
GRANT TEMPORARY ON DATABASE dw_modern_pw TO dw_deliver;
SELECT dualwrite.set_delivery_role('modern_pw', 'dw_deliver');
GRANT CREATE ON DATABASE dw_modern_pw TO dw_deliver;
SELECT dualwrite.set_delivery_role('modern_pw', 'dw_deliver');
SELECT server, deliver_as FROM dualwrite.servers WHERE server = 'modern_pw';
-- a superuser's enable() is validated through dw_deliver's mapping: the
-- target's privileges are missing
SELECT dualwrite.enable('pw_orders', target_server => 'modern_pw');
\c dw_modern_pw
GRANT SELECT, INSERT ON public.pw_orders TO dw_deliver;
\c contrib_regression
SELECT dualwrite.enable('pw_orders', target_server => 'modern_pw');
\c dw_modern_pw
GRANT UPDATE, DELETE, TRUNCATE ON public.pw_orders TO dw_deliver;
\c contrib_regression
SELECT dualwrite.enable('pw_orders', target_server => 'modern_pw');
SELECT tbl, enabled_by = current_user::regrole AS enabled_by_me FROM dualwrite.tables WHERE tbl = 'pw_orders'::regclass;
INSERT INTO pw_orders VALUES (1, 'one'), (2, 'two');
SELECT dualwrite.wait_for_delivery('60s');
\c dw_modern_pw
SELECT * FROM pw_orders ORDER BY id;
-- the worker created its progress table as dw_deliver
SELECT relname, relowner::regrole FROM pg_class WHERE relnamespace = '_dualwrite'::regnamespace AND relkind = 'r';
-- a privilege lost on the modern side: the error says where it came from
REVOKE DELETE ON public.pw_orders FROM dw_deliver;
\c contrib_regression
DELETE FROM pw_orders WHERE id = 1;
SELECT dualwrite.wait_for_delivery('1s') AS delivered_without_delete;
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN (SELECT last_error IS NOT NULL FROM dualwrite.status WHERE table_name = 'pw_orders'::regclass);
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT table_name, queued, last_error, last_error_at IS NOT NULL AS has_error_time
FROM dualwrite.status WHERE table_name = 'pw_orders'::regclass;
\c dw_modern_pw
GRANT DELETE ON public.pw_orders TO dw_deliver;
\c contrib_regression
SELECT dualwrite.wait_for_delivery('60s');
-- recovered: both error columns are cleared
SELECT table_name, queued, last_error, last_error_at FROM dualwrite.status WHERE table_name = 'pw_orders'::regclass;

-- Another non-superuser may not send a table through dw_deliver's mapping.
CREATE ROLE dw_intruder NOLOGIN;
GRANT USAGE ON SCHEMA dualwrite TO dw_intruder;
GRANT EXECUTE ON FUNCTION dualwrite.enable(regclass, text, text, jsonb, name, text) TO dw_intruder;
GRANT SELECT ON dualwrite.tables, dualwrite.servers TO dw_intruder;
-- (USAGE on the server, so the refusal shown is the delivering role's)
GRANT USAGE ON FOREIGN SERVER modern_pw TO dw_intruder;
CREATE TABLE intruder_t (id bigint PRIMARY KEY, v text);
ALTER TABLE intruder_t OWNER TO dw_intruder;
SET ROLE dw_intruder;
SELECT dualwrite.enable('intruder_t', target_server => 'modern_pw', target_table => 'public.pw_orders');
RESET ROLE;
SELECT count(*) AS intruder_flagged FROM dualwrite.tables WHERE tbl = 'intruder_t'::regclass;

-- The delivering role is kept as an OID: renaming it changes nothing;
-- dropping it stops that server's delivery with a clear error, and the
-- other servers keep flowing.
CREATE ROLE dw_gone SUPERUSER NOLOGIN;
\c dw_modern
CREATE TABLE public.gone_t (id bigint PRIMARY KEY, v text);
\c contrib_regression
CREATE TABLE gone_t (id bigint PRIMARY KEY, v text);
DO $$
BEGIN
    EXECUTE format('CREATE SERVER modern_gone FOREIGN DATA WRAPPER dualwrite OPTIONS (host %L, port %L, dbname %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), 'dw_modern');
    EXECUTE format('CREATE USER MAPPING FOR dw_gone SERVER modern_gone OPTIONS (user %L)', current_user);
END $$;
SET ROLE dw_gone;
SELECT dualwrite.enable('gone_t', target_server => 'modern_gone');
RESET ROLE;
SELECT server, deliver_as FROM dualwrite.servers WHERE server = 'modern_gone';
IMPORT FOREIGN SCHEMA public LIMIT TO (gone_t) FROM SERVER modern_check INTO modern;
ALTER ROLE dw_gone RENAME TO dw_gone_renamed;
INSERT INTO gone_t VALUES (1, 'before the drop');
SELECT dualwrite.wait_for_delivery('60s');
SELECT server, deliver_as FROM dualwrite.servers WHERE server = 'modern_gone';
DROP USER MAPPING FOR dw_gone_renamed SERVER modern_gone;
DROP ROLE dw_gone_renamed;
INSERT INTO gone_t VALUES (2, 'after the drop');
INSERT INTO orders VALUES (8301, 'other server', 1, NULL);
DO $$
BEGIN
    FOR i IN 1..400 LOOP
        -- (not modern.orders: postgres_fdw reads one snapshot per local transaction)
        EXIT WHEN (SELECT queued = 0 FROM dualwrite.status WHERE table_name = 'orders'::regclass)
              AND (SELECT last_error IS NOT NULL FROM dualwrite.status WHERE table_name = 'gone_t'::regclass);
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT id, customer FROM modern.orders WHERE id = 8301;
SELECT table_name, queued, last_error FROM dualwrite.status WHERE table_name = 'gone_t'::regclass;
SELECT * FROM modern.gone_t ORDER BY id;
-- a superuser names another role: delivery resumes
DO $$
BEGIN
    EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER modern_gone OPTIONS (user %L)', current_user);
END $$;
SELECT dualwrite.set_delivery_role('modern_gone', current_user::regrole);
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.gone_t ORDER BY id;
SELECT table_name, queued, last_error, last_error_at FROM dualwrite.status WHERE table_name = 'gone_t'::regclass;
-- Delegation: a non-superuser given EXECUTE on enable()/disable(), USAGE on
-- the schema and on the server (and no right at all on the catalog)
-- enables its own table through its own mapping; it can neither write the
-- catalog (so it cannot forge who enabled a table or who delivers) nor
-- disable a table it does not own.
\c dw_modern_pw
CREATE TABLE public.pw_own (id bigint PRIMARY KEY, v text);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.pw_own TO dw_deliver;
\c contrib_regression
CREATE TABLE pw_own (id bigint PRIMARY KEY, v text);
ALTER TABLE pw_own OWNER TO dw_deliver;
GRANT USAGE ON SCHEMA dualwrite TO dw_deliver;
GRANT EXECUTE ON FUNCTION dualwrite.enable(regclass, text, text, jsonb, name, text), dualwrite.disable(regclass) TO dw_deliver;
GRANT USAGE ON FOREIGN SERVER modern_pw TO dw_deliver;
SET ROLE dw_deliver;
SELECT dualwrite.enable('pw_own', target_server => 'modern_pw');
INSERT INTO dualwrite.tables (tbl, mode, target_server, target_table, enabled_by)
    VALUES ('orders', 'async', 'modern_pw', 'public.orders', 'postgres');
UPDATE dualwrite.servers SET deliver_as = 'postgres';
SELECT dualwrite.disable('orders');
INSERT INTO pw_own VALUES (1, 'by the delegate');
RESET ROLE;
SELECT tbl, enabled_by::text = 'dw_deliver' AS by_delegate FROM dualwrite.tables WHERE tbl = 'pw_own'::regclass;
SELECT dualwrite.wait_for_delivery('60s');
-- a server owned by a role that is neither a superuser nor the delivering
-- role is not trusted with that role's mapping: its owner could point it
-- elsewhere (checked every round, not only at enable())
CREATE ROLE dw_srv_owner;
ALTER SERVER modern_pw OWNER TO dw_srv_owner;
INSERT INTO pw_own VALUES (2, 'not while untrusted');
CALL poll_until($$SELECT last_error LIKE '%could point it elsewhere%' FROM dualwrite.status WHERE table_name = 'pw_own'::regclass$$);
SELECT queued, last_error FROM dualwrite.status WHERE table_name = 'pw_own'::regclass;
DO $$ BEGIN EXECUTE format('ALTER SERVER modern_pw OWNER TO %I', current_user); END $$;
SELECT dualwrite.wait_for_delivery('60s');
\c dw_modern_pw
SELECT * FROM public.pw_own ORDER BY id;
\c contrib_regression
SET ROLE dw_deliver;
SELECT dualwrite.disable('pw_own');
RESET ROLE;
DROP TABLE pw_own;
DROP ROLE dw_srv_owner;

-- only the orders stream is left for the tests that follow
SELECT dualwrite.disable('gone_t');
SELECT dualwrite.disable('pw_orders');

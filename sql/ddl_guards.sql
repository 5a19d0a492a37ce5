--
-- ddl_guards: every role's DDL on tables that are not flagged works as
-- without the extension.  On flagged tables, DDL that would break delivery
-- is refused: a change of the key changes are delivered by, capture
-- triggers switched off or changed (a superuser gets a WARNING), a rewrite
-- while changes are queued (test/isolation/specs/rewrite_guard.spec: under
-- REPEATABLE READ).  Anything else stays allowed, dropping the table too.
--
CREATE ROLE dw_plain NOLOGIN;
CREATE ROLE dw_owner NOLOGIN;
GRANT CREATE ON SCHEMA public TO dw_plain, dw_owner;

-- An ordinary role's DDL on its own tables: the event triggers run for it
-- although it has no right on the dualwrite schema.
SET ROLE dw_plain;
CREATE TABLE plain_t (i int PRIMARY KEY, v text);
INSERT INTO plain_t VALUES (1, 'a');
ALTER TABLE plain_t ALTER COLUMN i TYPE bigint;
ALTER TABLE plain_t REPLICA IDENTITY FULL;
ALTER TABLE plain_t DROP CONSTRAINT plain_t_pkey;
CREATE UNIQUE INDEX plain_t_i ON plain_t (i);
ALTER TABLE plain_t ALTER COLUMN i SET NOT NULL, REPLICA IDENTITY USING INDEX plain_t_i;
DROP INDEX plain_t_i;
CREATE FUNCTION plain_trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER plain_trg AFTER INSERT ON plain_t FOR EACH ROW EXECUTE FUNCTION plain_trg();
ALTER TABLE plain_t DISABLE TRIGGER plain_trg;
ALTER TABLE plain_t DISABLE TRIGGER ALL;
ALTER TRIGGER plain_trg ON plain_t RENAME TO plain_trg2;
DROP TRIGGER plain_trg2 ON plain_t;
CREATE TABLE plain_p (i int PRIMARY KEY) PARTITION BY RANGE (i);
CREATE TABLE plain_p1 PARTITION OF plain_p FOR VALUES FROM (0) TO (10);
ALTER TABLE plain_p DETACH PARTITION plain_p1;
DROP TABLE plain_t, plain_p, plain_p1;
DROP FUNCTION plain_trg();
RESET ROLE;

-- Flagged tables owned by an ordinary role: a plain one, a partitioned
-- one and one keyed by REPLICA IDENTITY USING INDEX.
\c dw_modern
CREATE TABLE public.owned (id int PRIMARY KEY, v text, u int NOT NULL);
CREATE TABLE public.parts (id int, region text, v text, PRIMARY KEY (id, region));
CREATE TABLE public.ri (a int PRIMARY KEY, b text);
\c contrib_regression
-- their own server (to dw_modern too), so the delivery failures provoked
-- below do not count against the other tests' tables
CALL make_server('ddl_modern');
SET dualwrite.target_server = 'ddl_modern';
CREATE TABLE owned (id int PRIMARY KEY, v text, u int NOT NULL);
CREATE UNIQUE INDEX owned_u ON owned (u);
CREATE TABLE parts (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE parts_eu PARTITION OF parts FOR VALUES IN ('eu');
CREATE TABLE parts_us PARTITION OF parts FOR VALUES IN ('us');
CREATE TABLE ri (a int NOT NULL, b text);
CREATE UNIQUE INDEX ri_a ON ri (a);
ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_a;
ALTER TABLE owned OWNER TO dw_owner;
ALTER TABLE parts OWNER TO dw_owner;
ALTER TABLE parts_eu OWNER TO dw_owner;
ALTER TABLE parts_us OWNER TO dw_owner;
ALTER TABLE ri OWNER TO dw_owner;
SELECT dualwrite.enable('owned');
SELECT dualwrite.enable('parts');
SELECT dualwrite.enable('ri');
-- enable() records the key changes are delivered by
SELECT tbl, key_attnums FROM dualwrite.tables WHERE tbl::text IN ('owned', 'parts', 'ri') ORDER BY tbl::text;
-- status shows the state of capture (partitions get their own TRUNCATE
-- trigger with the partitioned-TRUNCATE capture; until then status says so)
SELECT table_name, capture FROM dualwrite.status ORDER BY table_name::text;
-- enable() refuses a partitioned table whose partitions are keyed otherwise
CREATE TABLE mixed (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE mixed_1 PARTITION OF mixed FOR VALUES FROM (0) TO (100);
ALTER TABLE mixed_1 REPLICA IDENTITY FULL;
SELECT dualwrite.enable('mixed');
DROP TABLE mixed;

IMPORT FOREIGN SCHEMA public LIMIT TO (owned, parts, ri) FROM SERVER modern_check INTO modern;
INSERT INTO owned VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3);
INSERT INTO parts VALUES (1, 'eu', 'a'), (2, 'us', 'b');
INSERT INTO ri VALUES (1, 'x');
SELECT dualwrite.wait_for_delivery('60s');

--
-- The key is fixed at enable() time: DDL that changes it is refused.
--
SET ROLE dw_owner;
-- the issue's repro: a key update under REPLICA IDENTITY FULL would reach
-- modern as a plain update and leave a ghost row
BEGIN;
ALTER TABLE owned REPLICA IDENTITY FULL;
UPDATE owned SET id = 10 WHERE id = 1;
ALTER TABLE owned REPLICA IDENTITY DEFAULT;
COMMIT;
ALTER TABLE owned REPLICA IDENTITY NOTHING;
ALTER TABLE owned REPLICA IDENTITY USING INDEX owned_u;
ALTER TABLE owned DROP CONSTRAINT owned_pkey;
ALTER TABLE owned DROP COLUMN id;
ALTER TABLE parts_eu REPLICA IDENTITY FULL;
ALTER TABLE parts DROP CONSTRAINT parts_pkey;
ALTER TABLE ri REPLICA IDENTITY DEFAULT;
DROP INDEX ri_a;
DROP INDEX CONCURRENTLY ri_a;
-- DDL that keeps the key is fine
ALTER TABLE owned REPLICA IDENTITY DEFAULT;
ALTER TABLE owned ALTER COLUMN v SET DEFAULT 'dflt';
ALTER TABLE owned RENAME COLUMN v TO v2;
ALTER TABLE owned RENAME COLUMN v2 TO v;
ALTER TABLE owned ADD CONSTRAINT owned_v_check CHECK (v <> '');
ALTER TABLE owned DROP CONSTRAINT owned_v_check;
CREATE INDEX owned_v ON owned (v);
DROP INDEX owned_v;
ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_a;
RESET ROLE;
-- a superuser cannot change the key either
ALTER TABLE owned REPLICA IDENTITY FULL;
-- a partition keyed otherwise cannot join (cloning the capture trigger to a
-- new partition needs EXECUTE on dualwrite._capture(): superusers only)
CREATE TABLE parts_x (id int NOT NULL, region text NOT NULL, v text);
ALTER TABLE parts_x REPLICA IDENTITY FULL;
ALTER TABLE ONLY parts ATTACH PARTITION parts_x FOR VALUES IN ('x');
ALTER TABLE parts_x REPLICA IDENTITY DEFAULT;
ALTER TABLE parts ATTACH PARTITION parts_x FOR VALUES IN ('x');
ALTER TABLE parts DETACH PARTITION parts_x;
DROP TABLE parts_x;
CREATE TABLE parts_asia PARTITION OF parts FOR VALUES IN ('asia');
ALTER TABLE parts_asia OWNER TO dw_owner;
-- pg_restore's order is not refused: the flag (table data) comes before the
-- keys (post-data), and a partitioned table's key is added ONLY, then its
-- partitions' keys are attached to it
CREATE TABLE restored (id int NOT NULL, v text) PARTITION BY RANGE (id);
CREATE TABLE restored_1 PARTITION OF restored FOR VALUES FROM (0) TO (100);
INSERT INTO dualwrite.tables (tbl, mode, target_server, target_table, enabled_by, key_attnums)
VALUES ('restored', 'async', 'ddl_modern', 'public.restored', current_user::regrole, '{1}');
ALTER TABLE ONLY restored ADD CONSTRAINT restored_pkey PRIMARY KEY (id);
ALTER TABLE ONLY restored_1 ADD CONSTRAINT restored_1_pkey PRIMARY KEY (id);
ALTER INDEX restored_pkey ATTACH PARTITION restored_1_pkey;
ALTER TABLE restored DROP CONSTRAINT restored_pkey;
DELETE FROM dualwrite.tables WHERE tbl = 'restored'::regclass;
DROP TABLE restored;
-- the key update, done now, is a delete and an insert on modern: no ghost
UPDATE owned SET id = 10 WHERE id = 1;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.owned ORDER BY id;

--
-- Capture cannot be switched off or changed by a table's owner.
--
SET ROLE dw_owner;
ALTER TABLE owned DISABLE TRIGGER dualwrite_capture;
ALTER TABLE owned ENABLE REPLICA TRIGGER dualwrite_capture;
ALTER TABLE owned ENABLE ALWAYS TRIGGER dualwrite_capture;
ALTER TABLE owned DISABLE TRIGGER USER;
ALTER TABLE owned DISABLE TRIGGER ALL;
ALTER TABLE owned DISABLE TRIGGER dualwrite_capture_truncate;
ALTER TRIGGER dualwrite_capture ON owned RENAME TO not_capture;
DROP TRIGGER dualwrite_capture ON owned;
DROP TRIGGER dualwrite_capture_truncate ON owned;
ALTER TABLE parts DISABLE TRIGGER dualwrite_capture;
ALTER TABLE parts_eu DISABLE TRIGGER dualwrite_capture;
ALTER TABLE parts_eu ENABLE REPLICA TRIGGER dualwrite_capture;
-- the owner's own triggers, and changes that keep capture as it is, are fine
CREATE FUNCTION owner_trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER mine AFTER INSERT ON owned FOR EACH ROW EXECUTE FUNCTION owner_trg();
ALTER TABLE owned DISABLE TRIGGER mine;
ALTER TRIGGER mine ON owned RENAME TO mine2;
DROP TRIGGER mine2 ON owned;
DROP FUNCTION owner_trg();
ALTER TABLE owned ENABLE TRIGGER dualwrite_capture;
ALTER TABLE owned ENABLE TRIGGER ALL;
RESET ROLE;
SELECT tgrelid::regclass, tgname, tgenabled FROM pg_trigger
WHERE tgrelid IN ('owned'::regclass, 'parts'::regclass, 'parts_eu'::regclass) ORDER BY tgrelid::regclass::text, tgname;
-- capture kept working through all of it
UPDATE owned SET v = 'captured' WHERE id = 2;
UPDATE parts SET v = 'captured' WHERE id = 1;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.owned WHERE id = 2;
SELECT * FROM modern.parts ORDER BY id;

-- A superuser may, with a WARNING; status shows what is wrong.
ALTER TABLE owned DISABLE TRIGGER dualwrite_capture;
SELECT table_name, capture FROM dualwrite.status WHERE table_name = 'owned'::regclass;
ALTER TABLE owned ENABLE ALWAYS TRIGGER dualwrite_capture;
SELECT dualwrite._capture_state('owned');
ALTER TABLE owned ENABLE TRIGGER dualwrite_capture;
SELECT dualwrite._capture_state('owned');
ALTER TABLE parts_us DISABLE TRIGGER dualwrite_capture;
SELECT dualwrite._capture_state('parts');
ALTER TABLE parts_us ENABLE TRIGGER dualwrite_capture;
ALTER TRIGGER dualwrite_capture_truncate ON owned RENAME TO dw_trunc;
SELECT dualwrite._capture_state('owned');
ALTER TRIGGER dw_trunc ON owned RENAME TO dualwrite_capture_truncate;
DROP TRIGGER dualwrite_capture ON owned;
SELECT table_name, capture FROM dualwrite.status WHERE table_name::text IN ('owned', 'parts') ORDER BY table_name::text;
-- disable() and enable() put it right
SELECT dualwrite.disable('owned');
SELECT dualwrite.enable('owned');
SELECT table_name, capture FROM dualwrite.status WHERE table_name = 'owned'::regclass;

--
-- The worker delivers by the recorded key, whatever the current replica
-- identity says (here forced past the guard), and refuses an empty key.
--
ALTER EVENT TRIGGER dualwrite_ddl_command_end DISABLE;
ALTER TABLE owned REPLICA IDENTITY FULL;
ALTER EVENT TRIGGER dualwrite_ddl_command_end ENABLE;
UPDATE owned SET v = 'under full' WHERE id = 2;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.owned WHERE id = 2;
-- back to the recorded key: allowed
ALTER TABLE owned REPLICA IDENTITY DEFAULT;
UPDATE dualwrite.tables SET key_attnums = '{}' WHERE tbl = 'owned'::regclass;
UPDATE owned SET v = 'no key' WHERE id = 2;
SELECT dualwrite.wait_for_delivery('1s') AS delivered_without_key;
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN (SELECT last_error IS NOT NULL FROM dualwrite.status WHERE table_name = 'owned'::regclass);
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT table_name, queued, last_error FROM dualwrite.status WHERE table_name = 'owned'::regclass;
-- no recorded key (a table enabled by an older build): the current identity
UPDATE dualwrite.tables SET key_attnums = NULL WHERE tbl = 'owned'::regclass;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.owned WHERE id = 2;
UPDATE dualwrite.tables SET key_attnums = '{1}' WHERE tbl = 'owned'::regclass;

--
-- A rewrite with queued changes is refused for the owner too; without
-- queued changes it is allowed.
--
ALTER SERVER ddl_modern OPTIONS (SET port '1', ADD hostaddr '127.0.0.1', SET host '127.0.0.1');
INSERT INTO owned VALUES (4, 'four', 4);
SET ROLE dw_owner;
ALTER TABLE owned ALTER COLUMN u TYPE bigint;
RESET ROLE;
DO $$
BEGIN
    EXECUTE format('ALTER SERVER ddl_modern OPTIONS (SET port %L, DROP hostaddr, SET host %L)',
                   current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1));
END $$;
SELECT dualwrite.wait_for_delivery('60s');
SET ROLE dw_owner;
ALTER TABLE owned ALTER COLUMN u TYPE bigint;

--
-- The owner may drop a flagged table, or a partition of one.
--
DROP TABLE parts_asia;
ALTER TABLE parts DETACH PARTITION parts_us;
DROP TABLE parts_us;
DROP TABLE ri;
DROP TABLE owned, parts;
RESET ROLE;
SELECT tbl FROM dualwrite.tables ORDER BY tbl::text;

DROP FOREIGN TABLE modern.owned, modern.parts, modern.ri;
\c dw_modern
DROP TABLE public.owned, public.parts, public.ri;
\c contrib_regression
DROP SERVER ddl_modern CASCADE;
RESET dualwrite.target_server;
REVOKE CREATE ON SCHEMA public FROM dw_plain, dw_owner;
DROP ROLE dw_plain;
DROP ROLE dw_owner;

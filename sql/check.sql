--
-- check: the preflight reports one row per check; a failing check does not
-- stop the others; it names what to create or GRANT.
--
SET dualwrite.target_server = 'modern';
-- two servers in use: modern (the suite's superuser delivers) and
-- modern_pw (dw_deliver delivers, see privileges)
SELECT dualwrite.enable('pw_orders', target_server => 'modern_pw');
CREATE TABLE chk_t (id int PRIMARY KEY, v text);
\c dw_modern
CREATE TABLE public.chk_t (id int PRIMARY KEY, v text);
\c contrib_regression
SET dualwrite.target_server = 'modern';
SELECT dualwrite.enable('chk_t');
SELECT check_name, object, ok, severity FROM dualwrite.check();
SELECT count(*) AS failed FROM dualwrite.check() WHERE NOT ok;
-- (the suite's superuser is whoever runs it: not shown)
SELECT check_name, object, replace(detail, quote_ident(current_user), '<superuser>') AS detail FROM dualwrite.check()
WHERE check_name IN ('library preloaded', 'delivering role', 'user mapping', 'session_replication_role',
                     'temporary tables', 'progress table', 'target table', 'target privileges');

-- Break the modern side in several ways at once.
\c dw_modern
ALTER TABLE public.chk_t ALTER COLUMN v TYPE timestamptz USING NULL;
\c dw_modern_pw
REVOKE TRUNCATE ON public.pw_orders FROM dw_deliver;
REVOKE TEMPORARY ON DATABASE dw_modern_pw FROM dw_deliver;
REVOKE SET ON PARAMETER session_replication_role FROM dw_deliver;
\c contrib_regression
SET dualwrite.target_server = 'modern';
SELECT check_name, object, ok, detail, hint FROM dualwrite.check() WHERE NOT ok;
-- enable() refuses what check() reports, with the same words
SELECT dualwrite.disable('chk_t');
SELECT dualwrite.enable('chk_t');

-- A default server nobody delivers to yet: not reachable, and its mapping's
-- password would cross the network unencrypted.
SET dualwrite.target_server = 'ok1';
SELECT check_name, ok, severity, replace(detail, quote_ident(current_user), '<superuser>') AS detail, hint
FROM dualwrite.check() WHERE object = 'ok1' AND check_name NOT IN ('reachable', 'delivering role');
SELECT check_name, ok, detail ~ 'could not connect to server "ok1"' AS names_server,
       detail !~ 'secret_pw_123' AS no_password
FROM dualwrite.check() WHERE object = 'ok1' AND check_name = 'reachable';
SELECT check_name, ok, detail ~ '^not set yet: the first enable\(\) onto this server makes its caller deliver' AS not_set
FROM dualwrite.check() WHERE object = 'ok1' AND check_name = 'delivering role';
ALTER SERVER ok1 OPTIONS (ADD sslmode 'require');
SELECT check_name, ok, detail FROM dualwrite.check() WHERE object = 'ok1' AND check_name = 'encrypted connection';
RESET dualwrite.target_server;

-- Superusers and delivering roles only; a delivering role sees its servers.
GRANT USAGE ON SCHEMA dualwrite TO dw_deliver, dw_app;
GRANT SELECT ON dualwrite.tables, dualwrite.servers TO dw_deliver, dw_app;
SET ROLE dw_deliver;
SELECT check_name, object, ok FROM dualwrite.check();
RESET ROLE;
GRANT EXECUTE ON FUNCTION dualwrite.check() TO dw_deliver, dw_app;
SET ROLE dw_deliver;
SELECT check_name, object, ok FROM dualwrite.check();
SET ROLE dw_app;
SELECT check_name, object, ok FROM dualwrite.check();
RESET ROLE;

-- Repaired: every check passes again.
\c dw_modern_pw
GRANT TRUNCATE ON public.pw_orders TO dw_deliver;
GRANT TEMPORARY ON DATABASE dw_modern_pw TO dw_deliver;
GRANT SET ON PARAMETER session_replication_role TO dw_deliver;
\c contrib_regression
SELECT count(*) AS failed FROM dualwrite.check() WHERE NOT ok;
-- capture switched off (a superuser may, with a warning): check() says so
ALTER TABLE pw_orders DISABLE TRIGGER dualwrite_capture;
SELECT check_name, object, ok, detail FROM dualwrite.check() WHERE NOT ok;
ALTER TABLE pw_orders ENABLE TRIGGER dualwrite_capture;
SELECT count(*) AS failed FROM dualwrite.check() WHERE NOT ok;
INSERT INTO pw_orders VALUES (3, 'three');
SELECT dualwrite.wait_for_delivery('60s');

--
-- least_privilege: the worker never writes its progress into objects on the
-- modern side that someone else owns or has hooked (their owner could run
-- code as the delivering role, or rewrite the progress row to skip or
-- replay batches), and worker states (whose errors may quote row values)
-- are not readable by PUBLIC.
--
CREATE DATABASE dw_modern_lp;
\c dw_modern_lp
CREATE ROLE lp_intruder;
CREATE TABLE public.lp_t (id int PRIMARY KEY, v text);
\c contrib_regression
CALL make_server('lp_srv', 'dw_modern_lp');
CREATE TABLE lp_t (id int PRIMARY KEY, v text);
SELECT dualwrite.enable('lp_t', target_server => 'lp_srv');
INSERT INTO lp_t VALUES (1, 'first');
SELECT dualwrite.wait_for_delivery('60s');

-- a trigger on the progress table (ENABLE ALWAYS: it would fire even in
-- the worker's replica mode) is refused
\c dw_modern_lp
CREATE FUNCTION public.lp_hook() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER lp_hook BEFORE UPDATE ON _dualwrite.applied FOR EACH ROW EXECUTE FUNCTION public.lp_hook();
ALTER TABLE _dualwrite.applied ENABLE ALWAYS TRIGGER lp_hook;
-- the worker looks at the table again when it reconnects
SELECT count(*) > 0 AS ended FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE application_name = 'pg_dualwrite' AND datname = 'dw_modern_lp') t;
\c contrib_regression
INSERT INTO lp_t VALUES (2, 'not while hooked');
CALL poll_until($$SELECT last_error LIKE '%triggers or rules%' FROM dualwrite.status WHERE table_name = 'lp_t'::regclass$$);
SELECT queued, last_error FROM dualwrite.status WHERE table_name = 'lp_t'::regclass;
\c dw_modern_lp
SELECT id, v FROM lp_t ORDER BY id;
-- no trigger, but someone else owns it: refused too
DROP TRIGGER lp_hook ON _dualwrite.applied;
ALTER TABLE _dualwrite.applied OWNER TO lp_intruder;
\c contrib_regression
CALL poll_until($$SELECT last_error LIKE '%not owned%' FROM dualwrite.status WHERE table_name = 'lp_t'::regclass$$);
SELECT queued, last_error FROM dualwrite.status WHERE table_name = 'lp_t'::regclass;
-- back to the delivering role: delivery resumes
\c dw_modern_lp
ALTER TABLE _dualwrite.applied OWNER TO CURRENT_USER;
\c contrib_regression
SELECT dualwrite.wait_for_delivery('60s');
\c dw_modern_lp
SELECT id, v FROM lp_t ORDER BY id;
\c contrib_regression

-- worker states: not for PUBLIC; a role granted them sees its database only
CREATE ROLE lp_monitor;
GRANT USAGE ON SCHEMA dualwrite TO lp_monitor;
SET ROLE lp_monitor;
SELECT count(*) FROM dualwrite._worker_info();
RESET ROLE;
GRANT EXECUTE ON FUNCTION dualwrite._worker_info() TO lp_monitor;
GRANT SELECT ON dualwrite.workers TO lp_monitor;
SET ROLE lp_monitor;
SELECT datname = current_database() AS own_database_only, count(*) FROM dualwrite.workers GROUP BY 1;
RESET ROLE;
REVOKE ALL ON dualwrite.workers FROM lp_monitor;
REVOKE ALL ON FUNCTION dualwrite._worker_info() FROM lp_monitor;
REVOKE ALL ON SCHEMA dualwrite FROM lp_monitor;
DROP ROLE lp_monitor;

SELECT dualwrite.disable('lp_t');
DROP TABLE lp_t;
DROP SERVER lp_srv CASCADE;
DROP DATABASE dw_modern_lp WITH (FORCE);
DROP ROLE lp_intruder;

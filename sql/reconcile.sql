--
-- reconcile: find missing, extra and different rows by bisecting key
-- ranges, repair them through the outbox, record the runs; incremental
-- runs compare only the keys changed since the last run.
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TABLE public.rc (id int PRIMARY KEY, t text, f float8, n numeric, ts timestamptz, big text);
\c contrib_regression
SET dualwrite.target_server = 'modern';
CREATE TABLE rc (id int PRIMARY KEY, t text, f float8, n numeric(12,4), ts timestamptz, big text);
SELECT dualwrite.enable('rc');
INSERT INTO rc SELECT g, 'row ' || g, g / 7.0, g / 4.0, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute', NULL
FROM generate_series(1, 3000) g;
UPDATE rc SET t = '', f = 0 WHERE id = 1500;
UPDATE rc SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g) WHERE id = 2999;
SELECT dualwrite.wait_for_delivery('60s');

-- equal tables: nothing, and only figures moved
SELECT * FROM dualwrite.reconcile('rc');
SELECT rows_compared, differences, repaired, bytes_transferred < 20000 AS only_figures, mode, full_reason
FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1;
-- the baseline is set: the next run is incremental, and nothing changed
SELECT regexp_replace(reconcile_next, 'since .*', 'since ...') AS reconcile_next FROM dualwrite.status WHERE table_name = 'rc'::regclass;
SELECT * FROM dualwrite.reconcile('rc');
SELECT rows_compared, differences, mode FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1;

-- plant differences behind pg_dualwrite's back
\c dw_modern
DELETE FROM rc WHERE id = 10;                                   -- missing
INSERT INTO rc (id, t) VALUES (3001, 'extra'), (-5, 'extra');   -- extra, outside legacy's keys
UPDATE rc SET t = NULL WHERE id = 1500;                         -- NULL vs ''
UPDATE rc SET f = '-0' WHERE id = 1500;                         -- -0 vs 0
UPDATE rc SET n = n::numeric(20,1) WHERE id = 1000;             -- same value, other scale: equal
UPDATE rc SET n = 250.01 WHERE id = 1001;                       -- different
SET TimeZone = 'Asia/Tokyo';
UPDATE rc SET ts = '2024-01-01 09:01+09' WHERE id = 1;          -- the same instant, another zone: equal
UPDATE rc SET ts = '2024-01-01 00:03' WHERE id = 3;             -- 00:03 in Tokyo: different
UPDATE rc SET big = overlay(big PLACING 'X' FROM 600000 FOR 1) WHERE id = 2999; -- one byte deep in TOAST
\c contrib_regression
SET dualwrite.target_server = 'modern';
-- the documented rule: an incremental run does not see changes made on the
-- modern side to keys that legacy did not change; a full run does
SELECT key, kind, columns FROM dualwrite.reconcile('rc') ORDER BY (key->>'id')::int;
SELECT key, kind, columns FROM dualwrite.reconcile('rc', full => true) ORDER BY (key->>'id')::int;
SELECT rows_compared, differences, repaired, mode, full_reason FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1;
-- differences left unrepaired stay changed keys for the next run
SELECT reconcile_next ~ '^incremental: 7 changed keys' AS next FROM dualwrite.status WHERE table_name = 'rc'::regclass;
SELECT last_reconcile_at IS NOT NULL AS recorded, last_reconcile_differences FROM dualwrite.status WHERE table_name = 'rc'::regclass;

-- repair through the outbox, then nothing is left
SELECT key, kind FROM dualwrite.reconcile('rc', repair => true) ORDER BY (key->>'id')::int;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM dualwrite.reconcile('rc');
SELECT rows_compared, differences, repaired, mode FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 2;
SELECT * FROM dualwrite.reconcile('rc', full => true);
IMPORT FOREIGN SCHEMA public LIMIT TO (rc) FROM SERVER modern_check INTO modern;
SELECT id, t, f::text FROM modern.rc WHERE id IN (10, 1500, 3001, -5) ORDER BY id;

-- incremental: a key legacy changed, then altered on the modern side after
-- delivery, is found; untouched keys are not read
UPDATE rc SET t = 'changed ' || id WHERE id IN (20, 21, 22);
SELECT dualwrite.wait_for_delivery('60s');
\c dw_modern
UPDATE rc SET t = 'behind the back' WHERE id = 21;
\c contrib_regression
SET dualwrite.target_server = 'modern';
SELECT key, kind, columns FROM dualwrite.reconcile('rc', repair => true);
SELECT rows_compared, differences, repaired, mode FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM dualwrite.reconcile('rc');
SELECT rows_compared, differences, mode FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1;
-- capture switched off: the next run must be full, and says why
SET dualwrite.enabled = off;
UPDATE rc SET t = 'uncaptured' WHERE id = 30;
RESET dualwrite.enabled;
SELECT reconcile_next ~ '^full: capture was off' AS full_next FROM dualwrite.status WHERE table_name = 'rc'::regclass;
SELECT key, kind, columns FROM dualwrite.reconcile('rc');
SELECT mode, full_reason ~ '^capture was off' AS why FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1;
UPDATE rc SET t = 'row 30' WHERE id = 30;
SELECT dualwrite.wait_for_delivery('60s');

-- Bad input: clear errors, nothing changed.
CREATE TABLE rc_unflagged (id int PRIMARY KEY);
SELECT * FROM dualwrite.reconcile('rc_unflagged');
SELECT * FROM dualwrite.reconcile(NULL);
-- the target table is gone
\c dw_modern
ALTER TABLE rc RENAME TO rc_away;
\c contrib_regression
SELECT * FROM dualwrite.reconcile('rc', repair => true);
\c dw_modern
ALTER TABLE rc_away RENAME TO rc;
\c contrib_regression
SELECT count(*) AS runs FROM dualwrite.reconcile_runs;
-- the modern side is down
BEGIN;
ALTER SERVER modern OPTIONS (SET port '1');
\set VERBOSITY terse
SELECT * FROM dualwrite.reconcile('rc', repair => true);
\set VERBOSITY default
ROLLBACK;
SELECT count(*) AS runs FROM dualwrite.reconcile_runs;
DROP TABLE rc_unflagged;
-- key columns that order differently on the two sides: refused
\c dw_modern
CREATE TABLE public.rc_keytype (id text PRIMARY KEY, v int);
\c contrib_regression
SET dualwrite.target_server = 'modern';
CREATE TABLE rc_keytype (id int PRIMARY KEY, v int);
SELECT dualwrite.enable('rc_keytype');
SELECT * FROM dualwrite.reconcile('rc_keytype');
SELECT dualwrite.disable('rc_keytype');
DROP TABLE rc_keytype;

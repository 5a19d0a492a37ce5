--
-- reconcile: find missing, extra and different rows by bisecting key
-- ranges, repair them through the outbox, record the runs.
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
SELECT rows_compared, differences, repaired, bytes_transferred < 20000 AS only_figures
FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1;

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
SELECT key, kind, columns FROM dualwrite.reconcile('rc') ORDER BY (key->>'id')::int;
SELECT rows_compared, differences, repaired FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1;
SELECT last_reconcile_at IS NOT NULL AS recorded, last_reconcile_differences FROM dualwrite.status WHERE table_name = 'rc'::regclass;

-- repair through the outbox, then nothing is left
SELECT key, kind FROM dualwrite.reconcile('rc', repair => true) ORDER BY (key->>'id')::int;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM dualwrite.reconcile('rc');
SELECT differences, repaired FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 2;
IMPORT FOREIGN SCHEMA public LIMIT TO (rc) FROM SERVER modern_check INTO modern;
SELECT id, t, f::text FROM modern.rc WHERE id IN (10, 1500, 3001, -5) ORDER BY id;

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

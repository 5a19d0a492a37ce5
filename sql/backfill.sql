--
-- backfill: rows that existed before enable() are copied to the modern side
-- chunk by chunk (committed there first); errors change nothing; a cancelled run resumes
-- after its last committed chunk; progress view and status columns;
-- column_map applies as it does for captured changes.
--
\c dw_modern
CREATE TABLE public.bf (id int PRIMARY KEY, alpha text, b int);
\c contrib_regression
SET dualwrite.target_server = 'modern';
SET client_min_messages = notice;
-- a dropped column: the copied images keep the table's layout
CREATE TABLE public.bf (id int PRIMARY KEY, a text, gone int, b int, secret text);
ALTER TABLE public.bf DROP COLUMN gone;
INSERT INTO bf SELECT g, 'row ' || g, g % 7, 'hidden ' || g FROM generate_series(1, 2000) g;
CREATE TABLE public.bf_off (id int PRIMARY KEY);
IMPORT FOREIGN SCHEMA public LIMIT TO (bf) FROM SERVER modern_check INTO modern;

-- not flagged, bad arguments: errors, nothing recorded
CALL dualwrite.backfill('bf_off');
CALL dualwrite.backfill(NULL);
SELECT dualwrite.enable('bf', column_map => '{"a": "alpha", "secret": null}');
CALL dualwrite.backfill('bf', batch_size => 0);
-- it commits per chunk: not inside a transaction block
BEGIN;
CALL dualwrite.backfill('bf');
ROLLBACK;
-- the modern side down: a clear error (libpq's reason, in the DETAIL,
-- names a socket path: terse), nothing recorded
ALTER SERVER modern OPTIONS (SET dbname 'dw_no_such_db');
\set VERBOSITY terse
CALL dualwrite.backfill('bf');
\set VERBOSITY default
ALTER SERVER modern OPTIONS (SET dbname 'dw_modern');
-- a paused table: its delivery waits, so the direct copy is refused
SELECT dualwrite.pause('bf');
CALL dualwrite.backfill('bf');
SELECT dualwrite.resume('bf');
SELECT count(*) AS state_rows FROM dualwrite._backfill;
SELECT count(*) AS on_modern FROM modern.bf;

-- who may: superuser, or the table's owner with EXECUTE; nobody else
CREATE ROLE dw_bf_user;
GRANT EXECUTE ON PROCEDURE dualwrite.backfill(regclass, integer, boolean) TO dw_bf_user;
GRANT USAGE ON SCHEMA dualwrite TO dw_bf_user;
SET ROLE dw_bf_user;
CALL dualwrite.backfill('bf');
RESET ROLE;
SELECT has_function_privilege('public', 'dualwrite.backfill(regclass, integer, boolean)', 'EXECUTE') AS public_may;

-- a cancel after the second chunk (a real query cancel, raised by a test
-- fault point): two chunks stay committed
SELECT dualwrite._debug_fault('backfill_cancel');
CALL dualwrite.backfill('bf', batch_size => 300);
SELECT table_name, state, rows_done, rows_estimated >= rows_done AS est_ok, last_key, chunks, current
FROM dualwrite.backfill_progress;
SELECT backfill_state, backfill_rows FROM dualwrite.status WHERE table_name = 'bf'::regclass;
-- a second call continues after the last committed chunk (NOTICE says so)
-- (terse: the rate in the DETAIL varies)
\set VERBOSITY terse
CALL dualwrite.backfill('bf', batch_size => 700);
\set VERBOSITY default
SELECT table_name, state, rows_done, percent_done, eta, last_key, chunks, finished_at IS NOT NULL AS finished
FROM dualwrite.backfill_progress;
SELECT backfill_state, backfill_rows FROM dualwrite.status WHERE table_name = 'bf'::regclass;
-- running it again is harmless: nothing to do
CALL dualwrite.backfill('bf');
CALL poll_until($$SELECT count(*) = 2000 FROM modern.bf$$);
-- same rows on both sides, column_map applied (a renamed, secret not sent)
SELECT count(*) AS differences FROM (
    (SELECT id, a, b FROM bf EXCEPT SELECT id, alpha, b FROM modern.bf)
    UNION ALL
    (SELECT id, alpha, b FROM modern.bf EXCEPT SELECT id, a, b FROM bf)) d;

-- restart => true copies again; changes made meanwhile stay (the copy is
-- the current image, ordered with the captured changes)
UPDATE bf SET b = -1 WHERE id <= 10;
DELETE FROM bf WHERE id > 1990;
SET client_min_messages = warning;
CALL dualwrite.backfill('bf', batch_size => 1000, restart => true);
RESET client_min_messages;
SELECT state, rows_done, chunks FROM dualwrite.backfill_progress;
SELECT dualwrite.wait_for_delivery();
SELECT count(*) AS differences FROM (
    (SELECT id, a, b FROM bf EXCEPT SELECT id, alpha, b FROM modern.bf)
    UNION ALL
    (SELECT id, alpha, b FROM modern.bf EXCEPT SELECT id, a, b FROM bf)) d;

-- disable() and enable() again: a new backfill (the old state is not current)
SELECT dualwrite.disable('bf');
SELECT dualwrite.enable('bf', column_map => '{"a": "alpha", "secret": null}');
SELECT backfill_state, backfill_rows FROM dualwrite.status WHERE table_name = 'bf'::regclass;
SELECT current FROM dualwrite.backfill_progress;
SET client_min_messages = warning;
CALL dualwrite.backfill('bf');
RESET client_min_messages;
SELECT backfill_state, backfill_rows FROM dualwrite.status WHERE table_name = 'bf'::regclass;
SELECT dualwrite.wait_for_delivery();
SELECT dualwrite.disable('bf');
DROP TABLE bf, bf_off;
REVOKE ALL ON PROCEDURE dualwrite.backfill(regclass, integer, boolean) FROM dw_bf_user;
REVOKE ALL ON SCHEMA dualwrite FROM dw_bf_user;
DROP ROLE dw_bf_user;

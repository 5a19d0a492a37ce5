--
-- sync: sync mode.  A committed sync transaction is on the modern side when
-- its COMMIT returns (dualwrite.sync_remote_commit = wait), without the
-- worker: each check reads modern (through postgres_fdw) right after the
-- commit.  Failure policies, savepoints, mixed transactions, mode switches
-- and every error message; no message holds a password.
--
\c dw_modern
CREATE TABLE public.payments (id int PRIMARY KEY, amount numeric(12,2) NOT NULL, note text);
CREATE TABLE public.audit (id int PRIMARY KEY, what text);
CREATE TABLE public.strict_t (id int PRIMARY KEY, v int CHECK (v < 100));
CREATE TABLE public.down_t (id int PRIMARY KEY);
\c contrib_regression
SET dualwrite.target_server = 'modern';
CREATE TABLE payments (id int PRIMARY KEY, amount numeric(12,2) NOT NULL, note text);
CREATE TABLE audit (id int PRIMARY KEY, what text);
CREATE TABLE strict_t (id int PRIMARY KEY, v int);
CREATE TABLE down_t (id int PRIMARY KEY);
IMPORT FOREIGN SCHEMA public LIMIT TO (payments, audit, strict_t, down_t) FROM SERVER modern_check INTO modern;

-- bad arguments change nothing
SELECT dualwrite.enable('payments', mode => 'sync', sync_failure => 'retry');
SELECT dualwrite.enable('payments', mode => 'async', sync_failure => 'queue');
SELECT dualwrite.enable('payments', mode => 'eventually');
SELECT count(*) FROM dualwrite.tables WHERE tbl = 'payments'::regclass;
SELECT dualwrite.set_mode('payments', 'sync');
SELECT dualwrite.enable('payments', mode => 'sync');
SELECT mode, sync_failure FROM dualwrite.tables WHERE tbl = 'payments'::regclass;
SELECT dualwrite.set_mode('payments', 'fast');
SELECT dualwrite.set_mode('payments', NULL);
SET dualwrite.sync_failure = 'queue';
SET dualwrite.sync_remote_commit = 'sometimes';

-- 1. a committed transaction is on modern when COMMIT returns, whole
INSERT INTO payments VALUES (1, 10.50, 'first');
SELECT * FROM modern.payments ORDER BY id;
BEGIN;
INSERT INTO payments SELECT g, g, 'batch' FROM generate_series(2, 50) g;
UPDATE payments SET amount = amount * 2 WHERE id <= 10;
DELETE FROM payments WHERE id BETWEEN 40 AND 45;
UPDATE payments SET id = id + 1000 WHERE id = 50;
COMMIT;
SELECT count(*), sum(amount), max(id) FROM modern.payments;
SELECT count(*), sum(amount), max(id) FROM payments;
-- shipped, so nothing of it waits in the outbox
SELECT queued FROM dualwrite.status WHERE table_name = 'payments'::regclass;

-- 2. a rolled-back transaction reaches nothing
BEGIN;
INSERT INTO payments VALUES (100, 1, 'rolled back');
ROLLBACK;
SELECT count(*) FROM modern.payments WHERE id = 100;

-- 3. savepoints: a rolled-back subtransaction's changes never arrive, a
-- released one's do
BEGIN;
INSERT INTO payments VALUES (101, 1, 'kept');
SAVEPOINT a;
INSERT INTO payments VALUES (102, 1, 'rolled back');
UPDATE payments SET note = 'rolled back too' WHERE id = 101;
ROLLBACK TO SAVEPOINT a;
SAVEPOINT b;
INSERT INTO payments VALUES (103, 1, 'released');
SAVEPOINT c;
DELETE FROM payments WHERE id = 1;
ROLLBACK TO SAVEPOINT c;
RELEASE SAVEPOINT b;
COMMIT;
SELECT id, note FROM modern.payments WHERE id IN (1, 101, 102, 103) ORDER BY id;

-- 4. TRUNCATE, then rows, in one transaction
BEGIN;
TRUNCATE payments;
INSERT INTO payments VALUES (1, 1, 'after truncate');
COMMIT;
SELECT * FROM modern.payments ORDER BY id;

-- 5. PREPARE TRANSACTION of a sync write is refused (sync mode runs its own)
BEGIN;
INSERT INTO payments VALUES (300, 1, 'prepared');
PREPARE TRANSACTION 'p_sync';
SELECT count(*) FROM payments WHERE id = 300;
SELECT count(*) FROM pg_prepared_xacts;

-- 6. sync_failure = error: the modern side rejects a change; the local
-- transaction fails with the remote SQLSTATE, message and detail, naming
-- the table; nothing is left prepared
CALL make_server('sync_strict');
SELECT dualwrite.enable('strict_t', mode => 'sync', sync_failure => 'error', target_server => 'sync_strict');
INSERT INTO strict_t VALUES (1, 5);
INSERT INTO strict_t VALUES (2, 500);
\set VERBOSITY sqlstate
INSERT INTO strict_t VALUES (2, 500);
\set VERBOSITY default
SELECT * FROM strict_t ORDER BY id;
SELECT * FROM modern.strict_t ORDER BY id;
SELECT count(*) FROM pg_prepared_xacts;

-- 7. sync_failure = queue: the transaction commits, its change stays in the
-- outbox (WARNING); status counts the fallback
SELECT dualwrite.set_mode('strict_t', 'sync', 'queue');
INSERT INTO strict_t VALUES (3, 700);
SELECT * FROM strict_t ORDER BY id;
SELECT sync_transactions, sync_fallbacks, queued > 0 AS queued FROM dualwrite.status WHERE table_name = 'strict_t'::regclass;
-- per-key order: while (3, 700) is queued (the worker cannot deliver it
-- either), a later sync transaction of the table must not overtake it;
-- with queue it goes through the outbox too (modern keeps (1, 5))
SET dualwrite.sync_backlog_wait = '100ms';
UPDATE strict_t SET v = 6 WHERE id = 1;
SELECT * FROM modern.strict_t ORDER BY id;
SELECT backlog FROM dualwrite._sync_info('strict_t');
-- with error it fails
SELECT dualwrite.set_mode('strict_t', 'sync', 'error');
INSERT INTO strict_t VALUES (4, 1);
-- repaired modern side: both arrive, in order
\c dw_modern
ALTER TABLE public.strict_t DROP CONSTRAINT strict_t_v_check;
\c contrib_regression
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.strict_t ORDER BY id;
CALL poll_until($$SELECT backlog IS FALSE FROM dualwrite._sync_info('strict_t')$$);
INSERT INTO strict_t VALUES (4, 1);
SELECT * FROM modern.strict_t ORDER BY id;
RESET dualwrite.sync_backlog_wait;

-- 8. a transaction writing sync and async tables
SELECT dualwrite.enable('audit');
BEGIN;
INSERT INTO payments VALUES (200, 2, 'mixed');
INSERT INTO audit VALUES (200, 'mixed');
COMMIT;
SELECT count(*) FROM modern.payments WHERE id = 200;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.audit ORDER BY id;

-- 8b. sync tables of two target servers in one transaction: one prepared
-- transaction per server, atomic together; a failure on the second server
-- rolls back what the first one prepared
\c dw_modern
CREATE TABLE public.two_t (id int PRIMARY KEY, v int CHECK (v >= 0));
\c contrib_regression
CREATE TABLE two_t (id int PRIMARY KEY, v int);
IMPORT FOREIGN SCHEMA public LIMIT TO (two_t) FROM SERVER modern_check INTO modern;
SELECT dualwrite.enable('two_t', mode => 'sync', target_server => 'sync_strict');
BEGIN;
INSERT INTO payments VALUES (210, 2, 'two servers');
INSERT INTO two_t VALUES (1, 1);
COMMIT;
SELECT (SELECT count(*) FROM modern.payments WHERE id = 210) AS payments, (SELECT count(*) FROM modern.two_t) AS two_t;
BEGIN;
INSERT INTO payments VALUES (211, 2, 'rolled back with the other server');
INSERT INTO two_t VALUES (2, -1);
COMMIT;
SELECT (SELECT count(*) FROM modern.payments WHERE id = 211) AS payments, (SELECT count(*) FROM modern.two_t) AS two_t;
SELECT count(*) FROM payments WHERE id = 211;
SELECT count(*) FROM pg_prepared_xacts;

-- 9. mode switch, async -> sync, with changes still queued (paused): later
-- sync transactions go through the outbox behind them, nothing is lost or
-- reordered
SELECT dualwrite.pause('audit');
INSERT INTO audit VALUES (201, 'queued while paused');
UPDATE audit SET what = 'queued update' WHERE id = 201;
SELECT dualwrite.set_mode('audit', 'sync', 'queue');
UPDATE audit SET what = 'sync after switch' WHERE id = 201;
SELECT count(*) FROM modern.audit WHERE id = 201;
SELECT dualwrite.resume('audit');
SELECT dualwrite.wait_for_delivery('60s');
SELECT what FROM modern.audit WHERE id = 201;
-- once the backlog is delivered, sync ships at commit again
CALL poll_until($$SELECT backlog IS FALSE FROM dualwrite._sync_info('audit')$$);
UPDATE audit SET what = 'shipped at commit' WHERE id = 201;
SELECT what FROM modern.audit WHERE id = 201;
-- and back to async; enable() again switches too
SELECT dualwrite.set_mode('audit', 'async');
UPDATE audit SET what = 'async again' WHERE id = 201;
SELECT dualwrite.wait_for_delivery('60s');
SELECT what FROM modern.audit WHERE id = 201;
SELECT dualwrite.enable('audit', mode => 'sync');
SELECT mode, sync_failure FROM dualwrite.tables WHERE tbl = 'audit'::regclass;
SELECT dualwrite.enable('audit', mode => 'sync');
-- the capture trigger says 'sync' exactly on sync tables
SELECT tgrelid::regclass, tgnargs FROM pg_trigger WHERE tgname = 'dualwrite_capture'
   AND tgrelid IN ('payments'::regclass, 'audit'::regclass, 'strict_t'::regclass) ORDER BY 1;
SELECT t, dualwrite._capture_state(t) FROM unnest(ARRAY['payments', 'audit']::regclass[]) t;

-- 10. a partitioned sync table: rows of its partitions ship at commit, a
-- partition's TRUNCATE ships as deletes; set_mode switches the partitions'
-- triggers too
\c dw_modern
CREATE TABLE public.parted_s (id int, region int, PRIMARY KEY (id, region));
\c contrib_regression
CREATE TABLE parted_s (id int, region int NOT NULL, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE parted_s_1 PARTITION OF parted_s FOR VALUES IN (1);
CREATE TABLE parted_s_2 (region int NOT NULL, id int NOT NULL);
ALTER TABLE parted_s ATTACH PARTITION parted_s_2 FOR VALUES IN (2);
IMPORT FOREIGN SCHEMA public LIMIT TO (parted_s) FROM SERVER modern_check INTO modern;
SELECT dualwrite.enable('parted_s');
SELECT dualwrite.set_mode('parted_s', 'sync');
SELECT tgrelid::regclass, tgnargs FROM pg_trigger WHERE tgname = 'dualwrite_capture'
   AND tgrelid IN ('parted_s'::regclass, 'parted_s_1'::regclass, 'parted_s_2'::regclass) ORDER BY 1;
INSERT INTO parted_s SELECT g, 1 + g % 2 FROM generate_series(1, 10) g;
SELECT region, count(*) FROM modern.parted_s GROUP BY 1 ORDER BY 1;
TRUNCATE parted_s_2;
SELECT region, count(*) FROM modern.parted_s GROUP BY 1 ORDER BY 1;

-- 11. the modern side unreachable: error names the table and the server,
-- never the password of the user mapping; queue commits with a WARNING
CREATE SERVER sync_down FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '1', dbname 'dw_modern');
CREATE USER MAPPING FOR PUBLIC SERVER sync_down OPTIONS (user 'postgres', password 'sync_secret_pw');
DO $$
BEGIN
    EXECUTE format('ALTER SERVER sync_down OPTIONS (SET host %L, SET port %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'));
    EXECUTE format('ALTER USER MAPPING FOR PUBLIC SERVER sync_down OPTIONS (SET user %L)', current_user);
END $$;
SELECT dualwrite.enable('down_t', mode => 'sync', target_server => 'sync_down');
INSERT INTO down_t VALUES (1);
ALTER SERVER sync_down OPTIONS (SET host '127.0.0.1', SET port '1');
INSERT INTO down_t VALUES (2);
SELECT dualwrite.set_mode('down_t', 'sync', 'queue');
INSERT INTO down_t VALUES (3);
SELECT * FROM down_t ORDER BY id;
DO $$
BEGIN
    EXECUTE format('ALTER SERVER sync_down OPTIONS (SET host %L, SET port %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'));
END $$;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.down_t ORDER BY id;

-- 12. status: sync counters and the resolver's in-doubt figures
SELECT table_name, mode, sync_transactions > 0 AS shipped, sync_fallbacks
  FROM dualwrite.status WHERE mode = 'sync' ORDER BY 1;
CALL poll_until($$SELECT in_doubt = 0 FROM dualwrite.status LIMIT 1$$);
SELECT DISTINCT in_doubt, oldest_in_doubt_age FROM dualwrite.status;
SELECT count(*) FROM pg_prepared_xacts;

-- clean up
SELECT dualwrite.disable(t) FROM unnest(ARRAY['payments', 'audit', 'strict_t', 'down_t', 'parted_s', 'two_t']::regclass[]) t;
DROP TABLE payments, audit, strict_t, down_t, parted_s, two_t;
DROP FOREIGN TABLE modern.payments, modern.audit, modern.strict_t, modern.down_t, modern.parted_s, modern.two_t;

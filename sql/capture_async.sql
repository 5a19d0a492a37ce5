--
-- capture_async: committed changes reach the modern side, in per-key commit
-- order; aborted ones never do.
--
SET dualwrite.target_server = 'modern';
SELECT dualwrite.enable('orders');
SELECT tbl, mode, target_server, target_table, column_map, enabled_by = current_user::regrole AS by_me FROM dualwrite.tables;
-- the first enable() onto a server makes its caller the delivering role
SELECT server, deliver_as = current_user::regrole AS delivers_as_me FROM dualwrite.servers;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'orders'::regclass ORDER BY 1;
SELECT dualwrite.enable('orders');

IMPORT FOREIGN SCHEMA public LIMIT TO (orders) FROM SERVER modern_check INTO modern;

INSERT INTO orders SELECT g, 'customer ' || g, g * 1.25, NULL FROM generate_series(1, 500) g;
UPDATE orders SET amount = amount * 2, note = 'doubled' WHERE id % 5 = 0;
-- primary-key updates: delete of the old key, then the new row
UPDATE orders SET id = id + 1000 WHERE id % 7 = 0;
DELETE FROM orders WHERE id % 11 = 0;
-- a rolled-back transaction leaves nothing
BEGIN;
INSERT INTO orders VALUES (9001, 'aborted', 1, NULL);
UPDATE orders SET customer = 'aborted' WHERE id = 1;
ROLLBACK;
-- a rolled-back savepoint leaves nothing, the rest of its transaction does
BEGIN;
INSERT INTO orders VALUES (9002, 'kept', 2, NULL);
SAVEPOINT s;
INSERT INTO orders VALUES (9003, 'rolled back', 3, NULL);
UPDATE orders SET customer = 'rolled back' WHERE id = 2;
ROLLBACK TO SAVEPOINT s;
UPDATE orders SET customer = 'after savepoint' WHERE id = 3;
COMMIT;
-- the same key changed many times: the last committed value wins
UPDATE orders SET amount = 1 WHERE id = 4;
UPDATE orders SET amount = 2 WHERE id = 4;
DELETE FROM orders WHERE id = 4;
INSERT INTO orders VALUES (4, 'reborn', 3, 'third life');
UPDATE orders SET amount = 4 WHERE id = 4;
-- swap two keys through a third, in one transaction
BEGIN;
UPDATE orders SET id = -1 WHERE id = 8;
UPDATE orders SET id = 8 WHERE id = 9;
UPDATE orders SET id = 9 WHERE id = -1;
COMMIT;
-- an upsert fires insert or update triggers
INSERT INTO orders VALUES (6, 'upserted', 6, NULL) ON CONFLICT (id) DO UPDATE SET customer = EXCLUDED.customer;

SELECT dualwrite.wait_for_delivery('60s');
-- row by row, both directions (through postgres_fdw, not pg_dualwrite)
SELECT 'missing on modern' AS problem, l.* FROM (SELECT * FROM orders EXCEPT SELECT * FROM modern.orders) l
UNION ALL
SELECT 'extra on modern', m.* FROM (SELECT * FROM modern.orders EXCEPT SELECT * FROM orders) m;
SELECT count(*) AS rows_legacy, (SELECT count(*) FROM modern.orders) AS rows_modern FROM orders;
SELECT * FROM modern.orders WHERE id IN (1, 2, 3, 4, 6, 8, 9, 9001, 9002, 9003) ORDER BY id;

-- a key that already exists on the modern side (e.g. backfilled): the
-- direct COPY meets a duplicate, and the batch goes through the upsert
\c dw_modern
INSERT INTO orders VALUES (9500, 'stale modern copy', 0, NULL);
\c contrib_regression
INSERT INTO orders VALUES (9500, 'from legacy', 95, 'legacy wins');
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.orders WHERE id = 9500;

-- TRUNCATE is captured too, in order with the rows around it
INSERT INTO orders VALUES (7001, 'before truncate', 1, NULL);
TRUNCATE orders;
INSERT INTO orders VALUES (7002, 'after truncate', 2, NULL);
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.orders ORDER BY id;

-- status adds up: nothing queued, everything applied
SELECT table_name, mode, captured, applied, queued, failed, lag, last_error FROM dualwrite.status;
SELECT state IN ('idle', 'running') AS worker_ok, last_batch_at IS NOT NULL AS delivered
FROM dualwrite.workers WHERE datname = current_database();

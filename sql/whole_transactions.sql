--
-- whole_transactions: a legacy transaction larger than a batch
-- (batch_size 37, max_sort_keys 101 in test/regress.conf) reaches the
-- modern side in ONE remote transaction, in chunks: across batches, across
-- sort passes, through a TRUNCATE, and when a chunk's direct COPY hits a
-- key that already exists on modern (it is redone through the upsert,
-- inside the same transaction).  A modern-side trigger logs the remote
-- transaction that applied each row.
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TABLE public.ledger (id int PRIMARY KEY, amount int NOT NULL);
CREATE TABLE public.ledger_log (step text, id int, xid xid8);
CREATE TABLE public.ledger_step (step text);
CREATE FUNCTION public.log_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ledger_log
        SELECT s.step, NEW.id, pg_catalog.pg_current_xact_id() FROM public.ledger_step s;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_applied AFTER INSERT OR UPDATE ON public.ledger FOR EACH ROW EXECUTE FUNCTION public.log_ledger();
ALTER TABLE public.ledger ENABLE ALWAYS TRIGGER ledger_applied;
\c contrib_regression
CREATE TABLE ledger (id int PRIMARY KEY, amount int NOT NULL);
SELECT dualwrite.enable('ledger');
IMPORT FOREIGN SCHEMA public LIMIT TO (ledger, ledger_log, ledger_step) FROM SERVER modern_check INTO modern;

-- 1. 100 inserts (three batches of 37)
INSERT INTO modern.ledger_step VALUES ('inserts');
INSERT INTO ledger SELECT g, g FROM generate_series(1, 100) g;
SELECT dualwrite.wait_for_delivery('60s');
SELECT count(*) AS rows, count(DISTINCT xid) AS remote_transactions FROM modern.ledger_log WHERE step = 'inserts';

-- 2. 250 updates: more than one sort pass (101 keys), the remote
-- transaction stays open across passes
UPDATE modern.ledger_step SET step = 'passes';
INSERT INTO ledger SELECT g, 0 FROM generate_series(101, 250) g;
BEGIN;
UPDATE ledger SET amount = amount + 1;
UPDATE ledger SET amount = amount - 1 WHERE id <= 10;
COMMIT;
SELECT dualwrite.wait_for_delivery('60s');
SELECT count(DISTINCT id) AS keys, count(DISTINCT xid) AS remote_transactions FROM modern.ledger_log WHERE step = 'passes' AND id <= 100;

-- 3. a key that already exists on modern, in the second chunk of inserts:
-- that chunk's direct COPY fails and is redone through the upsert, the
-- transaction goes on
UPDATE modern.ledger_step SET step = 'duplicate';
INSERT INTO modern.ledger VALUES (300, -1);
DELETE FROM modern.ledger_log WHERE id = 300;
INSERT INTO ledger SELECT g, g FROM generate_series(251, 350) g;
SELECT dualwrite.wait_for_delivery('60s');
SELECT count(*) AS rows, count(DISTINCT xid) AS remote_transactions FROM modern.ledger_log WHERE step = 'duplicate';
SELECT amount FROM modern.ledger WHERE id = 300;

-- 4. TRUNCATE in the middle of a large transaction
UPDATE modern.ledger_step SET step = 'truncate';
BEGIN;
UPDATE ledger SET amount = 7 WHERE id <= 50;
TRUNCATE ledger;
INSERT INTO ledger SELECT g, -g FROM generate_series(1, 60) g;
COMMIT;
SELECT dualwrite.wait_for_delivery('60s');
SELECT count(*) AS rows, count(DISTINCT xid) AS remote_transactions FROM modern.ledger_log WHERE step = 'truncate';

-- both sides hold the same rows
SELECT count(*) AS differences FROM (
    (SELECT * FROM ledger EXCEPT SELECT * FROM modern.ledger)
    UNION ALL
    (SELECT * FROM modern.ledger EXCEPT SELECT * FROM ledger)) d;

SELECT dualwrite.disable('ledger');
DROP TABLE ledger;
DROP FOREIGN TABLE modern.ledger, modern.ledger_log, modern.ledger_step;

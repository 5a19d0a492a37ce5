--
-- truncate_partitions: TRUNCATE of a partitioned table, of one partition and
-- of a sub-tree reaches the modern side (which need not be partitioned),
-- and the tables one statement truncates are truncated together there, so
-- tables that reference each other can be truncated at all.
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TABLE public.sales (id int PRIMARY KEY, v text);
CREATE TABLE public.parent_t (id int PRIMARY KEY);
CREATE TABLE public.child_t (id int PRIMARY KEY, parent_id int REFERENCES public.parent_t);
\c contrib_regression
CREATE TABLE sales (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE sales_1 PARTITION OF sales FOR VALUES FROM (0) TO (100);
CREATE TABLE sales_2 PARTITION OF sales FOR VALUES FROM (100) TO (200) PARTITION BY RANGE (id);
CREATE TABLE sales_2a PARTITION OF sales_2 FOR VALUES FROM (100) TO (150);
CREATE TABLE sales_2b PARTITION OF sales_2 FOR VALUES FROM (150) TO (200);
SELECT dualwrite.enable('sales');
-- statement triggers are not cloned to partitions: ours sits on every level
SELECT c.relname, t.tgtype FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid AND c.relname LIKE 'sales%'
WHERE t.tgname = 'dualwrite_capture_truncate' ORDER BY 1;
IMPORT FOREIGN SCHEMA public LIMIT TO (sales, parent_t, child_t) FROM SERVER modern_check INTO modern;

INSERT INTO sales SELECT g, 'v' || g FROM generate_series(1, 199, 7) g;
SELECT dualwrite.wait_for_delivery('60s');
SELECT count(*) AS delivered FROM modern.sales;

-- the whole partitioned table
TRUNCATE sales;
INSERT INTO sales VALUES (3, 'after');
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.sales ORDER BY id;

-- one partition: its rows go, the others stay
INSERT INTO sales SELECT g, 'again ' || g FROM generate_series(10, 190, 20) g;
TRUNCATE sales_1;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.sales ORDER BY id;

-- a sub-tree, then new rows in the same transaction
BEGIN;
TRUNCATE sales_2;
INSERT INTO sales VALUES (160, 'new in 2b'), (20, 'new in 1');
COMMIT;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.sales ORDER BY id;
SELECT 'missing on modern' AS problem, l.* FROM (SELECT * FROM sales EXCEPT SELECT * FROM modern.sales) l
UNION ALL
SELECT 'extra on modern', m.* FROM (SELECT * FROM modern.sales EXCEPT SELECT * FROM sales) m;

-- tables that reference each other: one TRUNCATE on the modern side, even
-- where a batch boundary (batch_size 37) falls inside the statement's group
CREATE TABLE parent_t (id int PRIMARY KEY);
CREATE TABLE child_t (id int PRIMARY KEY, parent_id int REFERENCES parent_t);
SELECT dualwrite.enable('parent_t');
SELECT dualwrite.enable('child_t');
DO $$
BEGIN
    FOR k IN 34..38 LOOP
        INSERT INTO parent_t SELECT g FROM generate_series(1, 5) g;
        INSERT INTO child_t SELECT g, g FROM generate_series(1, 5) g;
        COMMIT;
        -- k changes, then the two tables' TRUNCATE, in one transaction
        INSERT INTO parent_t SELECT g FROM generate_series(100, 99 + k) g;
        TRUNCATE child_t, parent_t;
        INSERT INTO parent_t VALUES (k);
        INSERT INTO child_t VALUES (k, k);
        COMMIT;
    END LOOP;
END $$;
TRUNCATE parent_t CASCADE;
INSERT INTO parent_t VALUES (7);
INSERT INTO child_t VALUES (70, 7);
SELECT dualwrite.wait_for_delivery('60s');
SELECT (SELECT array_agg(id ORDER BY id) FROM modern.parent_t) AS parents,
       (SELECT array_agg(id ORDER BY id) FROM modern.child_t) AS children;
SELECT table_name, queued, failed, last_error FROM dualwrite.status
WHERE table_name IN ('sales'::regclass, 'parent_t'::regclass, 'child_t'::regclass) ORDER BY 1;

-- partitions created or attached later capture their own TRUNCATE too
CREATE TABLE sales_3 PARTITION OF sales FOR VALUES FROM (200) TO (300);
CREATE TABLE sales_4 (id int PRIMARY KEY, v text);
ALTER TABLE sales ATTACH PARTITION sales_4 FOR VALUES FROM (300) TO (400);
SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = 'dualwrite_capture_truncate' AND c.relname IN ('sales_3', 'sales_4') ORDER BY 1;
SELECT dualwrite._capture_state('sales');
INSERT INTO sales VALUES (250, 'in 3'), (350, 'in 4'), (260, 'in 3 too');
SELECT dualwrite.wait_for_delivery('60s');
TRUNCATE sales_3;
TRUNCATE sales_4;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.sales ORDER BY id;

SELECT dualwrite.disable('child_t');
SELECT dualwrite.disable('parent_t');
SELECT dualwrite.disable('sales');
-- disable removes the trigger from every partition too
SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname LIKE 'dualwrite%' AND c.relname LIKE 'sales%';
DROP TABLE child_t, parent_t, sales;

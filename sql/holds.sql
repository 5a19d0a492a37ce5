--
-- holds: a change the modern side rejects for good (here a CHECK
-- constraint it has and legacy has not) holds its table in a stream of its
-- own; the other tables of the same server keep flowing, the held table's
-- later changes wait behind the rejected one, status says why, and once
-- the cause is fixed the table catches up and rejoins its server's stream.
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TABLE public.picky (id int PRIMARY KEY, qty int CONSTRAINT qty_not_negative CHECK (qty >= 0));
CREATE TABLE public.easy (id int PRIMARY KEY, note text);
\c contrib_regression
CREATE TABLE picky (id int PRIMARY KEY, qty int);
CREATE TABLE easy (id int PRIMARY KEY, note text);
SELECT dualwrite.enable('picky');
SELECT dualwrite.enable('easy');
IMPORT FOREIGN SCHEMA public LIMIT TO (picky, easy) FROM SERVER modern_check INTO modern;
INSERT INTO picky VALUES (1, 5), (2, 6);
SELECT dualwrite.wait_for_delivery('60s');

-- rejected for good, in a transaction that also writes the other table
BEGIN;
INSERT INTO picky VALUES (3, -1);
INSERT INTO easy VALUES (1, 'same transaction');
COMMIT;
UPDATE picky SET qty = 7 WHERE id = 1;   -- waits behind the rejected change
INSERT INTO easy VALUES (2, 'later');
CALL poll_until($$SELECT count(*) = 2 FROM modern.easy$$);
SELECT * FROM modern.easy ORDER BY id;
SELECT * FROM modern.picky ORDER BY id;
CALL poll_until($$SELECT held_since IS NOT NULL FROM dualwrite.status WHERE table_name = 'picky'::regclass$$);
CALL poll_until($$SELECT queued = 0 FROM dualwrite.status WHERE table_name = 'easy'::regclass$$);
SELECT table_name, held_since IS NOT NULL AS held, held_reason, queued, failed > 0 AS failed
FROM dualwrite.status WHERE table_name IN ('picky'::regclass, 'easy'::regclass) ORDER BY 1;
SELECT dualwrite.wait_for_delivery('1s') AS all_delivered;

-- the cause is fixed on the modern side: the table catches up, rejoins
\c dw_modern
ALTER TABLE picky DROP CONSTRAINT qty_not_negative;
\c contrib_regression
SELECT dualwrite.wait_for_delivery('60s');
CALL poll_until($$SELECT held_since IS NULL FROM dualwrite.status WHERE table_name = 'picky'::regclass$$);
SELECT * FROM modern.picky ORDER BY id;
SELECT count(*) AS holds FROM dualwrite._held;

-- back in its server's stream: changes of both tables flow, in order
BEGIN;
INSERT INTO picky VALUES (4, 1);
UPDATE picky SET qty = qty + 10 WHERE id = 3;
INSERT INTO easy VALUES (3, 'after');
COMMIT;
SELECT dualwrite.wait_for_delivery('60s');
SELECT 'picky' AS t, count(*) AS differences FROM (SELECT * FROM picky EXCEPT SELECT * FROM modern.picky) d
UNION ALL
SELECT 'easy', count(*) FROM (SELECT * FROM easy EXCEPT SELECT * FROM modern.easy) d;
SELECT table_name, held_since, queued FROM dualwrite.status WHERE table_name IN ('picky'::regclass, 'easy'::regclass) ORDER BY 1;
-- a configuration that no longer fits its table (a renamed column that
-- column_map names) holds that table only
\c dw_modern
CREATE TABLE public.mapped (id int PRIMARY KEY, label text);
\c contrib_regression
CREATE TABLE mapped (id int PRIMARY KEY, name text);
SELECT dualwrite.enable('mapped', column_map => '{"name": "label"}');
IMPORT FOREIGN SCHEMA public LIMIT TO (mapped) FROM SERVER modern_check INTO modern;
ALTER TABLE mapped RENAME COLUMN name TO title;
INSERT INTO mapped VALUES (1, 'one');
INSERT INTO easy VALUES (10, 'flows on');
CALL poll_until($$SELECT count(*) = 1 FROM modern.easy WHERE id = 10$$);
CALL poll_until($$SELECT held_since IS NOT NULL FROM dualwrite.status WHERE table_name = 'mapped'::regclass$$);
SELECT table_name, held_reason FROM dualwrite.status WHERE table_name = 'mapped'::regclass;
ALTER TABLE mapped RENAME COLUMN title TO name;
SELECT dualwrite.wait_for_delivery('60s');
CALL poll_until($$SELECT held_since IS NULL FROM dualwrite.status WHERE table_name = 'mapped'::regclass$$);
SELECT * FROM modern.mapped;
SELECT dualwrite.disable('mapped');
DROP TABLE mapped;

SELECT dualwrite.disable('picky');
SELECT dualwrite.disable('easy');
DROP TABLE picky, easy;

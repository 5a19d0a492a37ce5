--
-- outbox_rotation: a prepared transaction that wrote a flagged table holds
-- its outbox generation until COMMIT PREPARED; capture keeps rotating
-- between the other two (the outbox stays bounded), dualwrite.outbox shows
-- who holds what, and the prepared change is delivered once committed.
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TABLE public.notes (id int PRIMARY KEY, t text);
\c contrib_regression
CREATE TABLE notes (id int PRIMARY KEY, t text);
SELECT dualwrite.enable('notes');
IMPORT FOREIGN SCHEMA public LIMIT TO (notes) FROM SERVER modern_check INTO modern;

BEGIN;
INSERT INTO notes VALUES (0, 'prepared');
PREPARE TRANSACTION 'dw_held';
SELECT generation AS held FROM dualwrite.outbox WHERE held_by_prepared = '{dw_held}'::text[] \gset
SELECT count(*) AS held_generations FROM dualwrite.outbox WHERE held_by_prepared IS NOT NULL;

-- capture moves on and comes back to a generation it left before, without
-- ever taking the held one (outbox_rotate_interval is 1 s in this suite)
CREATE TEMP TABLE visited (n serial, gen int);
DO $$
DECLARE
    g int;
    last int := -1;
BEGIN
    FOR i IN 1..200 LOOP
        INSERT INTO notes VALUES (i, 'row ' || i);
        COMMIT;
        PERFORM pg_sleep(0.1);
        g := dualwrite._capture_generation();
        IF g IS DISTINCT FROM last THEN
            INSERT INTO visited (gen) VALUES (g);
            last := g;
        END IF;
        EXIT WHEN (SELECT count(*) FROM visited) >= 5;
    END LOOP;
END $$;
SELECT count(*) >= 5 AS kept_rotating,
       bool_or(gen = :held AND n > 1) AS reused_held_generation
FROM visited;
SELECT bool_and(NOT is_current) AS held_not_current FROM dualwrite.outbox WHERE generation = :held;

COMMIT PREPARED 'dw_held';
SELECT count(*) AS held_generations FROM dualwrite.outbox WHERE held_by_prepared IS NOT NULL;
SELECT dualwrite.wait_for_delivery('60s');
SELECT (SELECT count(*) FROM notes) = (SELECT count(*) FROM modern.notes) AS same_count,
       (SELECT t FROM modern.notes WHERE id = 0) AS prepared_row;
SELECT dualwrite.disable('notes');
DROP TABLE notes;

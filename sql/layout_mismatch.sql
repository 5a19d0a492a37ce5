--
-- layout_mismatch: a change captured under a column layout the table no
-- longer has is never decoded with the new one (that read garbage lengths
-- and crashed the worker, and with it the whole cluster).  The worker
-- stops that stream with an error that says what happened; the backend
-- and every other server keep working.
--
\c dw_modern
CREATE TABLE public.lay (id int PRIMARY KEY, c text);
\c contrib_regression
CALL make_server('lay_srv');
CREATE TABLE lay (id int PRIMARY KEY, c int);
SELECT dualwrite.enable('lay', target_server => 'lay_srv');
-- hold delivery, capture int images, then rewrite the column as text with
-- the DDL guard out of the way (a superuser in replica mode skips event
-- triggers): the only way left to get such images
ALTER SERVER lay_srv OPTIONS (SET port '1');
INSERT INTO lay VALUES (1, 2147483632), (2, 7);
SET session_replication_role = replica;
ALTER TABLE lay ALTER c TYPE text USING c::text;
RESET session_replication_role;
DO $$ BEGIN
    EXECUTE format('ALTER SERVER lay_srv OPTIONS (SET port %L)', current_setting('port'));
END $$;
SELECT dualwrite.wait_for_delivery('2s') AS delivered;
SELECT pg_sleep(0.5);
CALL poll_until($$SELECT held_since IS NOT NULL FROM dualwrite.status WHERE table_name = 'lay'::regclass$$);
SELECT last_error, held_reason FROM dualwrite.status WHERE table_name = 'lay'::regclass;
-- the worker is alive and other tables flow
SELECT state IN ('backing off', 'idle', 'running') AS worker_alive FROM dualwrite.workers
WHERE datname = current_database();
INSERT INTO orders VALUES (424242, 'still flowing', 1, NULL);
SELECT pg_sleep(0.3);
SELECT customer FROM modern.orders WHERE id = 424242;
DELETE FROM orders WHERE id = 424242;
-- the way out: disable (discards the undecodable changes) and enable again
SELECT dualwrite.disable('lay');
SELECT dualwrite.enable('lay', target_server => 'lay_srv');
INSERT INTO lay VALUES (3, 'three');
SELECT dualwrite.wait_for_delivery('60s');
\c dw_modern
SELECT * FROM lay ORDER BY id;
\c contrib_regression
SELECT dualwrite.disable('lay');
DROP TABLE lay;
DROP SERVER lay_srv CASCADE;

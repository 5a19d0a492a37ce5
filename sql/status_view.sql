--
-- status_view: an unreachable target queues changes, shows the error and
-- the worker's state, and delivery resumes by itself when it is back.
--
SELECT table_name, queued, failed FROM dualwrite.status WHERE table_name = 'orders'::regclass;
-- point the server at a closed port: the worker reconnects (options changed) and fails
ALTER SERVER modern OPTIONS (SET port '1', ADD hostaddr '127.0.0.1', SET host '127.0.0.1');
INSERT INTO orders VALUES (8101, 'queued 1', 1, NULL), (8102, 'queued 2', 2, NULL);
UPDATE orders SET amount = 42 WHERE id = 8001;
SELECT dualwrite.wait_for_delivery('1s') AS delivered_while_down;
-- wait until the worker has noticed
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN (SELECT state = 'target unreachable' FROM dualwrite.workers WHERE datname = current_database());
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT state, last_error ~ 'could not connect to server "modern"' AS error_names_server,
       last_error !~ 'password' AS no_password
FROM dualwrite.workers WHERE datname = current_database();
SELECT table_name, queued, lag > interval '0' AS lagging, oldest_pending IS NOT NULL AS has_oldest,
       catch_up_eta IS NOT NULL AS has_eta, failed > 0 AS counts_failures,
       last_error ~ 'could not connect to server "modern"' AS table_shows_error, last_error_at IS NOT NULL AS has_error_time
FROM dualwrite.status WHERE table_name = 'orders'::regclass;
-- a table rewrite would make queued row images unreadable: refused meanwhile
ALTER TABLE orders ALTER COLUMN note TYPE integer USING length(note);
-- a change that keeps the layout is fine
ALTER TABLE orders ALTER COLUMN note SET DEFAULT 'none';
-- back: delivery resumes by itself
DO $$
BEGIN
    EXECUTE format('ALTER SERVER modern OPTIONS (SET port %L, DROP hostaddr, SET host %L)',
                   current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1));
END $$;
SELECT dualwrite.wait_for_delivery('60s') AS delivered_after_recovery;
SELECT table_name, queued, lag, catch_up_eta, last_error, last_error_at FROM dualwrite.status WHERE table_name = 'orders'::regclass;
SELECT id, customer, amount FROM modern.orders WHERE id > 8000 ORDER BY id;
SELECT state IN ('idle', 'running') AS worker_recovered FROM dualwrite.workers WHERE datname = current_database();

--
-- disable: removes the triggers and the catalog row; later changes are not
-- captured; queued ones are discarded with a notice.  Dropping a flagged
-- table unflags it.
--
ALTER SERVER modern OPTIONS (SET port '1', ADD hostaddr '127.0.0.1', SET host '127.0.0.1');
INSERT INTO orders VALUES (8201, 'never delivered', 1, NULL);
SELECT dualwrite.disable('orders');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND tgname LIKE 'dualwrite%';
SELECT count(*) AS flagged FROM dualwrite.tables WHERE tbl = 'orders'::regclass;
SELECT dualwrite.disable('orders');
DO $$
BEGIN
    EXECUTE format('ALTER SERVER modern OPTIONS (SET port %L, DROP hostaddr, SET host %L)',
                   current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1));
END $$;
INSERT INTO orders VALUES (8202, 'not captured', 1, NULL);
SELECT dualwrite.wait_for_delivery('60s');
SELECT count(*) AS arrived FROM modern.orders WHERE id IN (8201, 8202);
-- enable again: only new changes flow
SELECT dualwrite.enable('orders');
UPDATE orders SET note = 're-enabled' WHERE id = 8202;
SELECT dualwrite.wait_for_delivery('60s');
SELECT id, note FROM modern.orders WHERE id IN (8201, 8202) ORDER BY id;
-- dropping a flagged table unflags it
DROP TABLE "Odd Schema"."Order ""Items""";
SELECT tbl FROM dualwrite.tables ORDER BY tbl::text;

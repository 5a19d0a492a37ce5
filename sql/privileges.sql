--
-- privileges: an ordinary role's writes are captured although it has no
-- right on the dualwrite schema; it can neither read the outbox nor the
-- connection settings, nor switch capture off.
--
CREATE ROLE dw_app NOLOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO dw_app;
SET ROLE dw_app;
INSERT INTO orders VALUES (8001, 'from app role', 10, NULL);
UPDATE orders SET note = 'app was here' WHERE id = 8001;
-- what it may not do
SELECT count(*) FROM dualwrite._outbox_0;
SELECT * FROM dualwrite.tables;
SELECT * FROM dualwrite.status;
SELECT dualwrite.enable('orders');
SELECT dualwrite.disable('orders');
SET session_replication_role = replica;
SET dualwrite.target_server = 'elsewhere';
SHOW dualwrite.target_server;
ALTER TABLE orders DISABLE TRIGGER dualwrite_capture;
DROP TRIGGER dualwrite_capture ON orders;
SELECT umoptions FROM pg_user_mappings WHERE srvname = 'modern';
SELECT srvoptions IS NOT NULL AS sees_server_options FROM pg_foreign_server WHERE srvname = 'modern';
DELETE FROM orders WHERE id = 7002;
RESET ROLE;

SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.orders ORDER BY id;

--
-- pause: the switches.  dualwrite.pause() stops the delivery of one table
-- while its capture goes on (the other tables of the server keep flowing),
-- status shows it paused with its changes queued, and dualwrite.resume()
-- lets it catch up and rejoin its server's stream, in capture order.  The
-- global dualwrite.enabled stops capture itself (superuser only).
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TABLE public.p_a (id int PRIMARY KEY, v text);
CREATE TABLE public.p_b (id int PRIMARY KEY, v text);
\c contrib_regression
CREATE TABLE p_a (id int PRIMARY KEY, v text);
CREATE TABLE p_b (id int PRIMARY KEY, v text);
SELECT dualwrite.enable('p_a');
SELECT dualwrite.enable('p_b');
IMPORT FOREIGN SCHEMA public LIMIT TO (p_a, p_b) FROM SERVER modern_check INTO modern;
INSERT INTO p_a VALUES (1, 'before');
INSERT INTO p_b VALUES (1, 'before');
SELECT dualwrite.wait_for_delivery('60s');

SELECT dualwrite.pause('p_a');
SELECT dualwrite.pause('p_a');
CALL poll_until($$SELECT held_since IS NOT NULL FROM dualwrite.status WHERE table_name = 'p_a'::regclass$$);
-- in one transaction: the unpaused table's change is applied now
BEGIN;
UPDATE p_a SET v = 'while paused' WHERE id = 1;
INSERT INTO p_a VALUES (2, 'while paused');
INSERT INTO p_b VALUES (2, 'while paused');
COMMIT;
DELETE FROM p_a WHERE id = 2;
CALL poll_until($$SELECT count(*) = 2 FROM modern.p_b$$);
SELECT pg_sleep(0.5);
SELECT * FROM modern.p_a ORDER BY id;
SELECT table_name, paused, queued, held_reason FROM dualwrite.status
WHERE table_name IN ('p_a'::regclass, 'p_b'::regclass) ORDER BY 1;

SELECT dualwrite.resume('p_a');
SELECT dualwrite.wait_for_delivery('60s');
CALL poll_until($$SELECT held_since IS NULL FROM dualwrite.status WHERE table_name = 'p_a'::regclass$$);
SELECT * FROM modern.p_a ORDER BY id;
SELECT table_name, paused, queued, held_since FROM dualwrite.status
WHERE table_name IN ('p_a'::regclass, 'p_b'::regclass) ORDER BY 1;
SELECT dualwrite.resume('p_a');

-- errors: a table that is not flagged; a role that does not own the table
SELECT dualwrite.pause('pg_class');
CREATE ROLE p_other;
GRANT USAGE ON SCHEMA dualwrite TO p_other;
GRANT EXECUTE ON FUNCTION dualwrite.pause(regclass) TO p_other;
SET ROLE p_other;
SELECT dualwrite.pause('p_b');
RESET ROLE;
REVOKE ALL ON FUNCTION dualwrite.pause(regclass) FROM p_other;
REVOKE ALL ON SCHEMA dualwrite FROM p_other;
DROP ROLE p_other;
SELECT paused FROM dualwrite.tables WHERE tbl = 'p_b'::regclass;

-- the global switch dualwrite.enabled: only a superuser can turn capture
-- off, and then the capture warns once and status says so loudly
CREATE ROLE sw_plain;
GRANT INSERT ON p_b TO sw_plain;
SET ROLE sw_plain;
SET dualwrite.enabled = off;
ALTER ROLE sw_plain SET dualwrite.enabled = off;
SET session_replication_role = replica;
ALTER TABLE p_b DISABLE TRIGGER dualwrite_capture;
INSERT INTO p_b VALUES (3, 'captured');
RESET ROLE;
SET dualwrite.enabled = off;
INSERT INTO p_b VALUES (4, 'not captured');
INSERT INTO p_b VALUES (5, 'not captured either');
RESET dualwrite.enabled;
INSERT INTO p_b VALUES (6, 'captured again');
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM modern.p_b ORDER BY id;
SELECT table_name, capture LIKE 'NOT CAPTURED since % dualwrite.enabled was off; the databases diverge, reconcile needed'
       AS says_diverged
FROM dualwrite.status WHERE table_name = 'p_b'::regclass;
REVOKE ALL ON p_b FROM sw_plain;
DROP ROLE sw_plain;

SELECT dualwrite.disable('p_a');
SELECT dualwrite.disable('p_b');
DROP TABLE p_a, p_b;

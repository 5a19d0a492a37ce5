--
-- enable_errors: every bad input gets a clear error and changes nothing.
--
SET dualwrite.target_server = 'modern';
CREATE TABLE no_pk (a int, b text);
CREATE VIEW orders_view AS SELECT * FROM orders;
CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
CREATE TABLE only_legacy (id int PRIMARY KEY);
CREATE TABLE missing_col (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), note text, extra int);
CREATE TABLE wrong_type (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), note boolean);
CREATE TABLE no_target_key (id bigint PRIMARY KEY, v text);
\c dw_modern
CREATE TABLE public.missing_col (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), note text);
CREATE TABLE public.wrong_type (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), note timestamptz);
CREATE TABLE public.no_target_key (id bigint, v text);
\c contrib_regression
SET dualwrite.target_server = 'modern';
CREATE TEMP TABLE temp_t (id int PRIMARY KEY);

-- unknown relation, wrong kinds
SELECT dualwrite.enable('no_such_table');
SELECT dualwrite.enable('orders_view');
SELECT dualwrite.enable('temp_t');
SELECT dualwrite.enable('parted_1');
SELECT dualwrite.enable('pg_class');
SELECT dualwrite.enable('dualwrite._outbox_0');
-- no key
SELECT dualwrite.enable('no_pk');
-- bad mode, no server, unknown server
SELECT dualwrite.enable('orders', mode => 'sometimes');
SELECT dualwrite.enable('orders', mode => 'sync', sync_failure => 'sometimes');
SELECT dualwrite.enable('orders', sync_failure => 'queue');
SELECT dualwrite.enable('orders', target_server => 'nowhere');
RESET dualwrite.target_server;
SET dualwrite.target_server = '';
SELECT dualwrite.enable('orders');
SET dualwrite.target_server = 'modern';
-- target side problems
SELECT dualwrite.enable('only_legacy');
SELECT dualwrite.enable('orders', target_table => 'public.nothing_here');
SELECT dualwrite.enable('orders', target_table => 'a.b.c');
SELECT dualwrite.enable('missing_col');
SELECT dualwrite.enable('wrong_type');
SELECT dualwrite.enable('no_target_key');
-- bad column maps
SELECT dualwrite.enable('orders', column_map => '[1,2]');
SELECT dualwrite.enable('orders', column_map => '{"nope": "x"}');
SELECT dualwrite.enable('orders', column_map => '{"id": null}');
SELECT dualwrite.enable('orders', column_map => '{"note": 42}');
-- unreachable target; the password of the user mapping never shows
SELECT dualwrite.enable('orders', target_server => 'ok1');
-- a bad connection option is rejected before anything is stored
CREATE SERVER badconn FOREIGN DATA WRAPPER dualwrite OPTIONS (sslmode 'sometimes');
CREATE USER MAPPING FOR PUBLIC SERVER badconn OPTIONS (user 'x');
SELECT dualwrite.enable('orders', target_server => 'badconn');
-- missing column is accepted once mapped away (then rolled back)
BEGIN;
SELECT dualwrite.enable('missing_col', column_map => '{"extra": null}');
SELECT tbl, target_table, column_map FROM dualwrite.tables;
ROLLBACK;

-- Nothing changed: no catalog row, no trigger, nothing captured.
SELECT count(*) AS flagged FROM dualwrite.tables;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgname LIKE 'dualwrite%';
INSERT INTO missing_col VALUES (1, 'a', 1, 'n', 1);
SELECT (SELECT count(*) FROM dualwrite._outbox_0) + (SELECT count(*) FROM dualwrite._outbox_1)
     + (SELECT count(*) FROM dualwrite._outbox_2) AS outbox_rows;

-- The capture trigger refuses to be misused.
CREATE TABLE misuse (id int PRIMARY KEY);
CREATE TRIGGER m BEFORE INSERT ON misuse FOR EACH ROW EXECUTE FUNCTION dualwrite._capture();
INSERT INTO misuse VALUES (1);
DROP TABLE misuse;
SELECT dualwrite.disable('no_pk');
DROP VIEW orders_view;

--
-- large_rows: a batch is bounded by the size of its row images too
-- (dualwrite.batch_bytes), not only by dualwrite.batch_size, so a table of
-- rows of several MB cannot make the worker hold gigabytes.
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TABLE public.blobs (id int PRIMARY KEY, payload text);
-- Which remote transaction, and which statement (chunk), applied each row.
CREATE TABLE public.blobs_log (id int, xid xid8, stmt timestamptz);
CREATE FUNCTION public.log_blob() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.blobs_log VALUES (NEW.id, pg_catalog.pg_current_xact_id(), pg_catalog.statement_timestamp());
    RETURN NULL;
END $$;
CREATE TRIGGER blob_applied AFTER INSERT OR UPDATE ON public.blobs FOR EACH ROW EXECUTE FUNCTION public.log_blob();
ALTER TABLE public.blobs ENABLE ALWAYS TRIGGER blob_applied;
\c contrib_regression
CREATE TABLE blobs (id int PRIMARY KEY, payload text);
-- stored uncompressed, so every image is its full 3 MB
ALTER TABLE blobs ALTER payload SET STORAGE EXTERNAL;
SELECT dualwrite.enable('blobs');
IMPORT FOREIGN SCHEMA public LIMIT TO (blobs, blobs_log) FROM SERVER modern_check INTO modern;

ALTER SYSTEM SET dualwrite.batch_bytes = '4MB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT batches AS batches_before FROM dualwrite.workers WHERE datname = current_database() \gset
-- six 3 MB rows in one transaction: at most two per batch (the row that
-- reaches 4 MB ends it), so three chunks, inside ONE remote transaction
-- (whole transactions: a reader on modern sees all six rows or none)
INSERT INTO blobs SELECT g, repeat(chr(64 + g), 3 * 1024 * 1024) FROM generate_series(1, 6) g;
SELECT dualwrite.wait_for_delivery('120s');
SELECT batches - :batches_before AS batches FROM dualwrite.workers WHERE datname = current_database();
SELECT count(DISTINCT xid) AS remote_transactions, count(DISTINCT stmt) AS chunks FROM modern.blobs_log;
-- six 3 MB rows in six transactions: a batch still ends at the byte limit
-- (at a transaction boundary), so no remote transaction has more than two
-- (fewer when the worker picks them up one by one)
BEGIN; INSERT INTO blobs SELECT 7, repeat('G', 3 * 1024 * 1024); COMMIT;
BEGIN; INSERT INTO blobs SELECT 8, repeat('H', 3 * 1024 * 1024); COMMIT;
BEGIN; INSERT INTO blobs SELECT 9, repeat('I', 3 * 1024 * 1024); COMMIT;
BEGIN; INSERT INTO blobs SELECT 10, repeat('J', 3 * 1024 * 1024); COMMIT;
BEGIN; INSERT INTO blobs SELECT 11, repeat('K', 3 * 1024 * 1024); COMMIT;
BEGIN; INSERT INTO blobs SELECT 12, repeat('L', 3 * 1024 * 1024); COMMIT;
SELECT dualwrite.wait_for_delivery('120s');
SELECT count(*) >= 3 AS three_or_more, max(n) <= 2 AS at_most_two
FROM (SELECT xid, count(*) AS n FROM modern.blobs_log WHERE id > 6 GROUP BY xid) x;
SELECT m.id, length(m.payload), md5(m.payload) = md5(l.payload) AS same
FROM modern.blobs m JOIN blobs l USING (id) ORDER BY id;

ALTER SYSTEM RESET dualwrite.batch_bytes;
SELECT pg_reload_conf();
SELECT dualwrite.disable('blobs');
DROP TABLE blobs;

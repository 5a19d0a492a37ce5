--
-- large_rows: a batch is bounded by the size of its row images too
-- (dualwrite.batch_bytes), not only by dualwrite.batch_size, so a table of
-- rows of several MB cannot make the worker hold gigabytes.
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TABLE public.blobs (id int PRIMARY KEY, payload text);
\c contrib_regression
CREATE TABLE blobs (id int PRIMARY KEY, payload text);
-- stored uncompressed, so every image is its full 3 MB
ALTER TABLE blobs ALTER payload SET STORAGE EXTERNAL;
SELECT dualwrite.enable('blobs');
IMPORT FOREIGN SCHEMA public LIMIT TO (blobs) FROM SERVER modern_check INTO modern;

ALTER SYSTEM SET dualwrite.batch_bytes = '4MB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT batches AS batches_before FROM dualwrite.workers WHERE datname = current_database() \gset
-- six 3 MB rows in one transaction: at most two per batch (the row that
-- reaches 4 MB ends it), so three remote transactions instead of one
INSERT INTO blobs SELECT g, repeat(chr(64 + g), 3 * 1024 * 1024) FROM generate_series(1, 6) g;
SELECT dualwrite.wait_for_delivery('120s');
SELECT batches - :batches_before AS batches FROM dualwrite.workers WHERE datname = current_database();
SELECT m.id, length(m.payload), md5(m.payload) = md5(l.payload) AS same
FROM modern.blobs m JOIN blobs l USING (id) ORDER BY id;

ALTER SYSTEM RESET dualwrite.batch_bytes;
SELECT pg_reload_conf();
SELECT dualwrite.disable('blobs');
DROP TABLE blobs;

--
-- checksums: row_checksum, table_checksum, checksum_sql, remote_checksum.
-- The legacy figures are computed in C++; the modern ones by the generated
-- plain SQL, run in dw_modern (which has no pg_dualwrite) both over the
-- extension's connection and directly with \c.
--
SET dualwrite.target_server = 'modern';

-- The canonical form, pinned: field = 'V' uint32-length bytes | 'N'; row =
-- field(name) field(value) per column, by name.
SELECT dualwrite.row_checksum(x) = sha256('\x56000000026631560000000131'::bytea) AS pinned
FROM (SELECT 1 AS f1) x;
SELECT dualwrite.row_checksum(x) = sha256('\x560000000161' || '\x4e'::bytea) AS null_marker
FROM (SELECT NULL::text AS a) x;
-- equal values however typed or stored; different values differ
SELECT
  dualwrite.row_checksum(ROW(1.50::numeric)) = dualwrite.row_checksum(ROW(1.5::numeric(10,4))) AS numeric_scale,
  dualwrite.row_checksum(ROW('NaN'::numeric)) = dualwrite.row_checksum(ROW('NaN'::numeric(5,2))) AS numeric_nan,
  dualwrite.row_checksum(ROW(1::int2)) = dualwrite.row_checksum(ROW(1::int8)) AS int_widths,
  dualwrite.row_checksum(ROW(1.5::real)) = dualwrite.row_checksum(ROW(1.5::float8)) AS float_widths,
  dualwrite.row_checksum(ROW('NaN'::real)) = dualwrite.row_checksum(ROW('NaN'::float8)) AS float_nan,
  dualwrite.row_checksum(ROW('-0'::float8)) <> dualwrite.row_checksum(ROW('0'::float8)) AS neg_zero_differs,
  dualwrite.row_checksum(ROW(''::text)) <> dualwrite.row_checksum(ROW(NULL::text)) AS empty_is_not_null,
  dualwrite.row_checksum(ROW('2024-01-01 12:00+02'::timestamptz)) = dualwrite.row_checksum(ROW('2024-01-01 10:00 UTC'::timestamptz)) AS same_instant,
  dualwrite.row_checksum(ROW('{"b":1, "a":[1,2]}'::jsonb)) = dualwrite.row_checksum(ROW('{"a": [1, 2], "b": 1}'::jsonb)) AS jsonb_canonical,
  dualwrite.row_checksum(ROW('{1,2}'::int[])) <> dualwrite.row_checksum(ROW('[0:1]={1,2}'::int[])) AS array_bounds,
  dualwrite.row_checksum(ROW('{NULL}'::text[])) <> dualwrite.row_checksum(ROW('{"NULL"}'::text[])) AS array_null_element,
  dualwrite.row_checksum(ROW('{1.50,2}'::numeric[])) = dualwrite.row_checksum(ROW('{1.5,2.000}'::numeric[])) AS array_elements,
  dualwrite.row_checksum(ROW('ab'::char(5))) = dualwrite.row_checksum(ROW('ab'::text)) AS bpchar_blanks,
  dualwrite.row_checksum(x) <> dualwrite.row_checksum(y) AS names_count
FROM (SELECT 1 AS a, 2 AS b) x, (SELECT 1 AS b, 2 AS a) y;
SELECT dualwrite.row_checksum(NULL::record) IS NULL AS strict;

-- A table with every kind, laid out and typed differently on each side,
-- renamed by column_map.
\c dw_modern
CREATE TYPE ck_mood AS ENUM ('sad', 'ok', 'it''s "complicated"');
CREATE DOMAIN ck_pos AS integer CHECK (VALUE > 0);
CREATE TABLE public.ck_kinds (
    "Big Value" text, id bigint PRIMARY KEY, e ck_mood, dom ck_pos, ch char(8), n numeric(14,2), f4 real, f8 float8,
    tstz timestamptz, ts timestamp, d date, tm time, iv interval, j jsonb, b bytea, an numeric[], af float8[], at text[],
    flag boolean, gen int GENERATED ALWAYS AS (42) STORED, modern_only text);
CREATE SCHEMA "ck Schema";
CREATE TABLE "ck Schema"."Quoted ""Name""" ("select" text, "Key Col" int PRIMARY KEY);
\c contrib_regression
SET dualwrite.target_server = 'modern';
CREATE TYPE ck_mood AS ENUM ('sad', 'ok', 'it''s "complicated"');
CREATE DOMAIN ck_pos AS integer CHECK (VALUE > 0);
CREATE TABLE ck_kinds (
    id int PRIMARY KEY, flag boolean, b bytea, e ck_mood, dom ck_pos, ch char(8), n numeric(10,4), f4 real, f8 float8,
    tstz timestamptz, ts timestamp, d date, tm time, iv interval, j jsonb, an numeric[], af float8[], at text[],
    big text, gen int GENERATED ALWAYS AS (id * 2) STORED, legacy_only text);
SELECT dualwrite.enable('ck_kinds', column_map => '{"big": "Big Value", "legacy_only": null}');
CREATE SCHEMA "ck Schema";
CREATE TABLE "ck Schema"."Quoted ""Name""" ("Key Col" int PRIMARY KEY, "select" text);
SELECT dualwrite.enable('"ck Schema"."Quoted ""Name"""');
INSERT INTO "ck Schema"."Quoted ""Name""" VALUES (1, 'from'), (2, NULL), (3, '');
SET TimeZone = 'Asia/Kolkata';
INSERT INTO ck_kinds (id, flag, b, e, dom, ch, n, f4, f8, tstz, ts, d, tm, iv, j, an, af, at, big, legacy_only) VALUES
 (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'x'),
 (2, true, '\x00ff5c0a', 'it''s "complicated"', 5, 'ab', 1.5, 'NaN', '-0', '2024-02-29 23:59:59.999999+13:45',
  '1999-12-31 23:59:59.5', 'infinity', '23:59:59.999999', '1 year 2 mons -3 days 04:05:06.789',
  '{"a": [1, 2.50, null], "b\"": "\u00e9\n"}', '{1.50,NaN,NULL}', '{-0,NaN,Infinity,-Infinity,1e-300}',
  '{"a,b","c\"d","NULL",NULL,""}', E'quote '' double " nl\n tab\t ünïcødé ✓ 😀', 'y'),
 (3, false, '', 'sad', 1, '', 0, '-Infinity', 'Infinity', '-infinity', '-infinity', '4713-01-01 BC', '00:00',
  '-178000000 years -1 day -00:00:00.000001', '[]', '{}', '[0:1]={0,1}', '{{a,b},{c,d}}', '', NULL),
 (4, NULL, NULL, 'ok', NULL, 'full8chr', -12.34, 1.17549435e-38, 4.9e-324, '1970-01-01 00:00:00+00', '2038-01-19 03:14:08',
  '2000-02-29', '12:00', '0', '"scalar"', '{-0.00}', '{0}', '{}', repeat('compressible ', 1000), NULL);
-- a large TOASTed, incompressible value
INSERT INTO ck_kinds (id, big, b) SELECT 5, string_agg(md5(g::text), ''), decode(string_agg(md5(g::text), ''), 'hex')
FROM generate_series(1, 40000) g;
SET TimeZone = 'America/Los_Angeles';
INSERT INTO ck_kinds (id, tstz, ts) VALUES (6, '2021-03-14 02:30:00 America/New_York', '2021-03-14 02:30:00');
SELECT dualwrite.wait_for_delivery('60s');

CREATE FUNCTION pg_temp.compare(t regclass) RETURNS TABLE (tbl text, row_count bigint, legacy_equals_remote boolean)
LANGUAGE sql AS $$
    SELECT t::text, l.row_count, (l.row_count, l.checksum) = (r.row_count, r.checksum)
    FROM dualwrite.table_checksum(t) l, dualwrite.remote_checksum(t) r
$$;
SELECT * FROM pg_temp.compare('ck_kinds');
SELECT * FROM pg_temp.compare('all_types');
SELECT * FROM pg_temp.compare('measurements');
SELECT * FROM pg_temp.compare('"ck Schema"."Quoted ""Name"""');
-- the C++ figures do not depend on the session's time zone
SET TimeZone = 'UTC';
SELECT (SELECT checksum FROM dualwrite.table_checksum('ck_kinds')) =
       (SELECT checksum FROM dualwrite.remote_checksum('ck_kinds')) AS utc_equal;
RESET TimeZone;

-- Key ranges: [from, to), the same rows on both sides; the ranges add up.
SELECT l.row_count, (l.row_count, l.checksum) = (r.row_count, r.checksum) AS equal
FROM dualwrite.table_checksum('ck_kinds', ARRAY['2'], ARRAY['5']) l,
     dualwrite.remote_checksum('ck_kinds', ARRAY['2'], ARRAY['5']) r;
SELECT (SELECT row_count FROM dualwrite.table_checksum('ck_kinds', NULL, ARRAY['3'])) +
       (SELECT row_count FROM dualwrite.table_checksum('ck_kinds', ARRAY['3'], NULL)) AS rows_in_halves;
SELECT l.row_count, (l.row_count, l.checksum) = (r.row_count, r.checksum) AS equal
FROM dualwrite.table_checksum('measurements', ARRAY['1', 'eu'], ARRAY['3', 'eu']) l,
     dualwrite.remote_checksum('measurements', ARRAY['1', 'eu'], ARRAY['3', 'eu']) r;

-- The generated SQL, run by hand in dw_modern, in another time zone.
SELECT row_count AS legacy_rows, encode(checksum, 'hex') AS legacy_sum FROM dualwrite.table_checksum('ck_kinds') \gset
SELECT dualwrite.checksum_sql('ck_kinds') AS ck_sql \gset
SELECT position('dualwrite' IN :'ck_sql') = 0 AS no_extension_needed;
\c dw_modern
SET TimeZone = 'Pacific/Chatham';
SELECT row_count = :legacy_rows AS rows_equal, encode(checksum, 'hex') = :'legacy_sum' AS sum_equal FROM (:ck_sql) q;
-- one changed value anywhere changes the figures: -0 vs 0, NULL vs '',
-- one byte deep inside the TOASTed value
BEGIN;
UPDATE ck_kinds SET f8 = 0 WHERE id = 2;
SELECT encode(checksum, 'hex') = :'legacy_sum' AS sum_equal FROM (:ck_sql) q;
ROLLBACK;
BEGIN;
UPDATE ck_kinds SET "Big Value" = NULL WHERE id = 3;
SELECT encode(checksum, 'hex') = :'legacy_sum' AS sum_equal FROM (:ck_sql) q;
ROLLBACK;
BEGIN;
UPDATE ck_kinds SET "Big Value" = overlay("Big Value" PLACING 'X' FROM 700000 FOR 1) WHERE id = 5;
SELECT encode(checksum, 'hex') = :'legacy_sum' AS sum_equal FROM (:ck_sql) q;
ROLLBACK;
BEGIN;
UPDATE ck_kinds SET n = 1.51 WHERE id = 2;
SELECT encode(checksum, 'hex') = :'legacy_sum' AS sum_equal FROM (:ck_sql) q;
ROLLBACK;
-- an unflagged modern-only column and a generated column are not part of it
UPDATE ck_kinds SET modern_only = 'anything';
SELECT encode(checksum, 'hex') = :'legacy_sum' AS sum_equal FROM (:ck_sql) q;
\c contrib_regression
SET dualwrite.target_server = 'modern';

-- Bad input: clear errors.
CREATE TABLE ck_unflagged (id int PRIMARY KEY);
SELECT * FROM dualwrite.table_checksum('ck_unflagged');
SELECT dualwrite.checksum_sql('ck_unflagged');
SELECT * FROM dualwrite.remote_checksum('ck_unflagged');
SELECT * FROM dualwrite.table_checksum(NULL);
SELECT * FROM dualwrite.table_checksum('ck_kinds', ARRAY['1', '2']);
SELECT * FROM dualwrite.table_checksum('ck_kinds', ARRAY[NULL::text]);
SELECT * FROM dualwrite.table_checksum('ck_kinds', ARRAY['not a number']);
DROP TABLE ck_unflagged;

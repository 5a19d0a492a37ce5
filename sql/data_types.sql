--
-- data_types: every kind of value in SPEC.md round-trips exactly.
-- Compared as text of whole rows, through postgres_fdw (not pg_dualwrite).
--
SET dualwrite.target_server = 'modern';
\c dw_modern
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated"');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE public.all_types (
    id          integer PRIMARY KEY,
    t           text,
    vc          varchar(20),
    b           bytea,
    n           numeric,
    f4          real,
    f8          double precision,
    tstz        timestamptz,
    ts          timestamp,
    d           date,
    iv          interval,
    j           jsonb,
    js          json,
    ai          integer[],
    at          text[],
    e           mood,
    dom         positive_int,
    u           uuid,
    ip          inet,
    flag        boolean,
    big         text,
    gen         integer GENERATED ALWAYS AS (id * 2) STORED
);
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Order ""Items""" ("Item Id" int PRIMARY KEY, "select" text, "MiXeD" int);
CREATE TABLE public.measurements (id int, region text, v numeric, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE public.measurements_all PARTITION OF public.measurements DEFAULT;
\c contrib_regression
SET dualwrite.target_server = 'modern';
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated"');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE all_types (
    id          integer PRIMARY KEY,
    t           text,
    vc          varchar(20),
    b           bytea,
    n           numeric,
    f4          real,
    f8          double precision,
    tstz        timestamptz,
    ts          timestamp,
    d           date,
    iv          interval,
    j           jsonb,
    js          json,
    ai          integer[],
    at          text[],
    e           mood,
    dom         positive_int,
    u           uuid,
    ip          inet,
    flag        boolean,
    big         text,
    gen         integer GENERATED ALWAYS AS (id * 2) STORED
);
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Order ""Items""" ("Item Id" int PRIMARY KEY, "select" text, "MiXeD" int);
-- partitions laid out differently from their parent (dropped column, other order)
CREATE TABLE measurements (id int, region text, v numeric, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE measurements_eu (junk int, v numeric, region text NOT NULL, id int NOT NULL);
ALTER TABLE measurements_eu DROP COLUMN junk;
ALTER TABLE measurements ATTACH PARTITION measurements_eu FOR VALUES IN ('eu');
CREATE TABLE measurements_us PARTITION OF measurements FOR VALUES IN ('us');

SELECT dualwrite.enable('all_types');
SELECT dualwrite.enable('"Odd Schema"."Order ""Items"""');
SELECT dualwrite.enable('measurements');

SET TimeZone = 'Pacific/Chatham';
INSERT INTO all_types (id, t, vc, b, n, f4, f8, tstz, ts, d, iv, j, js, ai, at, e, dom, u, ip, flag, big) VALUES
 (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (2, E'quote '' double " back\\slash tab\t nl\n cr\r end', 'ünïcødé ✓', '\x00ff5c0a09'::bytea,
  'NaN', 'NaN', 'Infinity', '2024-02-29 23:59:59.999999+13:45', '1999-12-31 23:59:59.5', 'infinity',
  '1 year 2 mons -3 days 04:05:06.789', '{"a": [1, 2.50, null], "b\"": "\u00e9\n"}', '{ "keep" :  "spacing" , "dup": 1, "dup": 2 }',
  '{{1,2},{3,NULL}}', '{"a,b","c\"d","NULL",NULL,"", "e\\f"}', 'it''s "complicated"', 7,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', true, NULL),
 (3, '', '', '', '-0.000000000000000000001', '-Infinity', '-0', '-infinity', '-infinity', '4713-01-01 BC',
  '-178000000 years', '[]', 'null', '{}', '{}', 'sad', 1, '00000000-0000-0000-0000-000000000000', '::1', false, NULL),
 (4, 'emoji 😀 and zero-width ​ space', 'x', decode(repeat('ab', 20), 'hex'), '123456789012345678901234567890.123456789',
  1.17549435e-38, 2.2250738585072014e-308, '1970-01-01 00:00:00+00', '2038-01-19 03:14:08', '2000-02-29',
  '0', '{"n": 1e-7}', '"scalar"', '{-2147483648,2147483647}', '{"\\\\"}', 'happy', 2147483647,
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '2001:db8::1/128', NULL, NULL);
-- large TOASTed values (stored out of line and compressed) survive later updates and deletes
INSERT INTO all_types (id, big, b) SELECT 5, string_agg(md5(g::text), ''), decode(string_agg(md5(g::text), ''), 'hex')
FROM generate_series(1, 40000) g;
INSERT INTO all_types (id, big) VALUES (6, repeat('compressible ', 100000));
SET TimeZone = 'America/Los_Angeles';
INSERT INTO all_types (id, tstz, f4, f8) VALUES (7, '2021-03-14 02:30:00 America/New_York', 3.4028235e38, 4.9e-324);
UPDATE all_types SET t = 'updated after toast', id = 55 WHERE id = 5;
DELETE FROM all_types WHERE id = 6;
VACUUM all_types;

INSERT INTO "Odd Schema"."Order ""Items""" VALUES (1, 'from', 1), (2, 'where', 2);
UPDATE "Odd Schema"."Order ""Items""" SET "Item Id" = 3, "MiXeD" = 30 WHERE "Item Id" = 2;

INSERT INTO measurements VALUES (1, 'eu', 1.5), (2, 'us', 2.5), (3, 'eu', 3.5);
-- a row moving to another partition
UPDATE measurements SET region = 'us' WHERE id = 1;
UPDATE measurements SET v = 99 WHERE id = 3;

SELECT dualwrite.wait_for_delivery('60s');

IMPORT FOREIGN SCHEMA public LIMIT TO (all_types, measurements) FROM SERVER modern_check INTO modern;
CREATE SCHEMA modern_odd;
IMPORT FOREIGN SCHEMA "Odd Schema" FROM SERVER modern_check INTO modern_odd;

-- Whole rows as text, in two time zones, both directions.
SELECT 'differs' AS problem, coalesce(l.id, m.id) AS id
FROM all_types l FULL JOIN modern.all_types m ON l.id = m.id
WHERE l::text IS DISTINCT FROM m::text;
SET TimeZone = 'UTC';
SELECT 'differs' AS problem, coalesce(l.id, m.id) AS id
FROM all_types l FULL JOIN modern.all_types m ON l.id = m.id
WHERE l::text IS DISTINCT FROM m::text;
SELECT id, md5(big) AS big_md5, length(b) AS b_len, gen FROM modern.all_types ORDER BY id;
-- special values, checked by value as well as by text
SELECT id, n::text, f4::text, f8::text, (f8 = '-0' AND f8::text = '-0') AS neg_zero, tstz, e, dom FROM modern.all_types WHERE id IN (2, 3, 7) ORDER BY id;

SELECT * FROM modern_odd."Order ""Items""" ORDER BY 1;
SELECT * FROM modern.measurements ORDER BY id;
SELECT 'differs' AS problem, * FROM (SELECT * FROM measurements EXCEPT SELECT * FROM modern.measurements) x;
RESET TimeZone;

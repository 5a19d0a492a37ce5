--
-- reconcile_figures: the bucket figures bisection compares must see every
-- difference the canonical row form sees.  Each planted difference below
-- is alone in its bucket (keys 140 apart, buckets of 125 rows), so a
-- figure that equated the two values would hide it: it would be missing
-- from the result.  Values equal in the canonical form (numeric scale,
-- the same instant in another zone) must not be reported.  Both figure
-- kinds: fingerprints (the default) and SHA-256.
--
\c dw_modern
CREATE COLLATION IF NOT EXISTS ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE public.rf (id int PRIMARY KEY, t text, ci text COLLATE ci, f float8, j jsonb, iv interval,
                        arr int[], by bytea, n numeric, ts timestamptz, a int, b int);
\c contrib_regression
SET dualwrite.target_server = 'modern';
CREATE COLLATION IF NOT EXISTS ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE rf (id int PRIMARY KEY, t text, ci text COLLATE ci, f float8, j jsonb, iv interval,
                 arr int[], by bytea, n numeric(12,2), ts timestamptz, a int, b int);
SELECT dualwrite.enable('rf');
INSERT INTO rf SELECT g, 'row ' || g, 'abc', g / 7.0, jsonb_build_object('a', g), interval '1 day',
                      ARRAY[g, g + 1], '\x01', g / 4.0, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute',
                      g, g + 1
FROM generate_series(1, 2000) g;
UPDATE rf SET t = '' WHERE id = 60;
UPDATE rf SET f = 0 WHERE id = 340;
UPDATE rf SET j = '{"a": 1}' WHERE id = 480;
UPDATE rf SET iv = '30 days' WHERE id = 620;
UPDATE rf SET arr = '{1,2}' WHERE id = 760;
UPDATE rf SET by = '\x00' WHERE id = 900;
UPDATE rf SET n = 1.5 WHERE id = 1040;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM dualwrite.reconcile('rf', full => true);

\c dw_modern
UPDATE rf SET t = NULL WHERE id = 60;                 -- NULL vs ''
UPDATE rf SET ci = 'ABC' WHERE id = 200;              -- equal under the column's collation, not in bytes
UPDATE rf SET f = '-0' WHERE id = 340;                -- -0 vs 0
UPDATE rf SET j = '{"a": 1.0}' WHERE id = 480;        -- jsonb-equal, printed differently
UPDATE rf SET iv = '1 mon' WHERE id = 620;            -- interval-equal, other fields
UPDATE rf SET arr = '[0:1]={1,2}' WHERE id = 760;     -- the same elements, other bounds
UPDATE rf SET by = '\x0000' WHERE id = 900;           -- one more zero byte
UPDATE rf SET n = 1.50 WHERE id = 1040;               -- the same number: equal
SET TimeZone = 'Asia/Tokyo';
UPDATE rf SET ts = '2024-01-01 09:00+09'::timestamptz + 1180 * interval '1 minute' WHERE id = 1180; -- same instant: equal
UPDATE rf SET a = b, b = a WHERE id = 1320;           -- two columns of a row swapped
UPDATE rf SET a = CASE id WHEN 1880 THEN 1881 ELSE 1880 END WHERE id IN (1880, 1881); -- one column swapped between rows
\c contrib_regression
SET dualwrite.target_server = 'modern';
SHOW dualwrite.reconcile_figures;
SELECT key, kind, columns FROM dualwrite.reconcile('rf', full => true) ORDER BY (key->>'id')::int;
SET dualwrite.reconcile_figures = sha256;
SELECT key, kind, columns FROM dualwrite.reconcile('rf', full => true) ORDER BY (key->>'id')::int;
RESET dualwrite.reconcile_figures;
-- equal tables move figures only, either way
SELECT key, kind FROM dualwrite.reconcile('rf', repair => true, full => true) ORDER BY (key->>'id')::int;
SELECT dualwrite.wait_for_delivery('60s');
SELECT * FROM dualwrite.reconcile('rf', full => true);
SELECT rows_compared, differences, bytes_transferred < 10000 AS only_figures FROM dualwrite.reconcile_runs
ORDER BY run_id DESC LIMIT 1;
SET dualwrite.reconcile_figures = sha256;
SELECT * FROM dualwrite.reconcile('rf', full => true);
RESET dualwrite.reconcile_figures;
SET dualwrite.reconcile_figures = md5;
SELECT dualwrite.disable('rf');
DROP TABLE rf;


# Copyright (c) pg_dualwrite authors
#
# 001_two_clusters.pl - end to end delivery between two clusters
# (SPEC guarantees 1 and 2, and the data the spec says it must carry exactly).
#
#   legacy: shared_preload_libraries = 'pg_dualwrite', table flagged (async)
#   modern: a plain PostgreSQL 15 cluster with the same table
#
# 1. A workload of inserts, updates, primary-key updates, deletes, a TRUNCATE,
#    rolled-back transactions and rolled-back savepoints, over a table with
#    many data types (NULLs, quotes/newlines/unicode, bytea, numeric NaN,
#    float specials, timestamptz, interval, jsonb, arrays, enum, domain, uuid,
#    TOASTed text, a quoted column name and a generated column).
#    After dualwrite.wait_for_delivery() every row of both sides is compared
#    with COPY ... TO STDOUT: the comparison never goes through pg_dualwrite.
# 2. Target outage: the modern node is stopped, changes queue (status shows
#    queued > 0, the worker reports 'target unreachable' / 'backing off'),
#    the modern node comes back, everything is delivered, rows compared again.
#    The legacy log has ONE warning per distinct failure, not one per retry.
# 3. Persistent remote error: modern is up but the target table is renamed
#    away; the change stays queued, the failure is logged once (not once per
#    retry), and once the table is back everything is delivered and compared.
# 4. Self-check: the comparison notices a changed, a missing, an extra row.
#
# A lost change, a change applied twice out of order, or a change from an
# aborted (sub)transaction makes the COPY texts differ, and the test fails.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DualWriteTest;

# ---------------------------------------------------------------- nodes
# (legacy: naptime 50 ms, retry backoff 50 .. 1000 ms)
my $modern = modern_node('modern');
my $legacy = legacy_node('legacy');

# ---------------------------------------------------------------- schema
my $ddl = q{
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE many_types (
    id           integer PRIMARY KEY,
    t            text,
    "Quoted Col" varchar(40),
    n            numeric,
    f8           double precision,
    f4           real,
    b            boolean,
    raw          bytea,
    ts           timestamptz,
    d            date,
    iv           interval,
    js           jsonb,
    ints         integer[],
    texts        text[],
    m            mood,
    p            posint,
    u            uuid,
    big          text,
    g            integer GENERATED ALWAYS AS (id * 2) STORED
);
};
$modern->safe_psql('postgres', $ddl);
$legacy->safe_psql('postgres', $ddl);

connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', q{SELECT dualwrite.enable('public.many_types', target_server => 'modern')});

# ---------------------------------------------------------------- helpers

# Rows $from..$to with every kind of value the spec lists.
sub insert_rows
{
	my ($from, $to, $tag) = @_;
	return qq{
INSERT INTO many_types (id, t, "Quoted Col", n, f8, f4, b, raw, ts, d, iv, js, ints, texts, m, p, u, big)
SELECT i,
       CASE i % 5 WHEN 0 THEN NULL
                  WHEN 1 THEN E'quote '' dq " back\\\\slash $tag'
                  WHEN 2 THEN E'new\\nline\\ttab\\r$tag'
                  WHEN 3 THEN 'unicode é ☃ 𝄞 $tag'
                  ELSE 'plain ' || i || ' $tag' END,
       'q' || i,
       CASE i % 4 WHEN 0 THEN 'NaN'::numeric WHEN 1 THEN NULL
                  ELSE (i * 1.000001)::numeric * 10::numeric ^ (i % 30) END,
       CASE i % 6 WHEN 0 THEN 'Infinity'::float8 WHEN 1 THEN '-Infinity'::float8
                  WHEN 2 THEN 'NaN'::float8 WHEN 3 THEN '-0'::float8
                  ELSE i / 7.0::float8 END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE i / 3.0::real END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END,
       CASE WHEN i % 4 = 0 THEN NULL
            ELSE decode(md5(i::text), 'hex') || '\\x00ff5c'::bytea END,
       timestamptz '2001-02-03 04:05:06.789+05:30' + i * interval '1 day 1 hour 1.5 sec',
       date '2020-02-29' + i,
       make_interval(months => i % 13, days => i, secs => i * 1.5),
       jsonb_build_object('i', i, 's', E'x"y\\nz', 'a', jsonb_build_array(1, NULL, 'é')),
       ARRAY[i, NULL, -i],
       ARRAY['a b', NULL, 'c"d', E'e\\\\f', '{}'],
       (ARRAY['sad', 'ok', 'happy']::mood[])[1 + i % 3],
       i,
       md5(i::text || '$tag')::uuid,
       CASE WHEN i % 10 = 1
            THEN (SELECT string_agg(md5(i::text || g::text), '') FROM generate_series(1, 300) g) END
FROM generate_series($from, $to) i;
};
}

# Every row of the table, as COPY text, under settings that do not depend on
# the node's defaults (table_text).  Nothing of pg_dualwrite is involved.
sub all_rows
{
	my ($node) = @_;
	return table_text($node, 'postgres', 'many_types', 'id');
}

sub count_rows
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT count(*) FROM many_types');
}

sub wait_for_delivery
{
	my ($what) = @_;
	wait_delivered($legacy, 'postgres', 60, "$what: wait_for_delivery returns true");
}

sub compare_sides
{
	my ($what) = @_;
	is(count_rows($modern), count_rows($legacy), "$what: same number of rows");
	# (shows the differing lines only: the texts are long)
	sides_equal($legacy, $modern, 'many_types', 'id', "$what: every row is identical on both sides");
}

# ---------------------------------------------------------------- 1. workload

# CREATE EXTENSION must get the database its worker (the launcher is woken),
# also when it runs right after the server started.
my $worker_ok = worker_running($legacy, 'postgres', 20);
ok($worker_ok, 'the worker starts after CREATE EXTENSION (shortly after server start)');
if (!$worker_ok)
{
	diag 'no worker 20 s after CREATE EXTENSION; waking the launcher again to go on with the test';
	ensure_worker($legacy, 'postgres', 60);
}

# A TRUNCATE between two loads: must be applied after the first, before the
# second (the first load's keys are not reused: a lost TRUNCATE leaves them).
$legacy->safe_psql('postgres', insert_rows(5001, 5050, 'pre-truncate'));
$legacy->safe_psql('postgres', 'TRUNCATE many_types');
$legacy->safe_psql('postgres', insert_rows(1, 300, 'v1'));

$legacy->safe_psql(
	'postgres', q{
-- updates, one of them not touching the TOASTed column of the rows that have one
UPDATE many_types SET t = coalesce(t, '<null>') || ' upd' WHERE id % 3 = 0;
UPDATE many_types SET js = js || '{"upd": true}', n = n + 1, f4 = NULL WHERE id % 5 = 1;
-- primary-key updates (the old key must disappear on modern)
UPDATE many_types SET id = id + 10000 WHERE id % 10 = 0;
-- key moves away and comes back in two transactions
UPDATE many_types SET id = 700 WHERE id = 5;
UPDATE many_types SET id = 5, t = 'came back' WHERE id = 700;
-- deletes, and a key deleted then re-inserted with other values
DELETE FROM many_types WHERE id % 7 = 0;
DELETE FROM many_types WHERE id = 6;
INSERT INTO many_types (id, t, p) VALUES (6, 'reinserted', 66);

-- a rolled-back transaction: nothing of it may reach modern
BEGIN;
INSERT INTO many_types (id, t, p) SELECT i, 'aborted', i FROM generate_series(401, 410) i;
UPDATE many_types SET t = 'aborted update' WHERE id < 50;
DELETE FROM many_types WHERE id BETWEEN 50 AND 60;
UPDATE many_types SET id = id + 20000 WHERE id BETWEEN 61 AND 70;
ROLLBACK;

-- savepoints: the rolled-back parts must not reach modern, the rest must
BEGIN;
INSERT INTO many_types (id, t, p) VALUES (501, 'kept before savepoint', 1);
SAVEPOINT s1;
INSERT INTO many_types (id, t, p) VALUES (502, 'rolled back', 1);
UPDATE many_types SET t = 'savepoint rolled back' WHERE id = 1;
DELETE FROM many_types WHERE id = 2;
UPDATE many_types SET id = 20003 WHERE id = 3;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO many_types (id, t, p) VALUES (503, 'kept after rollback to savepoint', 1);
SAVEPOINT s2;
UPDATE many_types SET t = 'released savepoint' WHERE id = 4;
RELEASE SAVEPOINT s2;
SAVEPOINT s3;
DELETE FROM many_types WHERE id = 8;
ROLLBACK TO SAVEPOINT s3;
COMMIT;

-- many changes to one key inside one transaction: the last one wins
BEGIN;
INSERT INTO many_types (id, t, p) VALUES (600, 'first', 1);
UPDATE many_types SET t = 'second' WHERE id = 600;
DELETE FROM many_types WHERE id = 600;
INSERT INTO many_types (id, t, p, big) VALUES (600, 'third', 3, repeat('x', 5000));
UPDATE many_types SET id = 601 WHERE id = 600;
UPDATE many_types SET t = 'fourth' WHERE id = 601;
COMMIT;
});

wait_for_delivery('workload');
compare_sides('workload');

# The rolled-back work is really absent (a direct check, on top of the comparison).
is( $modern->safe_psql('postgres',
		q{SELECT count(*) FROM many_types WHERE id BETWEEN 401 AND 410 OR id IN (502, 20003) OR t LIKE '%rolled back%' OR t LIKE 'aborted%'}),
	'0', 'workload: nothing of the rolled-back work reached modern');
is($modern->safe_psql('postgres', q{SELECT t FROM many_types WHERE id = 601}),
	'fourth', 'workload: the last change of a key within one transaction wins');
is($modern->safe_psql('postgres', q{SELECT count(*) FROM many_types WHERE id BETWEEN 5001 AND 5050 OR t LIKE '%pre-truncate%'}),
	'0', 'workload: the TRUNCATE was applied before the rows loaded after it');
ok( $modern->safe_psql('postgres',
		q{SELECT count(*) FROM many_types WHERE length(big) > 9000}) > 0,
	'workload: TOASTed values arrived');

is( $legacy->safe_psql('postgres',
		q{SELECT queued FROM dualwrite.status WHERE table_name = 'many_types'::regclass}),
	'0', 'workload: nothing queued after delivery');

# ---------------------------------------------------------------- 2. outage
my $log_offset = -s $legacy->logfile;
$modern->stop;

$legacy->safe_psql('postgres', insert_rows(1001, 1200, 'outage'));
$legacy->safe_psql(
	'postgres', q{
UPDATE many_types SET t = 'during outage', b = NOT coalesce(b, false) WHERE id % 4 = 1;
UPDATE many_types SET id = id + 30000 WHERE id BETWEEN 1001 AND 1050;
DELETE FROM many_types WHERE id % 11 = 0;
BEGIN;
INSERT INTO many_types (id, t, p) VALUES (40000, 'aborted during outage', 1);
DELETE FROM many_types WHERE id < 100;
ROLLBACK;
});

ok( $legacy->poll_query_until(
		'postgres',
		q{SELECT queued > 0 FROM dualwrite.status WHERE table_name = 'many_types'::regclass}),
	'outage: changes are queued');
ok( $legacy->poll_query_until(
		'postgres',
		q{SELECT state IN ('target unreachable', 'backing off') FROM dualwrite.workers WHERE datname = 'postgres'}),
	'outage: the worker reports the target unreachable or backing off');

# Let the worker retry for a while (backoff 50 ms .. 1 s: several attempts).
sleep(3);
ok( $legacy->poll_query_until(
		'postgres',
		q{SELECT queued > 0 FROM dualwrite.status WHERE table_name = 'many_types'::regclass}),
	'outage: changes are still queued after retries');

$modern->start;
wait_for_delivery('after outage');
compare_sides('after outage');
is( $legacy->safe_psql('postgres',
		q{SELECT queued FROM dualwrite.status WHERE table_name = 'many_types'::regclass}),
	'0', 'after outage: nothing queued');

# One WARNING per distinct failure (the lost connection, then "could not
# connect"), not one per retry; the recovery LOG line counts the retries.
my $recovered_re = qr/delivery to server "modern" resumed after (\d+) failed attempts/;
$legacy->wait_for_log($recovered_re, $log_offset);
my $log = slurp_file($legacy->logfile, $log_offset);
my @warnings = grep { /WARNING:.*delivery to server/ } split /\n/, $log;
my ($attempts) = $log =~ $recovered_re;
note "outage: " . scalar(@warnings) . " warning line(s), $attempts failed attempts";
note $_ for @warnings;
ok(@warnings >= 1, 'outage: the failure is logged');
ok(@warnings <= 3, 'outage: the failure is logged once, not once per retry');
cmp_ok($attempts, '>=', 4, 'outage: the worker retried several times');
cmp_ok($attempts, '>', scalar(@warnings), 'outage: fewer warning lines than retries');

# ---------------------------------------------------------------- 3. persistent remote error
# The modern side is reachable but every apply fails (the target table is
# renamed away).  Same rule: one warning for the failure, retries with a
# growing backoff, no "resumed" line while nothing was delivered.
$log_offset = -s $legacy->logfile;
$modern->safe_psql('postgres', 'ALTER TABLE many_types RENAME TO many_types_away');
$legacy->safe_psql('postgres', q{UPDATE many_types SET t = 'during remote error' WHERE id = 1});
ok( $legacy->poll_query_until(
		'postgres',
		q{SELECT last_error LIKE '%many_types%does not exist%' FROM dualwrite.workers WHERE datname = 'postgres'}),
	'remote error: the worker reports the missing target table');
sleep(3);
$log = slurp_file($legacy->logfile, $log_offset);
@warnings = grep { /WARNING:.*delivery to server/ } split /\n/, $log;
my @resumed = grep { /resumed after/ } split /\n/, $log;
note 'remote error: ' . scalar(@warnings) . ' warning line(s) and ' . scalar(@resumed) . ' "resumed" line(s) in 3 s';
note $_ for grep { defined } (@warnings, @resumed)[0 .. 5];
ok(@warnings >= 1, 'remote error: the failure is logged');
ok(@warnings <= 3, 'remote error: the failure is logged once, not once per retry');
is(scalar(@resumed), 0, 'remote error: no "resumed" line while nothing could be delivered');
is( $legacy->safe_psql('postgres',
		q{SELECT queued FROM dualwrite.status WHERE table_name = 'many_types'::regclass}),
	'1', 'remote error: the change stays queued');
$modern->safe_psql('postgres', 'ALTER TABLE many_types_away RENAME TO many_types');
wait_for_delivery('after remote error');
compare_sides('after remote error');

# The comparison itself can fail: a changed, a missing and an extra row on
# modern are each noticed (this is what a wrong, lost or doubled change looks like).
my $good = all_rows($legacy);
$modern->safe_psql('postgres', q{UPDATE many_types SET t = t || '!' WHERE id = 1});
isnt(all_rows($modern), $good, 'self-check: a changed row on modern is noticed');
$modern->safe_psql('postgres', q{DELETE FROM many_types WHERE id = 1});
isnt(all_rows($modern), $good, 'self-check: a missing row on modern is noticed');
$modern->safe_psql('postgres', q{INSERT INTO many_types (id, p) VALUES (1, 1), (-1, 1)});
isnt(all_rows($modern), $good, 'self-check: an extra row on modern is noticed');

no_crash($legacy, 'legacy: no process crashed');
no_crash($modern, 'modern: no process crashed');

$legacy->stop;
$modern->stop;
done_testing();

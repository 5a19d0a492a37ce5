# Copyright (c) pg_dualwrite authors
#
# 015_reconcile.pl - dualwrite.reconcile between two clusters.
#
# 1. 1,000,000 rows loaded on both sides (before enable(), so not through the
#    delivery path), then differences planted on the modern side behind
#    pg_dualwrite's back: missing rows, extra rows (inside and outside the
#    legacy key range), NULL vs '', -0 vs 0, another numeric value, a
#    timestamptz shifted by being written in another time zone, a changed
#    byte deep inside a TOASTed value -- and changes that are NOT
#    differences (the same numeric at another scale, the same instant
#    written in another time zone).  reconcile finds exactly the planted
#    ones (a full run: the first run left a baseline, and an incremental
#    run does not see changes made behind pg_dualwrite's back to keys legacy
#    did not change -- asserted too), repair queues them through the outbox,
#    a second reconcile finds none; a row-by-row COPY comparison (no
#    pg_dualwrite code) agrees.
# 2. reconcile while pgbench updates rows of the table, full and
#    incremental: nothing is reported (every difference seen in flight is
#    re-checked after delivery); the incremental runs compare only the
#    changed keys.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use DualWriteTest;

my $N = 1_000_000;

my $modern = modern_node('modern');
my $legacy = legacy_node('legacy');

my $ddl = q{
CREATE TABLE rc (id int PRIMARY KEY, t text, f float8, n numeric, ts timestamptz, big text);
};
my $load = qq{
INSERT INTO rc SELECT g, 'row ' || g, g / 7.0, g / 4.0,
       timestamptz '2024-01-01 00:00+00' + g * interval '1 second',
       CASE WHEN g % 250000 = 0 THEN (SELECT string_agg(md5(x::text), '') FROM generate_series(1, 20000) x) END
FROM generate_series(1, $N) g;
UPDATE rc SET t = '' WHERE id = 555;
UPDATE rc SET f = 0 WHERE id = 777;
};
for my $node ($modern, $legacy)
{
	$node->safe_psql('postgres', $ddl . $load);
}
connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', q{SELECT dualwrite.enable('rc')});

# ---------------------------------------------------------------- equal
my $t0 = time;
is($legacy->safe_psql('postgres', q{SELECT count(*) FROM dualwrite.reconcile('rc')}), '0', 'equal tables: no difference');
my $equal_s = time - $t0;
my $bytes = $legacy->safe_psql('postgres',
	q{SELECT bytes_transferred FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1});
note sprintf('reconcile of %d equal rows: %.2f s, %d bytes moved', $N, $equal_s, $bytes);
cmp_ok($bytes, '<', 20_000, 'equal tables move only figures');

# ---------------------------------------------------------------- plant
$modern->safe_psql('postgres', q{
DELETE FROM rc WHERE id IN (1, 500000, 1000000);                    -- missing (first, middle, last)
INSERT INTO rc (id, t) VALUES (-7, 'extra'), (1250000, 'extra');    -- extra, outside legacy's keys
DELETE FROM rc WHERE id = 123456; INSERT INTO rc (id, t) VALUES (123456, 'row 123456'); -- different: f, n, ts
UPDATE rc SET t = NULL WHERE id = 555;                              -- NULL vs ''
UPDATE rc SET f = '-0' WHERE id = 777;                              -- -0 vs 0
UPDATE rc SET n = n + 0.0001 WHERE id = 4242;                       -- numeric value
UPDATE rc SET n = n::numeric(30,8) WHERE id = 4243;                 -- numeric scale only: equal
SET TimeZone = 'Asia/Tokyo';
UPDATE rc SET ts = '2024-01-01 09:16:40+09' WHERE id = 1000;        -- the same instant: equal
UPDATE rc SET ts = '2024-01-01 00:16:41' WHERE id = 1001;           -- wall time in Tokyo: different
UPDATE rc SET big = overlay(big PLACING 'X' FROM 500000 FOR 1) WHERE id = 750000; -- a byte deep in TOAST
});

my $expected = join("\n",
	'-7|extra|', '1|missing|', '555|different|{t}', '777|different|{f}', '1001|different|{ts}',
	'4242|different|{n}', '123456|different|{f,n,ts}', '500000|missing|', '750000|different|{big}',
	'1000000|missing|', '1250000|extra|');
my $query = q{SELECT key->>'id', kind, columns FROM dualwrite.reconcile('rc', repair => %s%s) ORDER BY (key->>'id')::int};
# The documented rule: behind pg_dualwrite's back, on keys legacy did not change.
is($legacy->safe_psql('postgres', sprintf($query, 'false', '')), '',
	'an incremental run does not see changes made on the modern side to keys legacy did not change');
$t0 = time;
is($legacy->safe_psql('postgres', sprintf($query, 'false', ', full => true')), $expected,
	'a full reconcile finds exactly the planted differences');
my $diff_s = time - $t0;
$bytes = $legacy->safe_psql('postgres',
	q{SELECT bytes_transferred FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1});
note sprintf('reconcile with 11 differences: %.2f s, %d bytes moved', $diff_s, $bytes);
cmp_ok($bytes, '<', 2_000_000, 'differences move little data');

# the unrepaired differences stay changed keys: the incremental run finds them
is($legacy->safe_psql('postgres', sprintf($query, 'true', '')), $expected, 'repair reports what it repairs');
is($legacy->safe_psql('postgres', q{SELECT mode FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1}),
	'incremental', 'the repair run was incremental');
wait_delivered($legacy, 'postgres', 60, 'repairs delivered');
is($legacy->safe_psql('postgres', q{SELECT count(*) FROM dualwrite.reconcile('rc', full => true)}), '0',
	'after repair: no difference');
# (n by value: row 4243's scale-only change is equal by design and stays)
my $rows = '(SELECT id, t, f, trim_scale(n) AS n, ts, big FROM rc) AS x';
is(table_text($modern, 'postgres', $rows, 'id'), table_text($legacy, 'postgres', $rows, 'id'),
	'row-by-row COPY comparison agrees');

# ---------------------------------------------------------------- live writes
my $script = PostgreSQL::Test::Utils::tempdir() . '/update.sql';
open(my $fh, '>', $script) or die;
print $fh "\\set k random(1, $N)\nUPDATE rc SET t = 'live ' || random(), f = random() WHERE id = :k;\n";
close $fh;
my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', '20', '-f', $script, '-h', $legacy->host, '-p', $legacy->port, 'postgres' ],
	'>', \$out, '2>', \$err);
sleep 2;
my $reported = '';
for my $full ('true', 'false', 'false')
{
	$reported .= $legacy->safe_psql('postgres',
		qq{SELECT string_agg((key->>'id') || ' ' || kind, ', ') FROM dualwrite.reconcile('rc', full => $full)});
}
my $incremental = $legacy->safe_psql('postgres',
	q{SELECT mode || ' ' || rows_compared FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1});
$bench->finish;
is($reported, '', 'reconcile (full and incremental) under a write workload reports no difference that does not persist');
like($incremental, qr/^incremental \d+$/, 'the runs during the workload were incremental');
my ($compared) = $incremental =~ /(\d+)$/;
cmp_ok($compared, '<', $N / 10, "an incremental run compares only the changed keys ($compared of $N)");
like($out, qr/number of transactions actually processed: [1-9]/, 'the workload ran');
wait_delivered($legacy, 'postgres', 60, 'workload delivered');
is($legacy->safe_psql('postgres', q{SELECT count(*) FROM dualwrite.reconcile('rc')}), '0', 'after the workload: no difference (incremental)');
is($legacy->safe_psql('postgres', q{SELECT count(*) FROM dualwrite.reconcile('rc', full => true)}), '0', 'after the workload: no difference (full)');

no_crash($legacy);
done_testing();

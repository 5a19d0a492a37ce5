# Copyright (c) pg_dualwrite authors
#
# 012_legacy_crash.pl - guarantee 10: nothing delivered is undone by a
# legacy crash, and a legacy that comes back behind what the modern side
# recorded is refused, never taken for delivered.
#
# 1. synchronous_commit = off and a 10 s wal_writer_delay: a transaction is
#    visible (and was shipped) before its commit record is on disk.  Six
#    one-row transactions are delivered one by one, then the legacy node is
#    stopped with -m immediate, the modern node stopped, the legacy started
#    and five more rows written, the modern started.  Without the flush
#    before each shipped range, the six are gone from legacy but stay on
#    modern, and the five reuse transaction ids the modern side counts as
#    delivered: they never arrive.  Both sides must end up identical.
# 2. A legacy behind the modern side's record (as after a restore from a
#    backup): the progress row on modern is moved past the legacy's next
#    transaction id.  The worker must refuse to deliver, say why in the log
#    and in dualwrite.status, keep the change queued, and deliver it once the
#    DBA has reset the progress row as the error's hint says.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use Time::HiRes qw(usleep);
use DualWriteTest;

my $modern = modern_node('modern');
my $legacy = legacy_node(
	'legacy', conf => q{
synchronous_commit = off
wal_writer_delay = 10s
checkpoint_timeout = 1h
});

my $ddl = 'CREATE TABLE t (id int PRIMARY KEY, v text)';
$modern->safe_psql('postgres', $ddl);
$legacy->safe_psql('postgres', $ddl);
connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', q{SELECT dualwrite.enable('t')});
ensure_worker($legacy, 'postgres');

# ---------------------------------------------------------------- 1
$legacy->safe_psql('postgres', 'SELECT pg_switch_wal()');
for my $i (1 .. 6)
{
	$legacy->safe_psql('postgres', "INSERT INTO t VALUES ($i, 'before crash')");
	ok(wait_delivered($legacy, 'postgres', 30), "row $i delivered before the crash");
	usleep(250_000);
}
$legacy->stop('immediate');
$modern->stop;
$legacy->start;
$legacy->safe_psql('postgres',
	q{INSERT INTO t SELECT g, 'after crash' FROM generate_series(7, 11) g});
$modern->start;
ok(wait_delivered($legacy, 'postgres', 60), 'everything delivered after the crash');
is($legacy->safe_psql('postgres', 'SELECT count(*) FROM t'), '11',
	'the shipped transactions survived the legacy crash');
sides_equal($legacy, $modern, 't', 'id', 'both sides identical after the legacy crash');

# ---------------------------------------------------------------- 2
my $origin = $modern->safe_psql('postgres', 'SELECT origin FROM _dualwrite.applied');
my $next = $legacy->safe_psql('postgres', 'SELECT pg_snapshot_xmax(pg_current_snapshot())');
my $ahead = $next + 100000;
$modern->safe_psql('postgres',
	"UPDATE _dualwrite.applied SET done_snapshot = '$ahead:$ahead:', cur_snapshot = NULL");
my $offset = log_offset($legacy);
# make the worker read the progress row again: end its modern session
$modern->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'});
$legacy->safe_psql('postgres', q{INSERT INTO t VALUES (12, 'while behind')});
ok($legacy->wait_for_log(qr/legacy database is behind what server "modern" has recorded as delivered/, $offset),
	'the worker refuses a legacy that is behind the modern side');
ok( poll_until(
		$legacy, 'postgres',
		q{SELECT last_error LIKE 'legacy database is behind%' AND queued = 1 FROM dualwrite.status}, 't', 30),
	'status shows the refusal and the change stays queued');
ok(!wait_delivered($legacy, 'postgres', 2), 'nothing is taken for delivered meanwhile');
is($modern->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 12'), '0',
	'the change was not shipped');

# the DBA's way out (the error's hint): reset the stream's progress row
$modern->safe_psql('postgres', "DELETE FROM _dualwrite.applied WHERE origin = '$origin'");
$modern->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'});
ok(wait_delivered($legacy, 'postgres', 60), 'delivery resumes after the reset');
sides_equal($legacy, $modern, 't', 'id', 'both sides identical after the reset');

no_crash($legacy, 'legacy: no process crashed');
no_crash($modern, 'modern: no process crashed');
done_testing();

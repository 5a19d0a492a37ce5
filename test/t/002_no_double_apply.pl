
# Copyright (c) pg_dualwrite authors
#
# 002_no_double_apply.pl - no lost and no doubled change across crashes
# (SPEC guarantees 1 and 2: worker crash, server crash, lost remote session).
#
# A backlog of ~20,000 changes (200 transactions, batch_size = 100, so about
# 200 remote transactions) is queued while the modern node is down.  The
# modern node comes back and, as soon as part of the backlog is applied, the
# drain is interrupted:
#   a. the worker is killed with SIGKILL (the postmaster restarts everything);
#   b. the legacy cluster is stopped with -m immediate and started again;
#   c. the worker's session on the modern side is ended by pg_terminate_backend.
# After each, wait_for_delivery() must succeed and:
#   - every row of both tables is identical on both sides (COPY text);
#   - history (insert-only, ids from a sequence): each row was applied exactly
#     ONCE on modern - an ENABLE ALWAYS trigger there logs every application,
#     so a batch sent again after its COMMIT reached modern shows up even though
#     an upsert would hide it in the table itself;
#   - counters (UPDATE counters SET n = n + 1): n never goes down on modern
#     (another ENABLE ALWAYS trigger records a regression): re-applying an old
#     batch after a newer one would make n go back;
#   - rolled-back transactions (+1000 to every counter, extra history rows)
#     never reach modern.
# Each check fails if the progress row were not written in the same remote
# transaction as its batch, or were read from the legacy side only.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DualWriteTest;

my $ROUNDS      = 200;    # transactions per backlog
my $KEYS        = 50;     # history rows and counter updates per transaction
my $BATCH       = 100;

# ---------------------------------------------------------------- nodes
# (legacy: naptime 50 ms, retry backoff 50 .. 1000 ms)
my $modern = modern_node('modern');
my $legacy = legacy_node(
	'legacy', conf => qq{
dualwrite.batch_size = $BATCH
restart_after_crash = on
});

$modern->safe_psql(
	'postgres', q{
CREATE TABLE history (id bigint PRIMARY KEY, k integer NOT NULL, note text);
CREATE TABLE counters (k integer PRIMARY KEY, n bigint NOT NULL);

-- Every application of a history row (insert, or upsert of an existing one).
CREATE TABLE apply_log (id bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION log_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.apply_log (id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER history_applied AFTER INSERT OR UPDATE ON history
    FOR EACH ROW EXECUTE FUNCTION log_history();
-- pg_dualwrite applies in session_replication_role = replica: fire anyway.
-- (Its session pins search_path to pg_catalog: the functions qualify names.)
ALTER TABLE history ENABLE ALWAYS TRIGGER history_applied;

-- A counter going down on modern means an old change was applied after a newer one.
CREATE TABLE counter_regressions (k integer, old_n bigint, new_n bigint,
                                  at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION check_counter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.n < OLD.n THEN
        INSERT INTO public.counter_regressions (k, old_n, new_n) VALUES (NEW.k, OLD.n, NEW.n);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER counters_monotonic AFTER UPDATE ON counters
    FOR EACH ROW EXECUTE FUNCTION check_counter();
ALTER TABLE counters ENABLE ALWAYS TRIGGER counters_monotonic;
});

$legacy->safe_psql(
	'postgres', q{
CREATE TABLE history (id bigserial PRIMARY KEY, k integer NOT NULL, note text);
CREATE TABLE counters (k integer PRIMARY KEY, n bigint NOT NULL);
});
connect_nodes($legacy, $modern);
$legacy->safe_psql(
	'postgres', qq{
SELECT dualwrite.enable('public.history', target_server => 'modern');
SELECT dualwrite.enable('public.counters', target_server => 'modern');
INSERT INTO counters SELECT g, 0 FROM generate_series(1, $KEYS) g;
});

# ---------------------------------------------------------------- helpers

# (ensure_worker: the worker serves the database.  001 tests that CREATE
# EXTENSION alone does it; here we only need it running, so it wakes the
# launcher if needed.)

sub count_of
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query);
}

# One backlog: $ROUNDS committed transactions of 2 * $KEYS changes each, and
# a rolled-back one every 20 rounds.
my $round_no = 0;
sub backlog_sql
{
	my ($rounds) = @_;
	my $sql = '';
	for my $i (1 .. $rounds)
	{
		$round_no++;
		$sql .= "BEGIN;\n"
		  . "INSERT INTO history (k, note) SELECT g, 'round $round_no' FROM generate_series(1, $KEYS) g;\n"
		  . "UPDATE counters SET n = n + 1;\n"
		  . "COMMIT;\n";
		$sql .= "BEGIN;\n"
		  . "INSERT INTO history (k, note) SELECT g, 'ABORTED' FROM generate_series(1, $KEYS) g;\n"
		  . "UPDATE counters SET n = n + 1000;\n"
		  . "ROLLBACK;\n"
		  if $i % 20 == 0;
	}
	return $sql;
}

sub wait_for_delivery
{
	my ($what) = @_;
	wait_delivered($legacy, 'postgres', 90, "$what: wait_for_delivery returns true");
}

sub check_sides
{
	my ($what) = @_;
	my $expect_history = $round_no * $KEYS;
	is(count_of($legacy, 'SELECT count(*) FROM history'), $expect_history,
		"$what: legacy has the committed history rows (test sanity)");
	is(count_of($modern, 'SELECT count(*) FROM history'), $expect_history,
		"$what: modern has every history row");
	sides_equal($legacy, $modern, 'history', 'id', "$what: history identical on both sides");
	sides_equal($legacy, $modern, 'counters', 'k', "$what: counters identical on both sides",
		max_diag => $KEYS);
	is(count_of($modern, "SELECT count(*) FROM counters WHERE n <> $round_no"),
		'0', "$what: every counter is $round_no on modern");
	my $dups = count_of($modern,
		'SELECT count(*) FROM (SELECT id FROM apply_log GROUP BY id HAVING count(*) > 1) d');
	is($dups, '0', "$what: no history row was applied twice on modern");
	diag count_of($modern,
		'SELECT id, count(*), min(at), max(at) FROM apply_log GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 20')
	  if $dups ne '0';
	is(count_of($modern, 'SELECT count(*) FROM apply_log'),
		$expect_history, "$what: modern applied exactly as many history rows as were committed");
	my $regr = count_of($modern, 'SELECT count(*) FROM counter_regressions');
	is($regr, '0', "$what: no counter ever went back on modern");
	diag count_of($modern, 'SELECT * FROM counter_regressions ORDER BY at LIMIT 20') if $regr ne '0';
	is(count_of($modern, q{SELECT count(*) FROM history WHERE note = 'ABORTED'}),
		'0', "$what: nothing of the rolled-back transactions reached modern");
}

# Queue a backlog while modern is down, bring modern back, and call $interrupt
# as soon as part (not all) of the backlog is applied.  Then check everything.
sub interrupted_drain
{
	my ($what, $interrupt) = @_;
	my $before = count_of($modern, 'SELECT count(*) FROM history');
	$modern->stop;
	$legacy->safe_psql('postgres', backlog_sql($ROUNDS));
	my $target = $round_no * $KEYS;
	my $t0 = time();
	$modern->start;

	# Part of the backlog is on modern: interrupt now.
	ok( poll_until($modern, 'postgres', "SELECT count(*) > $before FROM history", 't', 60),
		"$what: delivery of the backlog started");
	$interrupt->();
	my $at_interrupt = count_of($modern, 'SELECT count(*) FROM history');
	note sprintf('%s: interrupted with %d of %d backlog history rows applied (%.2f s after modern start)',
		$what, $at_interrupt - $before, $target - $before, time() - $t0);
	cmp_ok($at_interrupt, '<', $target, "$what: the interruption came in the middle of the drain");

	$legacy->poll_query_until('postgres', 'SELECT 1', '1')
	  or BAIL_OUT("$what: legacy does not come back");
	ensure_worker($legacy, 'postgres');
	wait_for_delivery($what);
	note sprintf('%s: delivered %.2f s after modern start', $what, time() - $t0);
	check_sides($what);
}

# ---------------------------------------------------------------- baseline
ensure_worker($legacy, 'postgres');
$legacy->safe_psql('postgres', backlog_sql(10));
wait_for_delivery('baseline');
check_sides('baseline');

# ---------------------------------------------------------------- a. SIGKILL
my $killed;
interrupted_drain(
	'worker SIGKILL',
	sub {
		# The postmaster notices and restarts every backend (crash recovery).
		$killed = kill_worker($legacy, 'postgres', 'worker SIGKILL: found the worker pid');
	});
like(slurp_file($legacy->logfile), qr/all server processes terminated; reinitializing/,
	'worker SIGKILL: the legacy cluster went through crash recovery');

# ---------------------------------------------------------------- b. immediate stop
interrupted_drain(
	'legacy immediate stop',
	sub {
		$legacy->stop('immediate');
		$legacy->start;
	});

# ---------------------------------------------------------------- c. remote session killed
my $log_offset = -s $legacy->logfile;
interrupted_drain(
	'remote session terminated',
	sub {
		my $n = $modern->safe_psql('postgres',
			q{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'});
		is($n, '1', 'remote session terminated: one pg_dualwrite session on modern was terminated');
	});
like(slurp_file($legacy->logfile, $log_offset), qr/WARNING:.*delivery to server "modern" failed/,
	'remote session terminated: the worker noticed the lost session');

# Nothing crashed but the worker killed on purpose.
no_crash($legacy, 'legacy: no process crashed (but the worker killed on purpose)',
	allow_pids => [$killed]);
no_crash($modern, 'modern: no process crashed');

$legacy->stop;
$modern->stop;
done_testing();

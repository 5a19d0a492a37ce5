# Copyright (c) pg_dualwrite authors
#
# 019_sync_faults.pl - sync mode is atomic across crashes and faults (SPEC
# guarantee 4): at every point of the two-phase commit where a process or a
# server can die, both databases end up with the transaction or both without
# it, and no prepared transaction is left behind on the modern side.
#
# Each section holds one sync transaction at a test pause point
# (dualwrite.sync_test_pause) and injects the fault there:
#  1. after the remote PREPARE, before the local commit: kill -9 of the
#     legacy backend (crash recovery).  The local transaction never
#     committed, so the resolver must ROLLBACK PREPARED; without it the
#     prepared transaction stays on modern forever.
#  1b. the same, with the worker kept from flushing the legacy WAL (it is
#     blocked in a remote call): the xid named in the gid must still not be
#     handed out again after recovery, or the resolver commits the aborted
#     change when a new transaction with that xid commits.  (Fails on
#     main up to 12914a2: no local WAL flush before PREPARE.)
#  2. same point, legacy stopped -m immediate and started: rolled back.
#  3. after the local commit, before COMMIT PREPARED: kill -9.  The change
#     is committed locally; the resolver must COMMIT PREPARED it, or the
#     modern side never gets a change the legacy side has.
#  4. same point, synchronous_commit = off in that session, a 10 s
#     wal_writer_delay and the worker blocked (it would flush the WAL
#     too), legacy stopped -m immediate: the commit record
#     must have been flushed before COMMIT PREPARED could be sent, so
#     the row is still on legacy after the restart (without the flush it
#     is lost there) and modern gets it.
#  5. modern stopped (fast) before the PREPARE was sent: policy error ->
#     the client gets an ERROR naming the table, nothing on either side;
#     policy queue -> a WARNING, local commit, and the worker delivers the
#     change once modern is back.
#  6. modern stopped -m immediate after the PREPARE: the local transaction
#     commits, COMMIT PREPARED fails with a WARNING (not an error), the
#     resolver commits it once modern is back; dualwrite.status shows the
#     in-doubt transaction (> 0) and then 0.
#  7. pg_cancel_backend during the pause before the PREPARE, and (7b)
#     after it: the transaction fails with the cancel error and nothing
#     prepared remains (in 7b the backend itself rolls it back at once).
# After each section: both sides identical row by row, no prepared
# transaction left on modern (polled within a few resolve intervals), the
# committed change present on both sides, the aborted one on neither, and
# no unexpected crash (kill -9 is deliberate: its pid is allowed).

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use IPC::Run;
use Time::HiRes qw(usleep time);
use DualWriteTest;

my $modern = modern_node('modern', conf => "max_prepared_transactions = 10\n");
my $legacy = legacy_node(
	'legacy', conf => q{
dualwrite.resolve_interval = 300ms
restart_after_crash = on
wal_writer_delay = 10s
checkpoint_timeout = 1h
});

for my $node ($legacy, $modern)
{
	$node->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE TABLE q (id int PRIMARY KEY, v text);
CREATE TABLE a (id int PRIMARY KEY, v text);
});
}
$legacy->safe_psql('postgres', 'CREATE TABLE scratch (i int)');
connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', q{
SELECT dualwrite.enable('t', mode => 'sync', sync_failure => 'error');
SELECT dualwrite.enable('q', mode => 'sync', sync_failure => 'queue');
SELECT dualwrite.enable('a', mode => 'async');
});
ensure_worker($legacy, 'postgres');

# ---------------------------------------------------------------- helpers

sub count_id
{
	my ($node, $table, $id) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM $table WHERE id = $id");
}

sub prepared_count
{
	return $modern->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts');
}

# Start a psql session on legacy that sets the pause point and runs $sql;
# wait until its backend logs that it is paused there.  Returns a hash
# (h => IPC::Run harness, out/err => refs, pid => paused backend's pid).
sub start_paused
{
	my ($point, $sql, %opts) = @_;
	my $offset = log_offset($legacy);
	my $script = ($opts{pre} // '') . "SET dualwrite.sync_test_pause = '$point';\n$sql;\n";
	my %s = (out => '', err => '');
	$s{h} = IPC::Run::start(
		[
			$legacy->installed_command('psql'), '-X', '-v', 'ON_ERROR_STOP=1',
			'-h', $legacy->host, '-p', $legacy->port, '-d', 'postgres', '-f', '-'
		],
		'<', \$script, '>', \$s{out}, '2>', \$s{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		my $log = slurp_file($legacy->logfile, $offset);
		if ($log =~ /pg_dualwrite: sync test pause at \Q$point\E \(pid (\d+)\)/)
		{
			$s{pid} = $1;
			last;
		}
		$s{h}->pump_nb;
		usleep(50_000);
	}
	die "no sync test pause at $point within 30 s (psql stderr: $s{err})" unless defined $s{pid};
	return \%s;
}

# Let the paused backend go on.
sub resume
{
	$legacy->safe_psql('postgres', q{SELECT dualwrite._debug_fault('sync_resume')});
}

# Wait for the session's psql to exit; true when it succeeded.
sub finish_session
{
	my ($s) = @_;
	my $ok = eval { $s->{h}->finish };
	if ($@)
	{
		note "psql session: $@";
		eval { $s->{h}->kill_kill };
		return 0;
	}
	return $ok ? 1 : 0;
}

# Wait for crash recovery (or a restart) of legacy to finish, and its worker.
sub legacy_back
{
	my ($offset) = @_;
	$legacy->wait_for_log(qr/database system is ready to accept connections/, $offset);
	ensure_worker($legacy, 'postgres');
}

# True once the legacy log matches $re after $offset (within 15 s).
sub log_has
{
	my ($re, $offset) = @_;
	my $deadline = time() + 15;
	while (1)
	{
		return 1 if slurp_file($legacy->logfile, $offset) =~ $re;
		return 0 if time() >= $deadline;
		usleep(100_000);
	}
}

# Keep the worker from flushing the legacy WAL (its drain rounds flush up
# to the insert position): an async change of table a, locked on modern,
# holds it in a remote call.  Returns the modern session holding the lock.
my $next_a = 1;
sub block_worker
{
	my ($label) = @_;
	my $locker = $modern->background_psql('postgres');
	$locker->query_safe('BEGIN');
	$locker->query_safe('LOCK TABLE a IN ACCESS EXCLUSIVE MODE');
	$legacy->safe_psql('postgres', "INSERT INTO a VALUES ($next_a, 'async, held back')");
	$next_a++;
	ok( poll_until(
			$modern, 'postgres',
			q{SELECT count(*) > 0 FROM pg_stat_activity
			  WHERE application_name = 'pg_dualwrite' AND wait_event_type = 'Lock'}, 't', 30),
		"$label: the worker is blocked in a remote call");
	return $locker;
}

sub unblock_worker
{
	my ($locker) = @_;
	$locker->query_safe('COMMIT');
	$locker->quit;
}

# The checks after every section.
sub section_end
{
	my ($label) = @_;
	ok(poll_until($modern, 'postgres', 'SELECT count(*) FROM pg_prepared_xacts', '0', 10),
		"$label: no prepared transaction left on modern");
	sides_equal($legacy, $modern, 't', 'id', "$label: t identical on both sides");
	sides_equal($legacy, $modern, 'q', 'id', "$label: q identical on both sides");
}

my $resolved_re = qr/resolved in-doubt transaction "pgdw_\d+_\d+_\d+_\d+" on server "modern"/;

# ---------------------------------------------------------------- 0
# Sync mode works at all: the row is on modern as soon as the commit returns.
$legacy->safe_psql('postgres', q{INSERT INTO t VALUES (1, 'baseline'); INSERT INTO q VALUES (1, 'baseline')});
is(count_id($modern, 't', 1) . count_id($modern, 'q', 1), '11', 'baseline: sync rows are on modern at commit');
section_end('baseline');

# ---------------------------------------------------------------- 1
{
	my $offset = log_offset($legacy);
	my $s = start_paused('after_prepare', q{INSERT INTO t VALUES (101, 'killed before the local commit')});
	is(prepared_count(), '1', '1: the remote transaction is prepared at the pause');
	like($modern->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts'),
		qr/^pgdw_\d+_\d+_\d+_\d+$/, '1: with a pg_dualwrite gid');
	kill 'KILL', $s->{pid};
	$legacy->wait_for_log(qr/\(PID $s->{pid}\) was terminated by signal 9/, $offset);
	legacy_back($offset);
	ok(!finish_session($s), '1: the killed session did not succeed');
	ok(log_has(qr/$resolved_re: rolled back/, $offset),
		'1: the resolver rolled the prepared transaction back');
	is(count_id($legacy, 't', 101), '0', '1: the change is not on legacy');
	is(count_id($modern, 't', 101), '0', '1: the change is not on modern');
	# A sync transaction after the crash works (and cannot inherit the gid).
	$legacy->safe_psql('postgres', q{INSERT INTO t VALUES (102, 'after the crash')});
	is(count_id($modern, 't', 102), '1', '1: a sync write after the recovery reaches modern');
	section_end('1');
	is(count_id($modern, 't', 101), '0', '1: the killed change never reaches modern');
	no_crash($legacy, '1: no crash but the deliberate kill', offset => $offset, allow_pids => [ $s->{pid} ]);
}

# ---------------------------------------------------------------- 1b
# The same, with nothing else flushing the legacy WAL meanwhile: the
# worker's drain rounds flush up to the insert position, so it is kept
# busy in a remote call (an async table locked on modern) for the window.
# The prepared transaction's gid names a local xid; if the WAL that holds
# it is lost in the crash, recovery hands the same xid out again, and the
# resolver takes the new transaction's commit for the old one's: an aborted
# change committed on modern.  The local WAL must be flushed (at least past
# the xid) before PREPARE is sent.
{
	my $locker = block_worker('1b');
	my $offset = log_offset($legacy);
	my $s = start_paused('after_prepare', q{INSERT INTO t VALUES (104, 'killed, WAL not flushed')});
	my $gid = $modern->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts');
	my ($fxid) = $gid =~ /^pgdw_\d+_\d+_(\d+)_\d+$/;
	kill 'KILL', $s->{pid};
	$legacy->wait_for_log(qr/\(PID $s->{pid}\) was terminated by signal 9/, $offset);
	legacy_back($offset);
	finish_session($s);
	# The end-of-recovery checkpoint holds the first xid recovery hands out.
	my $next = $legacy->safe_psql('postgres',
		q{SELECT (split_part(next_xid, ':', 1)::bigint << 32) + split_part(next_xid, ':', 2)::bigint
		  FROM pg_control_checkpoint()});
	cmp_ok($next, '>', $fxid // 0,
		"1b: recovery does not hand out the killed transaction's xid (@{[ $fxid // '?' ]}) again (next: $next)");
	# Committed local transactions that would take the killed one's xid.
	$legacy->safe_psql('postgres', "INSERT INTO scratch VALUES ($_)") for 1 .. 5;
	unblock_worker($locker);
	ok(poll_until($modern, 'postgres', 'SELECT count(*) FROM pg_prepared_xacts', '0', 10),
		'1b: the prepared transaction is settled');
	is(count_id($modern, 't', 104), '0', '1b: the killed change is not committed on modern');
	is(count_id($legacy, 't', 104), '0', '1b: nor on legacy');
	ok(log_has(qr/$resolved_re: rolled back/, $offset), '1b: the resolver rolled it back');
	ok(wait_delivered($legacy, 'postgres', 30), '1b: the async change is delivered');
	section_end('1b');
	sides_equal($legacy, $modern, 'a', 'id', '1b: a identical on both sides');
	# Keep the later sections independent of a failure here: remove the
	# wrongly committed row on modern directly.
	$modern->safe_psql('postgres', 'DELETE FROM t WHERE id = 104');
	no_crash($legacy, '1b: no crash but the deliberate kill', offset => $offset, allow_pids => [ $s->{pid} ]);
}

# ---------------------------------------------------------------- 2
{
	my $offset = log_offset($legacy);
	my $s = start_paused('after_prepare', q{INSERT INTO t VALUES (201, 'immediate stop before the local commit')});
	is(prepared_count(), '1', '2: the remote transaction is prepared at the pause');
	$legacy->stop('immediate');
	ok(!finish_session($s), '2: the session did not succeed');
	$legacy->start;
	legacy_back($offset);
	ok(log_has(qr/$resolved_re: rolled back/, $offset),
		'2: the resolver rolled the prepared transaction back');
	is(count_id($legacy, 't', 201), '0', '2: the change is not on legacy');
	is(count_id($modern, 't', 201), '0', '2: the change is not on modern');
	$legacy->safe_psql('postgres', q{INSERT INTO t VALUES (202, 'after the restart')});
	is(count_id($modern, 't', 202), '1', '2: a sync write after the restart reaches modern');
	section_end('2');
	is(count_id($modern, 't', 201), '0', '2: the aborted change never reaches modern');
	no_crash($legacy, '2: no crash', offset => $offset);
}

# ---------------------------------------------------------------- 3
{
	my $offset = log_offset($legacy);
	my $s = start_paused('after_local_commit', q{INSERT INTO t VALUES (301, 'killed after the local commit')});
	is(count_id($legacy, 't', 301), '1', '3: committed on legacy at the pause');
	is(count_id($modern, 't', 301) . prepared_count(), '01', '3: only prepared on modern at the pause');
	kill 'KILL', $s->{pid};
	$legacy->wait_for_log(qr/\(PID $s->{pid}\) was terminated by signal 9/, $offset);
	legacy_back($offset);
	finish_session($s);
	ok(poll_until($modern, 'postgres', 'SELECT count(*) FROM t WHERE id = 301', '1', 10),
		'3: the resolver committed the change on modern');
	ok(log_has(qr/$resolved_re: committed/, $offset), '3: the resolver says so');
	is(count_id($legacy, 't', 301), '1', '3: the change survived the crash on legacy');
	section_end('3');
	no_crash($legacy, '3: no crash but the deliberate kill', offset => $offset, allow_pids => [ $s->{pid} ]);
}

# ---------------------------------------------------------------- 4
{
	# After the restart of section 3 a sync table counts as having a
	# backlog until the worker's first round that sees it: write once
	# before the worker is blocked.
	$legacy->safe_psql('postgres', q{INSERT INTO t VALUES (400, 'before the worker is blocked')});
	is(count_id($modern, 't', 400), '1', '4: a sync write before the worker is blocked');
	# The worker's flush would hide a missing one in the backend.
	my $locker = block_worker('4');
	my $offset = log_offset($legacy);
	my $s = start_paused(
		'after_local_commit',
		q{INSERT INTO t VALUES (401, 'asynchronous commit, immediate stop')},
		pre => "SET synchronous_commit = off;\n");
	is(count_id($legacy, 't', 401), '1', '4: committed on legacy at the pause');
	is(prepared_count(), '1', '4: prepared on modern at the pause');
	$legacy->stop('immediate');
	finish_session($s);
	$legacy->start;
	legacy_back($offset);
	is(count_id($legacy, 't', 401), '1',
		'4: the asynchronous commit was flushed before COMMIT PREPARED: still on legacy');
	unblock_worker($locker);
	ok(wait_delivered($legacy, 'postgres', 30), '4: the async change is delivered');
	sides_equal($legacy, $modern, 'a', 'id', '4: a identical on both sides');
	ok(poll_until($modern, 'postgres', 'SELECT count(*) FROM t WHERE id = 401', '1', 10),
		'4: the resolver committed the change on modern');
	section_end('4');
	no_crash($legacy, '4: no crash', offset => $offset);
}

# ---------------------------------------------------------------- 5
{
	# 5a: policy error.
	my $s = start_paused('before_prepare', q{INSERT INTO t VALUES (501, 'modern stopped, policy error')});
	is(prepared_count(), '0', '5a: nothing prepared yet at the pause');
	$modern->stop;
	resume();
	ok(!finish_session($s), '5a: the transaction fails');
	like($s->{err}, qr/ERROR:.*sync write of table t failed/, '5a: with an error naming the table');
	is(count_id($legacy, 't', 501), '0', '5a: the change is not on legacy');
	$modern->start;
	is(count_id($modern, 't', 501), '0', '5a: the change is not on modern');
	is($legacy->safe_psql('postgres', q{SELECT queued FROM dualwrite.status WHERE table_name = 't'::regclass}),
		'0', '5a: nothing was queued');
	section_end('5a');

	# 5b: policy queue.
	$s = start_paused('before_prepare', q{INSERT INTO q VALUES (502, 'modern stopped, policy queue')});
	$modern->stop;
	resume();
	ok(finish_session($s), '5b: the transaction commits');
	like($s->{err}, qr/WARNING:.*sync write of table q failed, its changes are queued/, '5b: with a WARNING');
	unlike($s->{err}, qr/ERROR:/, '5b: and no error');
	is(count_id($legacy, 'q', 502), '1', '5b: the change is on legacy');
	is($legacy->safe_psql('postgres', q{SELECT queued FROM dualwrite.status WHERE table_name = 'q'::regclass}),
		'1', '5b: and queued in the outbox');
	$modern->start;
	ok(wait_delivered($legacy, 'postgres', 30), '5b: the worker delivers it once modern is back');
	is(count_id($modern, 'q', 502), '1', '5b: the change is on modern');
	cmp_ok($legacy->safe_psql('postgres', q{SELECT fallbacks FROM dualwrite._sync_info('q')}),
		'>=', 1, '5b: counted as a fallback');
	$legacy->safe_psql('postgres', q{INSERT INTO q VALUES (503, 'sync again')});
	is(count_id($modern, 'q', 503), '1', '5b: the next transaction is synchronous again');
	section_end('5b');
}

# ---------------------------------------------------------------- 6
{
	my $offset = log_offset($legacy);
	my $s = start_paused('after_prepare', q{INSERT INTO t VALUES (601, 'modern crashed after PREPARE')});
	is(prepared_count(), '1', '6: prepared on modern at the pause');
	ok(poll_until($legacy, 'postgres', 'SELECT bool_and(in_doubt > 0) FROM dualwrite.status', 't', 10),
		'6: dualwrite.status shows the in-doubt transaction');
	$modern->stop('immediate');
	resume();
	ok(finish_session($s), '6: the local transaction commits');
	like($s->{err}, qr/WARNING:.*the transaction committed, but COMMIT PREPARED failed on server "modern"/,
		'6: with a WARNING about COMMIT PREPARED');
	unlike($s->{err}, qr/ERROR:/, '6: and no error');
	is(count_id($legacy, 't', 601), '1', '6: the change is on legacy');
	$modern->start;
	ok(poll_until($modern, 'postgres', 'SELECT count(*) FROM t WHERE id = 601', '1', 10),
		'6: the resolver committed it on modern');
	ok(log_has(qr/$resolved_re: committed/, $offset), '6: the resolver says so');
	ok(poll_until($legacy, 'postgres', 'SELECT bool_and(in_doubt = 0) FROM dualwrite.status', 't', 10),
		'6: dualwrite.status shows no in-doubt transaction again');
	section_end('6');
	no_crash($legacy, '6: no crash', offset => $offset);
}

# ---------------------------------------------------------------- 7
{
	my $offset = log_offset($legacy);
	my $s = start_paused('before_prepare', q{INSERT INTO t VALUES (701, 'cancelled before PREPARE')});
	$legacy->safe_psql('postgres', "SELECT pg_cancel_backend($s->{pid})");
	ok(!finish_session($s), '7a: the cancelled transaction fails');
	like($s->{err}, qr/canceling statement due to user request/, '7a: with the cancel error');
	is(prepared_count(), '0', '7a: nothing prepared');
	is(count_id($legacy, 't', 701) . count_id($modern, 't', 701), '00', '7a: the change is on neither side');
	section_end('7a');

	$s = start_paused('after_prepare', q{INSERT INTO t VALUES (702, 'cancelled after PREPARE')});
	is(prepared_count(), '1', '7b: prepared at the pause');
	$legacy->safe_psql('postgres', "SELECT pg_cancel_backend($s->{pid})");
	ok(!finish_session($s), '7b: the cancelled transaction fails');
	like($s->{err}, qr/canceling statement due to user request/, '7b: with the cancel error');
	is(prepared_count(), '0', '7b: the backend rolled the prepared transaction back itself');
	is(count_id($legacy, 't', 702) . count_id($modern, 't', 702), '00', '7b: the change is on neither side');
	section_end('7b');
	unlike(slurp_file($legacy->logfile, $offset), $resolved_re, '7: nothing was left for the resolver');
	no_crash($legacy, '7: no crash', offset => $offset);
}

no_crash($modern, 'modern: no process crashed');
done_testing();

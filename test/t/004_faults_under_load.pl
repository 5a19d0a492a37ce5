
# Copyright (c) pg_dualwrite authors
#
# 004_faults_under_load.pl - no lost, no doubled and no aborted change while
# faults hit a drain that runs under a concurrent write load
# (SPEC guarantees 1 and 2; 002 does the same faults on a queued backlog
# without concurrent writers).
#
# The load: pgbench, 3 clients, rate-limited, --no-vacuum, on the legacy side:
#   update      balance += d, touched += 1, one history row
#   transfer    two accounts (locks taken in key order), two history rows
#   move        primary-key change: id <-> id + 100000
#   delete      the account goes away
#   reinsert    a deleted account comes back (new "lifetime": touched restarts
#               at a value of its own, see below)
#   delete+reinsert in one transaction
#   aborted     history rows marked 'ABORTED', balance += 1e9, an insert and a
#               primary-key move, then ROLLBACK
#   savepoint   the same inside a savepoint rolled back, the rest committed
# Each account id k in [1, NKEYS] is a "slot" that holds at most one row, at
# id k or k + 100000; every transaction takes pg_advisory_xact_lock(4242, k)
# of the slots it touches (in key order), so the scripts never hit a
# duplicate key or a deadlock and pgbench never aborts a client by itself.
#
# Faults, one at a time, each while the load runs and the worker delivers:
#   1. modern stopped with -m immediate in the middle of a batch (the batch's
#      apply is held on a lock on modern, so it is surely mid-batch), 2 s
#      down, started again;
#   2. modern stopped (fast) for 5 s while the load goes on, started again;
#   3. the worker killed with SIGKILL (the postmaster restarts every backend;
#      the load is restarted): a. while its batch is applied on modern,
#      b. while the COMMIT of its batch waits on modern - the old remote
#      session commits only after the new worker has connected;
#   4. legacy stopped with -m immediate while the worker is mid-drain, then
#      started again (the load is restarted);
#   5. a transaction that began before many batches were applied (its xid
#      and its history ids are older than theirs) commits after them;
#   6. the worker's remote session ended by pg_terminate_backend on modern
#      while its batch's COMMIT waits there.
# After each: the load is stopped, dualwrite.wait_for_delivery() must return
# true, and with a comparison that does not use pg_dualwrite:
#   - every row of accounts and history is the same on both sides (COPY text);
#   - history is append-only with ids from a sequence: an ENABLE ALWAYS
#     trigger on modern logs each applied history row into applied_log, so a
#     row applied twice shows up (count(*) vs count(DISTINCT id)) though an
#     upsert hides it in the table;
#   - every committed change to an account makes a new (id, touched) pair
#     (touched only grows within a lifetime, a lifetime starts at its own
#     multiple of 100000): another ENABLE ALWAYS trigger logs each applied
#     account row, so an account change applied twice shows up as a repeated
#     pair;
#   - nothing from an aborted (sub)transaction was ever applied: no 'ABORTED'
#     history row, no account row with balance >= 1e9 or id >= 200000 ever
#     logged on modern (not only absent at the end).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DualWriteTest;

my $NKEYS = 1000;    # account slots used by pgbench
my $RATE  = 150;     # pgbench transactions per second (all clients)
my $BATCH = 200;     # dualwrite.batch_size: small, so faults land mid-batch
my $t_begin = time();

# ---------------------------------------------------------------- nodes
my $modern = modern_node('modern');
my $legacy = legacy_node(
	'legacy', conf => qq{
dualwrite.naptime = 20
dualwrite.batch_size = $BATCH
dualwrite.retry_backoff_min = 20
dualwrite.retry_backoff_max = 300
restart_after_crash = on
});

# ---------------------------------------------------------------- schema
$modern->safe_psql(
	'postgres', q{
CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL, touched integer NOT NULL);
CREATE TABLE history (id bigint PRIMARY KEY, account integer NOT NULL, delta integer NOT NULL, note text NOT NULL);

-- Every application of a history row (an insert, or an upsert over an existing one).
CREATE TABLE applied_log (id bigint NOT NULL, note text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION log_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.applied_log (id, note) VALUES (NEW.id, NEW.note);
    RETURN NULL;
END $$;
CREATE TRIGGER history_applied AFTER INSERT OR UPDATE ON history
    FOR EACH ROW EXECUTE FUNCTION log_history();

-- Every application of an account row version.
CREATE TABLE account_versions (id integer NOT NULL, touched integer NOT NULL, balance bigint NOT NULL,
                               at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION log_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.account_versions (id, touched, balance) VALUES (NEW.id, NEW.touched, NEW.balance);
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_applied AFTER INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION log_account();

-- pg_dualwrite applies in session_replication_role = replica: fire anyway.
ALTER TABLE history ENABLE ALWAYS TRIGGER history_applied;
ALTER TABLE accounts ENABLE ALWAYS TRIGGER accounts_applied;
});

$legacy->safe_psql(
	'postgres', q{
CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL, touched integer NOT NULL);
CREATE TABLE history (id bigserial PRIMARY KEY, account integer NOT NULL, delta integer NOT NULL, note text NOT NULL);
CREATE SEQUENCE lifetime;   -- a re-inserted account starts at touched = nextval * 100000
});
connect_nodes($legacy, $modern);
$legacy->safe_psql(
	'postgres', qq{
SELECT dualwrite.enable('public.accounts', target_server => 'modern');
SELECT dualwrite.enable('public.history', target_server => 'modern');
INSERT INTO accounts SELECT g, 0, 0 FROM generate_series(1, $NKEYS) g;
-- accounts of the long transaction (fault 5), outside pgbench's slots
INSERT INTO accounts SELECT g, 0, 0 FROM generate_series(5001, 5010) g;
});

# ---------------------------------------------------------------- the load
my $script_dir = PostgreSQL::Test::Utils::tempdir('pgbench');
my $LOCK = 'SELECT pg_advisory_xact_lock(4242, :k);';
my $SLOT = 'id IN (:k, :k + 100000)';
my %scripts = (
	update => [
		10, qq{
\\set k random(1, :nkeys)
\\set d random(1, 9)
BEGIN;
$LOCK
UPDATE accounts SET balance = balance + :d, touched = touched + 1 WHERE $SLOT;
INSERT INTO history (account, delta, note) VALUES (:k, :d, 'update');
END;
}
	],
	transfer => [
		3, q{
\set a random(1, :nkeys)
\set b random(1, :nkeys)
\set d random(1, 9)
BEGIN;
SELECT pg_advisory_xact_lock(4242, least(:a, :b));
SELECT pg_advisory_xact_lock(4242, greatest(:a, :b));
UPDATE accounts SET balance = balance - :d, touched = touched + 1 WHERE id IN (:a, :a + 100000);
UPDATE accounts SET balance = balance + :d, touched = touched + 1 WHERE id IN (:b, :b + 100000);
INSERT INTO history (account, delta, note) VALUES (:a, - :d, 'transfer out'), (:b, :d, 'transfer in');
END;
}
	],
	move => [
		2, qq{
\\set k random(1, :nkeys)
BEGIN;
$LOCK
UPDATE accounts SET id = CASE WHEN id > 100000 THEN id - 100000 ELSE id + 100000 END,
                    touched = touched + 1
 WHERE $SLOT;
INSERT INTO history (account, delta, note) VALUES (:k, 0, 'move');
END;
}
	],
	delete => [
		1, qq{
\\set k random(1, :nkeys)
BEGIN;
$LOCK
DELETE FROM accounts WHERE $SLOT;
INSERT INTO history (account, delta, note) VALUES (:k, 0, 'delete');
END;
}
	],
	reinsert => [
		1, qq{
\\set k random(1, :nkeys)
BEGIN;
$LOCK
INSERT INTO accounts (id, balance, touched)
SELECT :k, 0, (nextval('lifetime') * 100000)::integer
 WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE $SLOT);
INSERT INTO history (account, delta, note) VALUES (:k, 0, 'reinsert');
END;
}
	],
	delreins => [
		1, qq{
\\set k random(1, :nkeys)
\\set d random(1, 9)
BEGIN;
$LOCK
DELETE FROM accounts WHERE $SLOT;
INSERT INTO accounts (id, balance, touched) VALUES (:k, :d, (nextval('lifetime') * 100000)::integer)
    ON CONFLICT DO NOTHING;
INSERT INTO history (account, delta, note) VALUES (:k, :d, 'delete+reinsert');
END;
}
	],
	aborted => [
		1, qq{
\\set k random(1, :nkeys)
BEGIN;
$LOCK
INSERT INTO history (account, delta, note) VALUES (:k, 1000000000, 'ABORTED'), (:k, 1000000000, 'ABORTED');
UPDATE accounts SET balance = balance + 1000000000, touched = touched + 1 WHERE $SLOT;
INSERT INTO accounts (id, balance, touched) VALUES (200000 + :k, 1000000000, 0);
UPDATE accounts SET id = 300000 + :k WHERE $SLOT;
ROLLBACK;
}
	],
	savepoint => [
		1, qq{
\\set k random(1, :nkeys)
BEGIN;
$LOCK
INSERT INTO history (account, delta, note) VALUES (:k, 0, 'before savepoint');
SAVEPOINT s1;
INSERT INTO history (account, delta, note) VALUES (:k, 1000000000, 'ABORTED');
UPDATE accounts SET balance = balance + 1000000000, touched = touched + 1 WHERE $SLOT;
INSERT INTO accounts (id, balance, touched) VALUES (200000 + :k, 1000000000, 0);
DELETE FROM accounts WHERE id = 200000 + :k;
UPDATE accounts SET id = 300000 + :k WHERE $SLOT;
ROLLBACK TO SAVEPOINT s1;
UPDATE accounts SET balance = balance + 1, touched = touched + 1 WHERE $SLOT;
INSERT INTO history (account, delta, note) VALUES (:k, 1, 'after savepoint');
END;
}
	]);
my @script_opts;
for my $name (sort keys %scripts)
{
	my ($weight, $text) = @{ $scripts{$name} };
	append_to_file("$script_dir/$name.sql", $text);
	push @script_opts, '-f', "$script_dir/$name.sql\@$weight";
}

my ($load, $load_out, $load_err, $load_no) = (undef, '', '', 0);

sub max_history_id
{
	return $legacy->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM history');
}

# Start pgbench in the background and wait until it commits.
sub start_load
{
	my ($what) = @_;
	$load_no++;
	($load_out, $load_err) = ('', '');
	my $before = max_history_id();
	$load = IPC::Run::start(
		[
			$legacy->installed_command('pgbench'), '--no-vacuum',
			'-h', $legacy->host, '-p', $legacy->port,
			'-c', 3, '-j', 3, '-T', 600, '-R', $RATE,
			'-D', "nkeys=$NKEYS", @script_opts, 'postgres'
		],
		'<', '/dev/null', '>', \$load_out, '2>', \$load_err);
	ok( poll_until($legacy, 'postgres', "SELECT coalesce(max(id), 0) > $before FROM history", 't', 30),
		"$what: the load (pgbench run $load_no) commits");
}

# Collect pgbench's output (IPC::Run reads it only when pumped; unread, a
# full pipe would also block pgbench).
sub pump_load
{
	eval { $load->pump_nb } if $load;
}

# Stop pgbench; a killed client's open transaction rolls back.  Then wait
# until no pgbench session is left (a commit sent just before the kill is
# done then), so that wait_for_delivery() covers everything.
sub stop_load
{
	my ($what, %opt) = @_;
	return unless $load;
	pump_load();
	$load->kill_kill(grace => 5);
	$load = undef;
	poll_until($legacy, 'postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'pgbench'}, 't', 30)
	  or diag "$what: pgbench sessions are still there";
	if ($opt{clean})
	{
		unlike($load_err, qr/aborted|error/i, "$what: no pgbench client failed");
	}
	else
	{
		my @aborted = grep { /aborted in command/ } split /\n/, $load_err;
		my ($why) = $load_err =~ /^(?:WARNING|FATAL):\s+(.*)$/m;
		note "$what: " . scalar(@aborted) . ' pgbench client(s) aborted' . ($why ? " ($why)" : '')
		  if $load_err ne '';
	}
}

# ---------------------------------------------------------------- helpers

# poll_until (DualWriteTest) pumps the load's output on every attempt.
set_poll_hook(\&pump_load);

# After a restart: the worker must come back by itself (asserted); if not,
# wake the launcher to go on with the test.
sub worker_back
{
	my ($what) = @_;
	$legacy->poll_query_until('postgres', 'SELECT 1', '1')
	  or BAIL_OUT("$what: legacy does not accept connections");
	my $ok = worker_running($legacy, 'postgres', 30);
	ok($ok, "$what: the worker runs again");
	ensure_worker($legacy, 'postgres', 60) unless $ok;
}

# The modern side's progress mark (applied_at is the remote transaction's
# start time: it changes with every batch).
sub applied_at
{
	my ($rc, $out) = $modern->psql('postgres', 'SELECT max(applied_at) FROM _dualwrite.applied');
	return $rc == 0 ? $out : '';
}

# True once $times more batches were committed on modern.
sub batches_applied
{
	my ($times, $seconds) = @_;
	my $deadline = time() + $seconds;
	for (1 .. $times)
	{
		my $at = applied_at();
		my $cond = $at eq '' ? 'true' : "max(applied_at) > '$at'";
		my $left = $deadline - time();
		return 0 if $left <= 0;
		poll_until($modern, 'postgres', "SELECT count(*) > 0 FROM _dualwrite.applied HAVING $cond",
			't', $left)
		  or return 0;
	}
	return 1;
}

# A session on modern that holds EXCLUSIVE locks on $tables: the worker's
# remote transaction stops at its first statement that needs one of them.
sub hold_modern_lock
{
	my ($tables) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			$modern->installed_command('psql'), '-XAtq',
			'-d', $modern->connstr('postgres') . ' application_name=dw_test_lock',
			'-c', "BEGIN; LOCK TABLE $tables IN EXCLUSIVE MODE; SELECT pg_sleep(300)"
		],
		'<', '/dev/null', '>', \$out, '2>', \$err);
	poll_until($modern, 'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'dw_test_lock' AND wait_event = 'PgSleep'},
		't', 60)
	  or BAIL_OUT("could not lock $tables on modern: $err");
	return $h;
}

sub release_modern_lock
{
	my ($h) = @_;
	$modern->psql('postgres',
		q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dw_test_lock'});
	$h->kill_kill(grace => 5);
}

my $WORKER_WAITS_ON_LOCK = q{SELECT count(*) > 0 FROM pg_stat_activity
	WHERE application_name = 'pg_dualwrite' AND wait_event_type = 'Lock'};

sub q1
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query);
}

sub compare_table
{
	my ($what, $table) = @_;
	is(q1($modern, "SELECT count(*) FROM $table"), q1($legacy, "SELECT count(*) FROM $table"),
		"$what: $table has as many rows on modern as on legacy");
	sides_equal($legacy, $modern, $table, 'id', "$what: every row of $table is identical on both sides");
}

my %seen_extra = (history => 0, accounts => 0);    # double applies seen so far

sub check_sides
{
	my ($what) = @_;
	my $t0 = time();
	wait_delivered($legacy, 'postgres', 120, "$what: wait_for_delivery returns true");
	note sprintf('%s: delivered in %.1f s', $what, time() - $t0);

	is(q1($legacy, q{SELECT count(*) FROM history WHERE note = 'ABORTED' OR delta >= 1000000000}),
		'0', "$what: legacy has no aborted rows (test sanity)");
	compare_table($what, 'accounts');
	compare_table($what, 'history');

	# Each committed history row applied exactly once, each committed
	# account version at most once.  Counted since the previous check, so
	# that a failure is reported by the fault that caused it only.
	my ($hist_extra, $hist_ids) = split /\|/,
	  q1($modern, 'SELECT count(*) - count(DISTINCT id), count(DISTINCT id) FROM applied_log');
	is($hist_extra - $seen_extra{history}, 0, "$what: no history row was applied twice on modern");
	diag q1($modern,
		'SELECT id, count(*), min(at), max(at) FROM applied_log GROUP BY id HAVING count(*) > 1 ORDER BY 3 DESC LIMIT 20')
	  if $hist_extra != $seen_extra{history};
	is($hist_ids, q1($legacy, 'SELECT count(*) FROM history'),
		"$what: modern applied as many distinct history rows as legacy committed");
	my $acct_extra = q1($modern,
		'SELECT count(*) - count(DISTINCT (id, touched)) FROM account_versions');
	is($acct_extra - $seen_extra{accounts}, 0, "$what: no account change was applied twice on modern");
	diag q1($modern,
		'SELECT id, touched, count(*), min(at), max(at) FROM account_versions GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 4 DESC LIMIT 20')
	  if $acct_extra != $seen_extra{accounts};
	%seen_extra = (history => $hist_extra, accounts => $acct_extra);

	# Nothing of an aborted (sub)transaction was ever applied, even for a moment.
	is( q1($modern, q{SELECT count(*) FROM applied_log WHERE note = 'ABORTED'})
		  + q1($modern, q{SELECT count(*) FROM history WHERE note = 'ABORTED' OR delta >= 1000000000}),
		0, "$what: no history row of a rolled-back transaction reached modern");
	is( q1($modern,
			q{SELECT count(*) FROM account_versions WHERE balance >= 1000000000 OR id >= 200000}),
		'0', "$what: no account change of a rolled-back transaction reached modern");
}

# ---------------------------------------------------------------- start
worker_back('start');
wait_delivered($legacy, 'postgres', 60, 'initial rows delivered');

# Each fault: run the load until batches flow, $fault->(), go on under load
# until more batches were applied after it, stop the load and check.
sub fault_under_load
{
	my ($what, $fault) = @_;
	my $t0 = time();
	start_load($what) unless $load;
	ok(batches_applied(2, 60), "$what: batches are applied under load before the fault");
	my $before = max_history_id();
	$fault->();
	start_load("$what, after the fault") unless $load;
	ok(batches_applied(3, 90), "$what: delivery goes on under load after the fault");
	my $after = max_history_id();
	note "$what: history ids $before .. $after committed around the fault";
	# (a load that died in a legacy crash was stopped by the fault itself:
	# the one running now must not have lost a client)
	stop_load($what, clean => 1);
	check_sides($what);
	note sprintf('%s: %.1f s', $what, time() - $t0);
}

# ---------------------------------------------------------------- 1. modern crash mid-batch
fault_under_load(
	'modern immediate stop mid-batch',
	sub {
		my $h = hold_modern_lock('applied_log, account_versions');
		ok(poll_until($modern, 'postgres', $WORKER_WAITS_ON_LOCK, 't', 30),
			'modern immediate stop mid-batch: the worker is in the middle of a batch');
		$modern->stop('immediate');
		$h->kill_kill(grace => 5);
		sleep 2;
		$modern->start;
	});

# ---------------------------------------------------------------- 2. modern down for a while
fault_under_load(
	'modern down for 5 s',
	sub {
		my $before = max_history_id();
		$modern->stop('fast');
		sleep 5;
		cmp_ok(max_history_id(), '>', $before, 'modern down for 5 s: legacy writes went on meanwhile');
		ok( q1($legacy, q{SELECT sum(queued) > 0 FROM dualwrite.status}) eq 't',
			'modern down for 5 s: changes are queued');
		$modern->start;
	});

# ---------------------------------------------------------------- 3. worker SIGKILL
# SIGKILL of the worker; the postmaster restarts every backend (pgbench
# loses its connections and is restarted).
my @killed;    # the workers killed on purpose (for no_crash)
sub kill_worker_under_load
{
	my ($what) = @_;
	push @killed, kill_worker($legacy, 'postgres', "$what: found the worker pid");
	worker_back($what);
	stop_load($what, clean => 0);
}

# a. while its batch is being applied on modern (the apply waits on a lock):
#    the old remote session never gets its COMMIT.
fault_under_load(
	'worker SIGKILL mid-apply',
	sub {
		my $h = hold_modern_lock('applied_log, account_versions');
		ok(poll_until($modern, 'postgres', $WORKER_WAITS_ON_LOCK, 't', 30),
			'worker SIGKILL mid-apply: the worker is in the middle of a batch');
		kill_worker_under_load('worker SIGKILL mid-apply');
		release_modern_lock($h);
	});

# b. while the COMMIT of its batch waits on modern (the progress upsert waits
#    on a lock): the old remote session has everything it needs to commit,
#    and does so only after the new worker connected and read the progress
#    mark.  The new worker must not apply that batch a second time.
fault_under_load(
	'worker SIGKILL with COMMIT in flight',
	sub {
		my $h = hold_modern_lock('_dualwrite.applied');
		ok(poll_until($modern, 'postgres', $WORKER_WAITS_ON_LOCK, 't', 30),
			'worker SIGKILL with COMMIT in flight: a batch waits for its COMMIT on modern');
		kill_worker_under_load('worker SIGKILL with COMMIT in flight');
		# Give the new worker time to start its first batch, then let the old
		# session commit.
		poll_until($modern, 'postgres', q{SELECT count(*) >= 2 FROM pg_stat_activity
			WHERE application_name = 'pg_dualwrite' AND wait_event_type = 'Lock'}, 't', 10);
		note 'worker SIGKILL with COMMIT in flight: sessions on modern (pid state wait): '
		  . q1($modern, q{SELECT string_agg(pid || ' ' || state || ' ' || coalesce(wait_event_type || ':' || wait_event, '-'), ', ')
			FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'});
		release_modern_lock($h);
	});

# ---------------------------------------------------------------- 4. legacy crash mid-drain
fault_under_load(
	'legacy immediate stop',
	sub {
		my $in_batch = poll_until($modern, 'postgres', q{SELECT count(*) > 0 FROM pg_stat_activity
			WHERE application_name = 'pg_dualwrite' AND state IN ('active', 'idle in transaction')}, 't', 10);
		note 'legacy immediate stop: ' . ($in_batch ? 'a batch was in progress on modern' : 'no batch seen in progress');
		$legacy->stop('immediate');
		$legacy->start;
		# pgbench lost its connections
		stop_load('legacy immediate stop', clean => 0);
		worker_back('legacy immediate stop');
	});

# ---------------------------------------------------------------- 5. long transaction
fault_under_load(
	'long transaction',
	sub {
		my $long = $legacy->background_psql('postgres');
		$long->query_safe('BEGIN');
		$long->query_safe(
			q{INSERT INTO history (account, delta, note) SELECT g, 7, 'long transaction' FROM generate_series(5001, 5010) g});
		$long->query_safe(q{UPDATE accounts SET balance = balance + 7, touched = touched + 1 WHERE id BETWEEN 5001 AND 5010});
		my $long_max = $long->query_safe(q{SELECT max(id) FROM history WHERE note = 'long transaction'});
		$long_max =~ s/\s+//g;
		ok(batches_applied(8, 60), 'long transaction: many batches applied while it is open');
		cmp_ok(q1($modern, 'SELECT coalesce(max(id), 0) FROM history'), '>', $long_max,
			'long transaction: modern has history rows newer than its own');
		is(q1($modern, q{SELECT count(*) FROM history WHERE note LIKE 'long transaction%'}),
			'0', 'long transaction: nothing of it on modern before its COMMIT');
		$long->query_safe(q{INSERT INTO history (account, delta, note) VALUES (5001, 1, 'long transaction, last')});
		$long->query_safe(q{UPDATE accounts SET balance = balance + 1, touched = touched + 1 WHERE id = 5001});
		$long->query_safe('COMMIT');
		$long->quit;
		ok( poll_until($modern, 'postgres',
				q{SELECT count(*) = 11 FROM history WHERE note LIKE 'long transaction%'}, 't', 60),
			'long transaction: delivered under load after its COMMIT');
	});

# ---------------------------------------------------------------- 6. remote session terminated
fault_under_load(
	'remote session terminated',
	sub {
		my $offset = -s $legacy->logfile;
		my $h = hold_modern_lock('_dualwrite.applied');
		ok(poll_until($modern, 'postgres', $WORKER_WAITS_ON_LOCK, 't', 30),
			'remote session terminated: a batch waits for its COMMIT on modern');
		my $n = q1($modern,
			q{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'});
		is($n, '1', 'remote session terminated: one pg_dualwrite session on modern was terminated');
		release_modern_lock($h);
		$legacy->wait_for_log(qr/WARNING:.*delivery to server "modern" failed/, $offset);
	});

# ---------------------------------------------------------------- workload coverage
my %kinds = map { split /\|/ } split /\n/,
  q1($legacy, 'SELECT note, count(*) FROM history GROUP BY note');
note 'history rows by kind: ' . join(', ', map { "$_ $kinds{$_}" } sort keys %kinds);
for my $kind ('update', 'transfer in', 'move', 'delete', 'reinsert', 'delete+reinsert', 'after savepoint')
{
	cmp_ok($kinds{$kind} // 0, '>', 0, "workload: '$kind' transactions committed");
}
cmp_ok(q1($legacy, 'SELECT count(*) FROM accounts WHERE id > 100000'), '>', 0,
	'workload: some accounts are at a moved primary key at the end');
cmp_ok(q1($legacy, 'SELECT last_value FROM lifetime'), '>', 1, 'workload: accounts were re-inserted');

# ---------------------------------------------------------------- self-check
# The checks above can fail: a history row and an account version applied
# again (upserts over themselves, the way a batch sent twice would be
# applied), and a changed account, are noticed.
$modern->safe_psql('postgres', q{
SET session_replication_role = replica;
INSERT INTO history SELECT * FROM history WHERE id = (SELECT max(id) FROM history)
    ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note;
INSERT INTO accounts SELECT * FROM accounts WHERE id = (SELECT max(id) FROM accounts)
    ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance;
});
is(q1($modern, 'SELECT count(*) - count(DISTINCT id) FROM applied_log') - $seen_extra{history},
	1, 'self-check: a history row applied twice is noticed');
is(q1($modern, 'SELECT count(*) - count(DISTINCT (id, touched)) FROM account_versions') - $seen_extra{accounts},
	1, 'self-check: an account change applied twice is noticed');
my $good = table_text($legacy, 'postgres', 'accounts', 'id');
$modern->safe_psql('postgres', 'UPDATE accounts SET balance = balance + 1 WHERE id = (SELECT min(id) FROM accounts)');
isnt(table_text($modern, 'postgres', 'accounts', 'id'), $good, 'self-check: a changed account on modern is noticed');

# Nothing crashed but the workers killed on purpose.
no_crash($legacy, 'legacy: no process crashed (but the workers killed on purpose)', allow_pids => \@killed);
no_crash($modern, 'modern: no process crashed');

note sprintf('total %.1f s', time() - $t_begin);
$legacy->stop;
$modern->stop;
done_testing();

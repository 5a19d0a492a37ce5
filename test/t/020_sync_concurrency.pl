# Copyright (c) pg_dualwrite authors
#
# 020_sync_concurrency.pl - sync mode under contention: many clients writing
# the same few rows commit on both sides or on neither, and nothing hangs
# (SPEC guarantee 4, issue 7).
#
# Five accounts (sync table) and a transfer log (sync table).  pgbench runs
#   transfer  moves an amount between two random accounts, in random order
#             (so legacy transactions deadlock and pgbench retries them),
#             and logs it in transfers;
#   touch     adds 1 to one account's hits.
# (transfers also logs the session's sync_remote_commit, so the test knows
# the nowait clients did run with nowait).
# Phase 1: 8 clients, sync_remote_commit = wait.  Phase 2: two pgbench runs at
# once, 5 clients with wait and 3 with nowait (COMMIT PREPARED sent, not
# waited for).  After each phase:
#   - pgbench ended within its time limit (no distributed deadlock: remote
#     lock waits are bounded by dualwrite.remote_timeout, and a hang would
#     show as a timeout here), and no transaction failed other than by a
#     legacy deadlock that pgbench retried;
#   - both sides hold the same accounts and transfers, row by row;
#   - the transfers and hits on modern are exactly what pgbench counted as
#     committed: every committed transaction reached modern, no failed one
#     did;
#   - on modern the total is invariant and every balance is its initial
#     value plus its logged transfers (no transfer half applied, none lost);
#   - nothing is left prepared on modern, the worker's resolver was not
#     needed in phase 1, nothing went through the outbox (sync_fallbacks 0,
#     queued 0), and sync_transactions grew by exactly the commits.
# Without the two-phase commit (ship after local commit, or no PREPARE), a
# failed or retried transaction could reach modern, or a committed one could
# be missed: the counts and balances would differ.  A remote lock order that
# is not the local commit order would hang pgbench into its timeout.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DualWriteTest;

my $NACCOUNTS = 5;
my $BALANCE   = 1000;
my $TOTAL     = $NACCOUNTS * $BALANCE;
my $TXNS      = 150;    # per client

my $modern = modern_node('modern', conf => "max_prepared_transactions = 20\n");
my $legacy = legacy_node(
	'legacy', conf => q{
dualwrite.resolve_interval = 300ms
dualwrite.remote_timeout = 10s
deadlock_timeout = 50ms
log_lock_waits = off
});

my $ddl_accounts =
  'CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL, hits bigint NOT NULL DEFAULT 0)';
$legacy->safe_psql(
	'postgres', qq{
$ddl_accounts;
CREATE TABLE transfers (id bigserial PRIMARY KEY, remote_commit text NOT NULL, client int NOT NULL,
    a int NOT NULL, b int NOT NULL, d int NOT NULL);
});
$modern->safe_psql(
	'postgres', qq{
$ddl_accounts;
CREATE TABLE transfers (id bigint PRIMARY KEY, remote_commit text NOT NULL, client int NOT NULL,
    a int NOT NULL, b int NOT NULL, d int NOT NULL);
});
connect_nodes($legacy, $modern);
$legacy->safe_psql(
	'postgres', q{
SELECT dualwrite.enable('accounts', mode => 'sync', sync_failure => 'error');
SELECT dualwrite.enable('transfers', mode => 'sync', sync_failure => 'error');
});
ensure_worker($legacy, 'postgres');
$legacy->safe_psql('postgres',
	"INSERT INTO accounts SELECT g, $BALANCE FROM generate_series(1, $NACCOUNTS) g");
is($modern->safe_psql('postgres', 'SELECT count(*), sum(balance) FROM accounts'),
	"$NACCOUNTS|$TOTAL", 'the accounts are on modern when the sync INSERT returns');

my %scripts = (
	transfer => [
		3, qq{
\\set a random(1, $NACCOUNTS)
\\set b random(1, $NACCOUNTS)
\\set d random(1, 50)
BEGIN;
UPDATE accounts SET balance = balance - :d WHERE id = :a;
UPDATE accounts SET balance = balance + :d WHERE id = :b;
INSERT INTO transfers (remote_commit, client, a, b, d)
    VALUES (current_setting('dualwrite.sync_remote_commit'), :client_id, :a, :b, :d);
END;
}
	],
	touch => [
		1, qq{
\\set a random(1, $NACCOUNTS)
UPDATE accounts SET hits = hits + 1 WHERE id = :a;
}
	]);
my @script_opts = pgbench_script_opts(%scripts);

# Starts pgbench: $clients clients of $TXNS transactions each, with the given
# sync_remote_commit.  Returns a handle for finish_bench().
sub start_bench
{
	my ($mode, $clients) = @_;
	my %b = (mode => $mode, clients => $clients, out => '', err => '');
	local $ENV{PGOPTIONS} = "-c dualwrite.sync_remote_commit=$mode";
	$b{timer} = IPC::Run::timeout(60);
	$b{h} = IPC::Run::start(
		[
			$legacy->installed_command('pgbench'), '--no-vacuum',
			'-h', $legacy->host, '-p', $legacy->port,
			'-c', $clients, '-j', $clients, '-t', $TXNS,
			'--max-tries', 1000,
			@script_opts, 'postgres'
		],
		'<', '/dev/null', '>', \$b{out}, '2>', \$b{err}, $b{timer});
	return \%b;
}

# Waits for pgbench; asserts that it ended in time without failures.
# Returns { transfer => n, touch => n } (committed transactions per script).
sub finish_bench
{
	my ($b) = @_;
	my $ok = eval { $b->{h}->finish; 1 };
	if (!$ok)
	{
		$b->{h}->kill_kill;
		fail("pgbench ($b->{mode}) ends within its time limit: $@");
		diag $b->{err};
		return { transfer => -1, touch => -1 };
	}
	pass("pgbench ($b->{mode}) ends within its time limit");
	is($b->{h}->full_result(0), 0, "pgbench ($b->{mode}) exits with 0") or diag $b->{err};
	like($b->{out}, qr/number of failed transactions: 0 \(/,
		"pgbench ($b->{mode}): no transaction failed") or diag $b->{out};
	my %n;
	for my $name (keys %scripts)
	{
		($n{$name}) = $b->{out} =~ m{/$name\.sql\n\s+- weight: \d+[^\n]*\n\s+- (\d+) transactions};
		ok(defined $n{$name} && $n{$name} > 0, "pgbench ($b->{mode}) committed $name transactions")
		  or diag $b->{out};
		$n{$name} //= -1;
	}
	is($n{transfer} + $n{touch}, $b->{clients} * $TXNS,
		"pgbench ($b->{mode}): every transaction of every client committed");
	my ($retried) = $b->{out} =~ /number of transactions retried: (\d+)/;
	note "pgbench ($b->{mode}): $n{transfer} transfers, $n{touch} touches, "
	  . ($retried // '?') . ' retried';
	return \%n;
}

# The sync counters of a table (transactions|fallbacks).
sub sync_counters
{
	my ($table) = @_;
	return $legacy->safe_psql('postgres',
		"SELECT transactions, fallbacks FROM dualwrite._sync_info('$table')");
}

# Everything that must hold after a phase.
sub check_phase
{
	my ($phase, $expect_transfers, $expect_hits, $before) = @_;
	sides_equal($legacy, $modern, 'accounts', 'id', "$phase: same accounts on both sides");
	sides_equal($legacy, $modern, 'transfers', 'id', "$phase: same transfers on both sides");
	is($modern->safe_psql('postgres', 'SELECT count(*) FROM transfers'),
		$expect_transfers, "$phase: modern has exactly the transfers pgbench committed");
	is($modern->safe_psql('postgres', 'SELECT sum(hits) FROM accounts'),
		$expect_hits, "$phase: modern has exactly the touches pgbench committed");
	is($modern->safe_psql('postgres', 'SELECT sum(balance) FROM accounts'),
		$TOTAL, "$phase: modern: the total is invariant");
	is( $modern->safe_psql(
			'postgres', qq{
SELECT count(*) FROM accounts ac
WHERE balance <> $BALANCE
    - (SELECT coalesce(sum(d), 0) FROM transfers WHERE a = ac.id)
    + (SELECT coalesce(sum(d), 0) FROM transfers WHERE b = ac.id)}),
		'0', "$phase: modern: every balance is its initial value plus its transfers");
	ok(poll_until($modern, 'postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts', 't', 15),
		"$phase: no prepared transaction left on modern")
	  or diag $modern->safe_psql('postgres', 'SELECT gid, prepared FROM pg_prepared_xacts');
	is($legacy->safe_psql('postgres',
			q{SELECT string_agg(queued::text, ',' ORDER BY table_name) FROM dualwrite.status}),
		'0,0', "$phase: nothing went through the outbox");
	my ($at, $af) = split /\|/, sync_counters('accounts');
	my ($tt, $tf) = split /\|/, sync_counters('transfers');
	is($tt - $before->{transfers}, $expect_transfers - $before->{nt},
		"$phase: one sync transaction per committed transfer");
	is($at - $before->{accounts}, $expect_transfers - $before->{nt} + $expect_hits - $before->{nh},
		"$phase: one sync transaction per committed write of accounts");
	is("$af|$tf", '0|0', "$phase: no sync fallback");
	return { accounts => $at, transfers => $tt, nt => $expect_transfers, nh => $expect_hits };
}

my $before = { accounts => (split /\|/, sync_counters('accounts'))[0], transfers => 0, nt => 0, nh => 0 };

# ---------------------------------------------------------------- phase 1
my $offset = log_offset($legacy);
my $n1 = finish_bench(start_bench('wait', 8));
is($legacy->safe_psql('postgres', 'SELECT sum(balance) FROM accounts'), $TOTAL,
	'phase 1: legacy: the total is invariant');
$before = check_phase('phase 1 (wait)', $n1->{transfer}, $n1->{touch}, $before);
my $log = slurp_file($legacy->logfile, $offset);
unlike($log, qr/resolved in-doubt transaction/, 'phase 1: the resolver had nothing to settle');
unlike($log, qr/did not answer within/, 'phase 1: no remote call timed out');
like($log, qr/deadlock detected/, 'phase 1: the random key order did make legacy transactions deadlock');

# ---------------------------------------------------------------- phase 2
$offset = log_offset($legacy);
my $bw = start_bench('wait', 5);
my $bn = start_bench('nowait', 3);
my $n2w = finish_bench($bw);
my $n2n = finish_bench($bn);
is( $modern->safe_psql('postgres', q{SELECT count(*) FROM transfers WHERE remote_commit = 'nowait'}),
	$n2n->{transfer}, 'phase 2: modern has every transfer of the clients running with nowait');
check_phase('phase 2 (wait + nowait)',
	$n1->{transfer} + $n2w->{transfer} + $n2n->{transfer},
	$n1->{touch} + $n2w->{touch} + $n2n->{touch}, $before);
$log = slurp_file($legacy->logfile, $offset);
unlike($log, qr/did not answer within/, 'phase 2: no remote call timed out');
unlike($log, qr/COMMIT PREPARED (?:of an earlier sync transaction )?failed/,
	'phase 2: no COMMIT PREPARED failed');
ok(poll_until($legacy, 'postgres', 'SELECT bool_and(in_doubt = 0) FROM dualwrite.status', 't', 10),
	'status: nothing in doubt');

no_crash($legacy, 'legacy: no crash');
no_crash($modern, 'modern: no crash');
done_testing();

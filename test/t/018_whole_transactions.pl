
# Copyright (c) pg_dualwrite authors
#
# 018_whole_transactions.pl - the modern side never shows part of a legacy
# transaction (SPEC guarantee 9).
#
# An accounts table whose total never changes: pgbench runs, with 4 clients,
#   transfer  moves an amount from one account to another (two UPDATEs);
#   shuffle   moves amounts among 50 consecutive accounts in one UPDATE
#             (+3 to the even ids, -3 to the odd ones: 50 changes, far more
#             than batch_size = 5).
# The worker delivers in batches of 5 changes and sorts at most 64 changes per
# pass (dualwrite.max_sort_keys), so transactions cross both batch and pass
# boundaries.  On the modern side:
#   - a deferred constraint trigger checks the total when each remote
#     transaction commits, i.e. the very state the commit makes visible, and
#     records any other total (deterministic: no reader timing involved);
#   - a reader polls the total in a loop while the load runs and records
#     every total it sees that is not the invariant one.
# Both must record nothing; the remote commits are also counted, so that the
# test cannot pass by delivering everything in one transaction.  Without
# whole-transaction delivery (batches cut after exactly batch_size changes)
# the shuffle alone is split over ten remote transactions and both checks
# fail.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DualWriteTest;

my $NACCOUNTS = 200;
my $BALANCE   = 1000;
my $TOTAL     = $NACCOUNTS * $BALANCE;

my $modern = modern_node('modern');
my $legacy = legacy_node(
	'legacy', conf => q{
dualwrite.batch_size = 5
dualwrite.max_sort_keys = 64
});

my $ddl = 'CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL)';
$legacy->safe_psql('postgres', $ddl);
$modern->safe_psql(
	'postgres', qq{
$ddl;
-- What each remote commit makes visible: checked at commit time.
CREATE TABLE bad_commits (total bigint, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE commits (xid xid8 PRIMARY KEY);
CREATE FUNCTION check_total() RETURNS trigger LANGUAGE plpgsql AS \$\$
DECLARE t bigint; n bigint;
BEGIN
    -- The worker's session pins search_path to pg_catalog: qualify names.
    INSERT INTO public.commits VALUES (pg_catalog.pg_current_xact_id()) ON CONFLICT DO NOTHING;
    SELECT sum(balance), count(*) INTO t, n FROM public.accounts;
    IF t IS DISTINCT FROM $TOTAL OR n <> $NACCOUNTS THEN
        INSERT INTO public.bad_commits (total) VALUES (t);
    END IF;
    RETURN NULL;
END \$\$;
CREATE CONSTRAINT TRIGGER total_at_commit AFTER INSERT OR UPDATE OR DELETE ON accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_total();
-- pg_dualwrite applies in session_replication_role = replica: fire anyway.
ALTER TABLE accounts ENABLE ALWAYS TRIGGER total_at_commit;
-- What a reader polling the total sees.
CREATE TABLE bad_reads (total bigint);
CREATE TABLE reads (n bigint);
CREATE TABLE stop_reader (stop boolean);
CREATE PROCEDURE poll_total() LANGUAGE plpgsql AS \$\$
DECLARE t bigint; n bigint := 0;
BEGIN
    WHILE NOT EXISTS (SELECT FROM stop_reader) LOOP
        -- READ COMMITTED: every statement reads the latest commits.
        SELECT sum(balance) INTO t FROM accounts;
        IF t IS DISTINCT FROM $TOTAL THEN
            INSERT INTO bad_reads VALUES (t);
        END IF;
        n := n + 1;
        PERFORM pg_sleep(0.001);
    END LOOP;
    INSERT INTO reads VALUES (n);
END \$\$;
});
connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', q{SELECT dualwrite.enable('public.accounts', target_server => 'modern')});
ensure_worker($legacy, 'postgres');

# The accounts arrive first (in one transaction of 200 changes), then the
# checks start.
$legacy->safe_psql('postgres',
	"INSERT INTO accounts SELECT g, $BALANCE FROM generate_series(1, $NACCOUNTS) g");
wait_delivered($legacy, 'postgres', 60, 'the accounts are delivered');
is($modern->safe_psql('postgres', 'SELECT count(*) FROM bad_commits'),
	'0', 'no remote commit showed part of the 200-row insert');
$modern->safe_psql('postgres', 'TRUNCATE commits');

my $reader_out = '';
my $reader = IPC::Run::start(
	[
		$modern->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-h', $modern->host, '-p', $modern->port, '-d', 'postgres', '-c', 'CALL poll_total()'
	],
	'<', '/dev/null', '>&', \$reader_out);

# Deadlock-free: transfers lock their two accounts in id order, a shuffle
# excludes every transfer.
my %scripts = (
	transfer => [
		20, q{
\set a random(1, 200)
\set b random(1, 200)
\set d random(1, 50)
BEGIN;
SELECT pg_advisory_xact_lock_shared(1);
SELECT pg_advisory_xact_lock(2, least(:a, :b));
SELECT pg_advisory_xact_lock(2, greatest(:a, :b));
UPDATE accounts SET balance = balance - :d WHERE id = :a;
UPDATE accounts SET balance = balance + :d WHERE id = :b;
END;
}
	],
	shuffle => [
		1, q{
\set x random(1, 151)
BEGIN;
SELECT pg_advisory_xact_lock(1);
UPDATE accounts SET balance = balance + CASE WHEN id % 2 = 0 THEN 3 ELSE -3 END
    WHERE id BETWEEN :x AND :x + 49;
END;
}
	]);
my @script_opts = pgbench_script_opts(%scripts);
my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::run(
	[
		$legacy->installed_command('pgbench'), '--no-vacuum',
		'-h', $legacy->host, '-p', $legacy->port,
		'-c', 4, '-j', 4, '-t', 300, @script_opts, 'postgres'
	],
	'<', '/dev/null', '>', \$bench_out, '2>', \$bench_err);
ok($bench, 'pgbench ran 1,200 transactions') or diag $bench_err;
like($bench_out, qr/shuffle\.sql\s+- weight: \d+[^\n]*\n\s+- [1-9]\d* transactions/, 'pgbench ran the 50-row shuffle too');
is($legacy->safe_psql('postgres', 'SELECT sum(balance) FROM accounts'),
	$TOTAL, 'legacy: the total is invariant');

wait_delivered($legacy, 'postgres', 60, 'every transaction is delivered');
$modern->safe_psql('postgres', 'INSERT INTO stop_reader VALUES (true)');
ok($reader->finish, 'the reader ran to its end') or diag $reader_out;

sides_equal($legacy, $modern, 'accounts', 'id', 'both sides hold the same accounts');
my $commits = $modern->safe_psql('postgres', 'SELECT count(*) FROM commits');
cmp_ok($commits, '>', 20, "delivered in many remote transactions ($commits)");
cmp_ok($modern->safe_psql('postgres', 'SELECT coalesce(sum(n), 0) FROM reads'),
	'>', 100, 'the reader polled the total many times');
is($modern->safe_psql('postgres', 'SELECT count(*) FROM bad_commits'),
	'0', 'no remote commit made part of a legacy transaction visible')
  or diag $modern->safe_psql('postgres', 'SELECT total, count(*) FROM bad_commits GROUP BY 1 ORDER BY 2 DESC LIMIT 5');
is($modern->safe_psql('postgres', 'SELECT count(*) FROM bad_reads'),
	'0', 'the reader never saw another total')
  or diag $modern->safe_psql('postgres', 'SELECT total, count(*) FROM bad_reads GROUP BY 1 ORDER BY 2 DESC LIMIT 5');
no_crash($legacy, 'no crash');

done_testing();

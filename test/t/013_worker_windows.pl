# Copyright (c) pg_dualwrite authors
#
# 013_worker_windows.pl - the worker's own windows of failure.
#
# 1. The worker dies after the modern side committed a batch and before the
#    local record of it committed (test fault point after_remote_commit).
#    The restarted worker must bring the local progress up to date from the
#    modern side at once, even with nothing new to deliver: before, it did
#    so only when a later round delivered something, and until then
#    wait_for_delivery() returned false and the outbox could not be
#    truncated.
# 2. Relcache churn while the worker delivers: the owner (a plain role)
#    inserts and runs ALTER TABLE ... SET STATISTICS / ANALYZE in a loop;
#    every one invalidates the table's relcache entry.  The worker once kept
#    the descriptor of an entry it had closed and crashed in
#    heap_deform_tuple when the invalidation freed it (and a worker crash
#    restarts every backend of the cluster).  No crash, identical sides.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use DualWriteTest;

my $modern = modern_node('modern');
my $legacy = legacy_node('legacy', conf => "dualwrite.batch_size = 7\n");

my $ddl = 'CREATE TABLE t (id int PRIMARY KEY, v text, n numeric)';
$modern->safe_psql('postgres', $ddl);
$legacy->safe_psql('postgres', "CREATE ROLE app LOGIN; GRANT CREATE ON SCHEMA public TO app;");
$legacy->safe_psql('postgres', "SET ROLE app; $ddl");
connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', q{SELECT dualwrite.enable('t')});
ensure_worker($legacy, 'postgres');

# ---------------------------------------------------------------- 1
$legacy->safe_psql('postgres', q{INSERT INTO t VALUES (1, 'first', 1)});
ok(wait_delivered($legacy, 'postgres', 30), 'first row delivered');
my $pid = worker_pid($legacy, 'postgres');
my $offset = log_offset($legacy);
$legacy->safe_psql('postgres', q{SELECT dualwrite._debug_fault('after_remote_commit')});
$legacy->safe_psql('postgres', q{INSERT INTO t VALUES (2, 'in the window', 2)});
ok($legacy->wait_for_log(qr/test fault point "after_remote_commit" reached/, $offset),
	'the worker died between the remote and the local commit');
ok(poll_until($modern, 'postgres', 'SELECT count(*) FROM t WHERE id = 2', '1', 30),
	'the modern side has the batch');
ok( poll_until(
		$legacy, 'postgres',
		"SELECT pid IS NOT NULL AND pid <> $pid FROM dualwrite.workers WHERE datname = 'postgres'", 't', 60),
	'a new worker runs');
# nothing new is written: the new worker must repair the local record itself
ok(wait_delivered($legacy, 'postgres', 10), 'wait_for_delivery() is true without any new change');
is($legacy->safe_psql('postgres', 'SELECT queued FROM dualwrite.status'), '0', 'status: nothing queued');
sides_equal($legacy, $modern, 't', 'id', 'both sides identical after the window');

# ---------------------------------------------------------------- 2
$offset = log_offset($legacy);
$legacy->safe_psql(
	'postgres', q{
SET ROLE app;
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        INSERT INTO t SELECT g, 'churn ' || g, g * i FROM generate_series(i * 10, i * 10 + 4) g
            ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, n = EXCLUDED.n;
        COMMIT;
        EXECUTE format('ALTER TABLE t ALTER COLUMN n SET STATISTICS %s', 10 + i % 50);
        COMMIT;
        IF i % 10 = 0 THEN
            ANALYZE t;
            COMMIT;
        END IF;
    END LOOP;
END $$;
});
ok(wait_delivered($legacy, 'postgres', 60), 'delivered under relcache churn');
sides_equal($legacy, $modern, 't', 'id', 'both sides identical after the churn');
no_crash($legacy, 'legacy: no process crashed under relcache churn', offset => $offset);

no_crash($legacy, 'legacy: no process crashed');
no_crash($modern, 'modern: no process crashed');
done_testing();

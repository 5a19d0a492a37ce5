# 011_interrupts.pl
#    Remote I/O never blocks interrupts.  A target that accepts connections
#    and never answers (a listener of this test's own), and a modern database
#    whose apply hangs on a lock: query cancel, pg_terminate_backend, the
#    remote timeout, DROP DATABASE ... WITH (FORCE) and a fast shutdown all
#    work while a remote call is in flight.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DualWriteTest;

# A listener that accepts and never answers.
my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1)
  or die "cannot listen: $!";
my $hung_port = $listener->sockport;
my $pid = fork();
die "fork: $!" unless defined $pid;
my $parent = $$;
END { kill 'KILL', $pid if $pid && $$ == $parent; }
if ($pid == 0)
{
	# Close what prove reads, so a dying test does not leave it waiting.
	close STDOUT;
	close STDERR;
	my @held;
	while (my $c = $listener->accept) { push @held, $c; }
	exit 0;
}

my $modern = modern_node('modern');
# (and naptime 50 ms, retry backoff from 50 ms)
my $legacy = legacy_node('legacy', conf => 'dualwrite.retry_backoff_max = 200');
my $me = getpwuid($<);
$modern->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY, v text)');
$legacy->safe_psql('postgres', qq{
CREATE DATABASE app;
});
$legacy->safe_psql('app', 'CREATE TABLE t (id int PRIMARY KEY, v text)');
# database app on legacy -> postgres on modern
connect_nodes($legacy, $modern, db => 'app', modern_db => 'postgres');
$legacy->safe_psql('app', qq{
CREATE SERVER hung FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '$hung_port', dbname 'x', connect_timeout '600');
CREATE USER MAPPING FOR PUBLIC SERVER hung OPTIONS (user '$me');
});

# 1. enable() connecting to the hung target: a query cancel ends it at once.
my $s = $legacy->background_psql('app', on_error_stop => 0);
my $spid = $s->query_safe('SELECT pg_backend_pid()');
$s->query_until(qr/started/, q{\echo started
SELECT dualwrite.enable('t', target_server => 'hung');
});
ok($legacy->poll_query_until('app', "SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $spid"),
	'enable() waits on the hung target in an interruptible, named wait');
my $t0 = time;
$legacy->safe_psql('app', "SELECT pg_cancel_backend($spid)");
my $out = $s->query('SELECT 1');
ok(time - $t0 < 5, 'query cancel ended the remote wait promptly');
is($legacy->safe_psql('app', 'SELECT count(*) FROM dualwrite.tables'), '0', 'the cancelled enable() left nothing');

# 2. pg_terminate_backend of a backend in the same wait.
$s->query_until(qr/started/, q{\echo started
SELECT dualwrite.enable('t', target_server => 'hung');
});
ok($legacy->poll_query_until('app', "SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $spid"),
	'second enable() is waiting again');
$t0 = time;
$legacy->safe_psql('app', "SELECT pg_terminate_backend($spid)");
ok($legacy->poll_query_until('app', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $spid"),
	'terminated backend is gone');
ok(time - $t0 < 5, 'terminate ended the remote wait promptly');
eval { $s->quit };    # its server connection is gone

# 3. connect_timeout bounds a connection attempt, with a clear message.
$legacy->safe_psql('app', "ALTER SERVER hung OPTIONS (SET connect_timeout '1')");
my ($ret, $stdout, $stderr) = $legacy->psql('app', "SELECT dualwrite.enable('t', target_server => 'hung')");
like($stderr, qr/could not connect to server "hung": timeout expired/, 'connect timeout gives a clear error');

# 4. The worker with an apply that hangs on a lock on the modern side.
$legacy->safe_psql('app', "SELECT dualwrite.enable('t', target_server => 'modern')");
$legacy->safe_psql('app', "INSERT INTO t VALUES (1, 'one')");
ok($legacy->poll_query_until('app', "SELECT dualwrite.wait_for_delivery('1s')"), 'first change delivered');
# A short remote timeout first (the worker reads settings between rounds).
$legacy->safe_psql('app', "ALTER SYSTEM SET dualwrite.remote_timeout = '1s'; SELECT pg_reload_conf()");
sleep 1;
my $locker = $modern->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
$legacy->safe_psql('app', "INSERT INTO t VALUES (2, 'two')");
ok( $modern->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'pg_dualwrite' AND wait_event_type = 'Lock'"),
	'the worker is blocked inside a remote call');
my $wpid = $legacy->safe_psql('app', "SELECT pid FROM dualwrite.workers WHERE datname = 'app'");

# 4a. the remote timeout fires and the worker retries
ok($legacy->poll_query_until('app',
		"SELECT last_error ~ 'did not answer within' FROM dualwrite.workers WHERE datname = 'app'"),
	'remote timeout reported in dualwrite.workers');
$legacy->safe_psql('app', "ALTER SYSTEM RESET dualwrite.remote_timeout; SELECT pg_reload_conf()");
ok( $modern->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'pg_dualwrite' AND wait_event_type = 'Lock'"),
	'the worker is blocked again after its retry');

# 4b. pg_terminate_backend of the worker mid-call: it exits, the launcher starts a new one.
$wpid = $legacy->safe_psql('app', "SELECT pid FROM dualwrite.workers WHERE datname = 'app'");
$t0 = time;
$legacy->safe_psql('app', "SELECT pg_terminate_backend($wpid)");
ok($legacy->poll_query_until('app', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $wpid"),
	'terminated worker exits while its remote call hangs');
ok(time - $t0 < 5, 'worker terminated promptly');
ok($legacy->poll_query_until('app',
		"SELECT pid IS NOT NULL AND pid <> $wpid FROM dualwrite.workers WHERE datname = 'app'"),
	'the launcher started a new worker');

# 4c. DROP DATABASE ... WITH (FORCE) while the new worker hangs in a remote call.
ok( $modern->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'pg_dualwrite' AND wait_event_type = 'Lock'"),
	'the new worker is blocked in a remote call too');
$t0 = time;
$legacy->safe_psql('postgres', 'DROP DATABASE app WITH (FORCE)');
ok(time - $t0 < 10, 'DROP DATABASE ... WITH (FORCE) did not wait for the remote call');

# 5. fast shutdown while a worker is in a remote call.
$legacy->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY, v text)');
connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', qq{
SELECT dualwrite.enable('t', target_server => 'modern');
INSERT INTO t VALUES (3, 'three');
});
ok( $modern->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'pg_dualwrite' AND wait_event_type = 'Lock'"),
	'a worker is blocked in a remote call before shutdown');
$t0 = time;
$legacy->stop('fast');
ok(time - $t0 < 10, 'fast shutdown did not wait for the remote call');

$locker->query_safe('ROLLBACK');
$locker->quit;
$legacy->start;
ok($legacy->poll_query_until('postgres', "SELECT dualwrite.wait_for_delivery('1s')"), 'delivered after restart');
is($modern->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM t'), '1,3',
	'modern holds the rows of the surviving database');

no_crash($legacy, 'legacy: no process crashed');
no_crash($modern, 'modern: no process crashed');

kill 'TERM', $pid;
waitpid($pid, 0);
$legacy->stop;
$modern->stop;
done_testing();

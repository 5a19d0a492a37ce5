# Copyright (c) pg_dualwrite authors
#
# 021_sync_connections.pl - the connections sync mode opens to the modern
# database: one per session, reused, replaced when it goes stale, never
# leaked; and sync mode refused against a modern that cannot prepare
# (issue 7).
#
# A trigger on the modern tables (ENABLE ALWAYS: sync changes arrive in
# session_replication_role = replica) logs, for every row, the modern
# backend that wrote it (pid and backend_start), so the test knows which
# modern connection carried each legacy transaction.  The worker never
# writes these tables (every table is sync), so the logged backends are
# exactly the sessions' sync connections.
# 1. 200 short-lived sessions (pgbench -C), one sync INSERT each: 200
#    distinct modern connections, and once the sessions are gone the modern
#    side has as many pg_dualwrite connections as before (the worker's):
#    none is left behind.  Without closing them at backend exit, or with a
#    connection per transaction that is never closed, they would pile up.
# 2. One session, 50 sync transactions: one modern backend carried them all
#    (a connection per transaction would show 50), and while the session
#    lives its connection is seen by the leak check (the check can fail).
# 3. ALTER SERVER ... OPTIONS (SET ...) from another session, ALTER USER
#    MAPPING, and ALTER SERVER in the session itself, each between two
#    transactions: the next transaction runs on a new modern backend, works,
#    and the old backend is gone; the one after reuses the new one.
#    Without the syscache invalidation the old connection (old options)
#    would be used on.
# 4. The modern server restarts between two transactions of a session
#    (policy error): the next transaction works, no error and no warning,
#    on a new connection.  Without noticing the stale connection, the
#    transaction would fail with a connection error.
# 5. enable(mode => 'sync') against a modern with max_prepared_transactions
#    = 0 is refused with the hint and changes nothing (table not flagged, no
#    trigger, nothing captured); async works there, and set_mode to sync is
#    refused the same way.
# At the end no sync connection is left on modern and nothing is prepared.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DualWriteTest;

my $modern = modern_node('modern', conf => "max_prepared_transactions = 10\n");
my $legacy = legacy_node('legacy', conf => "dualwrite.resolve_interval = 300ms\n");

$legacy->safe_psql(
	'postgres', q{
CREATE TABLE churn (id serial PRIMARY KEY, note text);
CREATE TABLE t (id int PRIMARY KEY, v text);
});
$modern->safe_psql(
	'postgres', q{
CREATE TABLE churn (id int PRIMARY KEY, note text);
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE TABLE conn_log (tbl text, id int, pid int, backend_start timestamptz);
CREATE FUNCTION log_conn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The sync session pins search_path: qualify names.
    INSERT INTO public.conn_log
    SELECT TG_TABLE_NAME, NEW.id, pg_catalog.pg_backend_pid(), a.backend_start
    FROM pg_catalog.pg_stat_activity a WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid();
    RETURN NULL;
END $$;
CREATE TRIGGER log_conn AFTER INSERT OR UPDATE ON churn FOR EACH ROW EXECUTE FUNCTION log_conn();
CREATE TRIGGER log_conn AFTER INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION log_conn();
ALTER TABLE churn ENABLE ALWAYS TRIGGER log_conn;
ALTER TABLE t ENABLE ALWAYS TRIGGER log_conn;
});
connect_nodes($legacy, $modern, server_options => { connect_timeout => '10' });
$legacy->safe_psql(
	'postgres', q{
SELECT dualwrite.enable('churn', mode => 'sync', sync_failure => 'error');
SELECT dualwrite.enable('t', mode => 'sync', sync_failure => 'error');
});
ensure_worker($legacy, 'postgres');

my $PGDW_CONNS = q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'};
# The modern backends that carried a sync transaction and are still there.
my $SYNC_CONNS = q{SELECT count(*) FROM pg_stat_activity a
    WHERE EXISTS (SELECT FROM conn_log l WHERE l.pid = a.pid AND l.backend_start = a.backend_start)};

# The worker's own connections (its resolver looks at modern every 300 ms).
ok(poll_until($modern, 'postgres', "SELECT ($PGDW_CONNS) > 0", 't', 30),
	'the worker is connected to modern');
my $baseline = $modern->safe_psql('postgres', $PGDW_CONNS);
note "modern connections of the worker: "
  . $modern->safe_psql('postgres',
	q{SELECT string_agg(pid || ' ' || state, ', ') FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'});

# ---------------------------------------------------------------- 1
my $script_dir = PostgreSQL::Test::Utils::tempdir('pgbench');
my $script = "$script_dir/churn.sql";
open my $fh, '>', $script or die "cannot write $script: $!";
print $fh "INSERT INTO churn (note) VALUES ('session ' || :client_id);\n";
close $fh;
my ($bench_out, $bench_err) = ('', '');
my $bench_ok = IPC::Run::run(
	[
		$legacy->installed_command('pgbench'), '--no-vacuum', '-C',
		'-h', $legacy->host, '-p', $legacy->port,
		'-c', 4, '-j', 2, '-t', 50, '-f', $script, 'postgres'
	],
	'<', '/dev/null', '>', \$bench_out, '2>', \$bench_err, IPC::Run::timeout(120));
ok($bench_ok, '200 short sessions, one sync INSERT each') or diag "$bench_out\n$bench_err";
is($modern->safe_psql('postgres', 'SELECT count(*) FROM churn'), '200',
	'modern has the 200 rows');
sides_equal($legacy, $modern, 'churn', 'id', 'both sides hold the same rows');
is( $modern->safe_psql(
		'postgres', q{SELECT count(DISTINCT (pid, backend_start)) FROM conn_log WHERE tbl = 'churn'}),
	'200', 'each session had its own modern connection');
ok(poll_until($modern, 'postgres', "SELECT ($SYNC_CONNS) = 0", 't', 15),
	'no connection of the 200 sessions is left on modern')
  or diag $modern->safe_psql('postgres',
	q{SELECT string_agg(pid || ' ' || state || ' ' || backend_start, E'\n') FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'});
ok(poll_until($modern, 'postgres', "SELECT ($PGDW_CONNS) = $baseline", 't', 15),
	"modern has the worker's $baseline pg_dualwrite connection(s) again, no more");

# ---------------------------------------------------------------- 2
# A session that stays: statements run one by one, each its own transaction.
my $s = $legacy->background_psql('postgres', on_error_stop => 0);
# Runs $sql in the session; returns (stdout, stderr of this query).
sub sq
{
	my ($session, $sql) = @_;
	$session->{stderr} = '';
	my $out = $session->query($sql);
	return ($out, $session->{stderr});
}
# The modern backend (pid|backend_start) that wrote row $id of t.
sub modern_conn_of
{
	my ($id) = @_;
	return $modern->safe_psql('postgres',
		"SELECT pid || '|' || backend_start FROM conn_log WHERE tbl = 't' AND id = $id");
}
my $errs = '';
for my $i (1 .. 50)
{
	my (undef, $err) = sq($s, "INSERT INTO t VALUES ($i, 'one session')");
	$errs .= $err;
}
is($errs, '', '50 sync transactions in one session, without error');
is($modern->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id <= 50'), '50',
	'modern has the 50 rows');
is( $modern->safe_psql(
		'postgres', q{SELECT count(DISTINCT (pid, backend_start)) FROM conn_log WHERE tbl = 't' AND id <= 50}),
	'1', 'one modern connection carried the 50 transactions');
is($modern->safe_psql('postgres', $SYNC_CONNS), '1',
	"the session's connection is still open (and the leak check sees it)");

# ---------------------------------------------------------------- 3
my $conn = modern_conn_of(50);
my $modern_user = $modern->safe_psql('postgres', 'SELECT current_user');
my @changes = (
	[ 'ALTER SERVER from another session', 'other',
		q{ALTER SERVER modern OPTIONS (SET connect_timeout '11')} ],
	[ 'ALTER USER MAPPING from another session', 'other',
		qq{ALTER USER MAPPING FOR PUBLIC SERVER modern OPTIONS (SET user '$modern_user')} ],
	[ 'ALTER SERVER in the session', 'self',
		q{ALTER SERVER modern OPTIONS (SET connect_timeout '12')} ]);
my $id = 100;
for my $change (@changes)
{
	my ($what, $where, $ddl) = @$change;
	if ($where eq 'other')
	{
		$legacy->safe_psql('postgres', $ddl);
	}
	else
	{
		my (undef, $err) = sq($s, $ddl);
		is($err, '', "$what: done");
	}
	$id++;
	my (undef, $err) = sq($s, "INSERT INTO t VALUES ($id, 'after: $what')");
	is($err, '', "after $what: the next sync transaction works");
	is($modern->safe_psql('postgres', "SELECT v FROM t WHERE id = $id"),
		"after: $what", "after $what: the row is on modern");
	my $new = modern_conn_of($id);
	ok($new ne '' && $new ne $conn, "after $what: it ran on a new modern connection")
	  or diag "before: $conn, after: $new";
	my ($old_pid) = split /\|/, $conn;
	ok(poll_until($modern, 'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $old_pid",
			't', 10),
		"after $what: the old modern connection is closed");
	$id++;
	(undef, $err) = sq($s, "INSERT INTO t VALUES ($id, 'again')");
	is($err, '', "after $what: the transaction after that works too");
	is(modern_conn_of($id), $new, "after $what: ... on the same new connection");
	$conn = $new;
}

# ---------------------------------------------------------------- 4
$modern->restart;
my ($out, $err) = sq($s, "INSERT INTO t VALUES (201, 'after the modern restart')");
is($err, '', 'after a modern restart: the next sync transaction works, no error, no warning');
is($modern->safe_psql('postgres', 'SELECT v FROM t WHERE id = 201'),
	'after the modern restart', 'after a modern restart: the row is on modern');
my $after = modern_conn_of(201);
ok($after ne '' && $after ne $conn, 'after a modern restart: on a new connection')
  or diag "before: $conn, after: $after";
($out, $err) = sq($s, "INSERT INTO t VALUES (202, 'again')");
is($err, '', 'after a modern restart: the transaction after that works too');
is(modern_conn_of(202), $after, 'after a modern restart: ... on the same new connection');

($out, $err) = sq($s, 'SHOW dualwrite.sync_failure');
is($out, 'error', 'the session ran with sync_failure = error');
$s->quit;
ok(poll_until($modern, 'postgres', "SELECT ($SYNC_CONNS) = 0", 't', 15),
	"the session's modern connection is closed when it ends");
sides_equal($legacy, $modern, 't', 'id', 'both sides hold the same rows of t');

# ---------------------------------------------------------------- 5
my $modern0 = modern_node('modern0');
is($modern0->safe_psql('postgres', 'SHOW max_prepared_transactions'), '0',
	'modern0 does not allow prepared transactions');
$modern0->safe_psql('postgres', 'CREATE TABLE t0 (id int PRIMARY KEY, v text)');
$legacy->safe_psql(
	'postgres', qq{
CREATE TABLE t0 (id int PRIMARY KEY, v text);
CREATE SERVER modern0 FOREIGN DATA WRAPPER dualwrite
    OPTIONS (host '@{[ $modern0->host ]}', port '@{[ $modern0->port ]}', dbname 'postgres');
CREATE USER MAPPING FOR PUBLIC SERVER modern0 OPTIONS (user '$modern_user');
});
my $NOTHING_OF_T0 = q{SELECT (SELECT count(*) FROM dualwrite.tables WHERE tbl = 't0'::regclass)
    || '|' || (SELECT count(*) FROM pg_trigger WHERE tgrelid = 't0'::regclass)};
my $rc;
($rc, $out, $err) = $legacy->psql('postgres',
	q{SELECT dualwrite.enable('t0', target_server => 'modern0', mode => 'sync')});
isnt($rc, 0, 'enable(mode => sync) against modern0 is refused');
like($err, qr/does not allow prepared transactions/, '... saying why');
like($err, qr/HINT:\s+Set max_prepared_transactions on the modern server/, '... with the hint');
is($legacy->safe_psql('postgres', $NOTHING_OF_T0), '0|0', '... and t0 is neither flagged nor captured');
$legacy->safe_psql('postgres', q{INSERT INTO t0 VALUES (1, 'not captured')});
is( $legacy->safe_psql(
		'postgres', q{SELECT count(*) FROM (SELECT relid FROM dualwrite._outbox_0 UNION ALL
    SELECT relid FROM dualwrite._outbox_1 UNION ALL SELECT relid FROM dualwrite._outbox_2) o
    WHERE relid = 't0'::regclass}),
	'0', 'a write of t0 leaves nothing in the outbox');

$legacy->safe_psql('postgres', q{SELECT dualwrite.enable('t0', target_server => 'modern0', mode => 'async')});
is($legacy->safe_psql('postgres', q{SELECT mode FROM dualwrite.tables WHERE tbl = 't0'::regclass}),
	'async', 'async mode against modern0 is accepted');
($rc, $out, $err) = $legacy->psql('postgres', q{SELECT dualwrite.set_mode('t0', 'sync')});
isnt($rc, 0, 'set_mode(t0, sync) against modern0 is refused');
like($err, qr/does not allow prepared transactions/, '... saying why');
is($legacy->safe_psql('postgres', q{SELECT mode FROM dualwrite.tables WHERE tbl = 't0'::regclass}),
	'async', '... and t0 stays async');
$legacy->safe_psql('postgres', q{INSERT INTO t0 VALUES (2, 'async')});
ok(wait_delivered($legacy, 'postgres', 60), 'the async change of t0 is delivered');
is($modern0->safe_psql('postgres', 'SELECT string_agg(id::text, \',\') FROM t0'), '2',
	'modern0 has the async row (and not the one written before enable)');

# ---------------------------------------------------------------- end
is($modern->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'nothing left prepared on modern');
no_crash($legacy, 'legacy: no crash');
no_crash($modern, 'modern: no crash');
done_testing();

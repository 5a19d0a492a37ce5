
# Copyright (c) pg_dualwrite authors
#
# DualWriteTest.pm - what the TAP tests in test/t/ share: the two kinds of
# node, connecting them, polling, waiting for delivery, comparing both sides
# without going through pg_dualwrite, and looking for crashes in a log.
#
#   use FindBin;
#   use lib "$FindBin::RealBin/../perl";    # (run-tests.sh also passes -I test/perl)
#   use DualWriteTest;
#
#   my $modern = modern_node('modern');
#   my $legacy = legacy_node('legacy', conf => "dualwrite.batch_size = 100\n");
#   $modern->safe_psql('postgres', $ddl);
#   $legacy->safe_psql('postgres', $ddl);
#   connect_nodes($legacy, $modern);            # extension, server "modern", mapping
#   $legacy->safe_psql('postgres', q{SELECT dualwrite.enable('t', target_server => 'modern')});
#   ensure_worker($legacy, 'postgres');
#   ... changes on $legacy ...
#   ok(wait_delivered($legacy, 'postgres', 60), 'delivered');
#   sides_equal($legacy, $modern, 't', 'id', 'same rows on both sides');
#   no_crash($legacy, 'legacy: no backend crashed');
#
# Every node is initdb'd with -E UTF8 --locale=C, whatever the caller's
# environment (a shell without LANG would give SQL_ASCII clusters).
#
# Functions never die on a failed query where waiting is the point (errors
# count as "not yet"); assertions (ok/is) are made only by the functions that
# take a test name, and those also return the outcome.

package DualWriteTest;

use strict;
use warnings;
use Carp;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  modern_node legacy_node connect_nodes
  poll_until set_poll_hook
  ensure_worker worker_running worker_pid kill_worker
  wait_delivered show_state
  table_text sides_equal
  log_offset no_crash
  pgbench_script_opts
  $WORKER_RUNNING
);

# initdb options of every node (-E UTF8 --locale=C, as test/lib/cluster.sh).
our @INITDB_OPTS = ('--encoding=UTF8', '--locale=C');

# postgresql.conf of a legacy node before the caller's `conf`: short waits
# keep the tests fast (the defaults are tuned for production).  Later lines
# win, so `conf` can override any of them.
our $LEGACY_CONF = q{
shared_preload_libraries = 'pg_dualwrite'
dualwrite.naptime = 50
dualwrite.retry_backoff_min = 50
dualwrite.retry_backoff_max = 1000
};

# The dualwrite.workers states of a worker that serves its database.
our $WORKER_RUNNING = q{('idle', 'running', 'backing off', 'target unreachable')};

# Settings under which table_text() prints values, independent of the node's
# defaults.
our $TEXT_SETTINGS = q{SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = postgres;
SET extra_float_digits = 3; SET bytea_output = hex;};

our $POLL_INTERVAL_US = 50_000;
my $poll_hook;

sub _check_opts
{
	my ($func, $opts, @known) = @_;
	my %known = map { $_ => 1 } @known;
	my @bad = grep { !$known{$_} } sort keys %$opts;
	croak "$func: unknown option(s) @bad (known: @known)" if @bad;
}

sub _ident
{
	my ($name) = @_;
	$name =~ s/"/""/g;
	return qq{"$name"};
}

sub _literal
{
	my ($text) = @_;
	$text =~ s/'/''/g;
	return qq{'$text'};
}

sub _node
{
	my ($func, $name, $conf, %opts) = @_;
	_check_opts($func, \%opts, qw(conf start initdb));
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => [ @INITDB_OPTS, @{ $opts{initdb} // [] } ]);
	$conf .= "\n" . $opts{conf} if defined $opts{conf};
	$node->append_conf('postgresql.conf', $conf) if $conf ne '';
	$node->start if $opts{start} // 1;
	return $node;
}

=pod

=item modern_node($name, %opts)

A plain PostgreSQL::Test::Cluster, initdb'd UTF8/C and started.  Options:
conf => text appended to postgresql.conf; start => 0 to leave it stopped;
initdb => [extra initdb options].

=cut

sub modern_node
{
	my ($name, %opts) = @_;
	return _node('modern_node', $name, '', %opts);
}

=pod

=item legacy_node($name, %opts)

A cluster that preloads pg_dualwrite, with the fast test settings of
$LEGACY_CONF (naptime 50 ms, retry backoff 50 .. 1000 ms), started.
Options as modern_node(); conf comes after the defaults and so overrides them.

=cut

sub legacy_node
{
	my ($name, %opts) = @_;
	return _node('legacy_node', $name, $LEGACY_CONF, %opts);
}

=pod

=item connect_nodes($legacy, $modern, %opts)

In database db (default 'postgres') on $legacy: CREATE EXTENSION IF NOT
EXISTS pg_dualwrite, CREATE SERVER server (default 'modern') FOREIGN DATA
WRAPPER dualwrite with the host and port of $modern and dbname modern_db
(default: db), CREATE USER MAPPING FOR PUBLIC (as the tests always did;
mapping_for => 'CURRENT_USER' or a role name for another one) with user
=> the modern node's current_user unless given, and ALTER DATABASE db SET
dualwrite.target_server = server.  Other options: create_db => 1 creates db
on $legacy and modern_db on $modern when missing; server_options => { name
=> value } adds server options (e.g. connect_timeout).  Returns the server
name.

=cut

sub connect_nodes
{
	my ($legacy, $modern, %opts) = @_;
	_check_opts('connect_nodes', \%opts,
		qw(db server modern_db user mapping_for create_db server_options));
	my $db     = $opts{db}        // 'postgres';
	my $server = $opts{server}    // 'modern';
	my $mdb    = $opts{modern_db} // $db;
	my $for    = $opts{mapping_for} // 'PUBLIC';
	$for = _ident($for) unless $for =~ /^(?:PUBLIC|CURRENT_USER|USER|SESSION_USER)$/i;

	if ($opts{create_db})
	{
		for my $side ([ $legacy, $db ], [ $modern, $mdb ])
		{
			my ($node, $name) = @$side;
			next
			  if $node->safe_psql('postgres',
				'SELECT count(*) FROM pg_database WHERE datname = ' . _literal($name)) eq '1';
			$node->safe_psql('postgres', 'CREATE DATABASE ' . _ident($name));
		}
	}

	my $user = $opts{user} // $modern->safe_psql('postgres', 'SELECT current_user');
	my %options = (
		host   => $modern->host,
		port   => $modern->port,
		dbname => $mdb,
		%{ $opts{server_options} // {} });
	my $options = join ', ', map { "$_ " . _literal($options{$_}) } sort keys %options;
	my $s = _ident($server);
	$legacy->safe_psql(
		$db, qq{
CREATE EXTENSION IF NOT EXISTS pg_dualwrite;
CREATE SERVER $s FOREIGN DATA WRAPPER dualwrite OPTIONS ($options);
CREATE USER MAPPING FOR $for SERVER $s OPTIONS (user @{[ _literal($user) ]});
ALTER DATABASE @{[ _ident($db) ]} SET dualwrite.target_server = @{[ _literal($server) ]};
});
	return $server;
}

=pod

=item poll_until($node, $db, $sql, $expected, $timeout_s)

Runs $sql in $db every 50 ms until it prints $expected (default 't');
true then, false after $timeout_s seconds of wall-clock time (default
$PostgreSQL::Test::Utils::timeout_default).  A failing query (a node down)
counts as "not yet".  Unlike Cluster::poll_query_until, the limit is in
seconds, not in attempts.

=item set_poll_hook($code)

$code is called before every attempt of poll_until (e.g. to pump the
output of a background pgbench); undef removes it.

=cut

sub set_poll_hook
{
	($poll_hook) = @_;
}

sub poll_until
{
	my ($node, $db, $sql, $expected, $timeout_s) = @_;
	$expected  //= 't';
	$timeout_s //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $timeout_s;
	my ($rc, $out, $err);
	while (1)
	{
		$poll_hook->() if $poll_hook;
		($rc, $out, $err) = $node->psql($db, $sql);
		return 1 if $rc == 0 && $out eq $expected;
		last if time() >= $deadline;
		usleep($POLL_INTERVAL_US);
	}
	note sprintf('poll_until on %s: no %s after %s s from: %s (last: %s)',
		$node->name, $expected, $timeout_s, $sql, $rc == 0 ? "'$out'" : "error: $err");
	return 0;
}

=pod

=item worker_running($node, $db, $timeout_s)

True once a worker serves $db (dualwrite.workers, state in
$WORKER_RUNNING), within $timeout_s (default 30) seconds.  Does not wake
the launcher: use it to test that the worker starts by itself.

=item ensure_worker($node, $db, $timeout_s)

Waits until a worker serves $db, waking the launcher on every attempt
(harmless; it also gets past a launcher that missed a CREATE EXTENSION).
BAIL_OUT when none runs after $timeout_s (default 60) seconds; returns 1.

=cut

sub _worker_sql
{
	my ($db, $wake) = @_;
	my $sql = 'SELECT count(*) = 1 FROM ' . ($wake ? 'w, ' : '')
	  . 'dualwrite.workers WHERE datname = ' . _literal($db) . " AND state IN $WORKER_RUNNING";
	return $wake ? "WITH w AS (SELECT dualwrite._wake()) $sql" : $sql;
}

sub worker_running
{
	my ($node, $db, $timeout_s) = @_;
	$db //= 'postgres';
	return poll_until($node, $db, _worker_sql($db, 0), 't', $timeout_s // 30);
}

sub ensure_worker
{
	my ($node, $db, $timeout_s) = @_;
	$db //= 'postgres';
	poll_until($node, $db, _worker_sql($db, 1), 't', $timeout_s // 60)
	  or BAIL_OUT($node->name . ": the pg_dualwrite worker for database $db does not start");
	return 1;
}

=pod

=item worker_pid($node, $db)

The pid of the worker of $db (dualwrite.workers), '' when none.

=item kill_worker($node, $db, $test_name)

SIGKILL to the worker of $db; waits until the postmaster noticed it
("terminated by signal 9") and restarted every backend ("all server
processes terminated; reinitializing").  With $test_name, like() asserts
that a worker pid was found.  Returns the pid (pass it to no_crash's
allow_pids).  The node needs restart_after_crash = on.

=cut

sub worker_pid
{
	my ($node, $db) = @_;
	$db //= 'postgres';
	return $node->safe_psql($db,
		'SELECT pid FROM dualwrite.workers WHERE datname = ' . _literal($db));
}

sub kill_worker
{
	my ($node, $db, $test_name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $offset = log_offset($node);
	my $pid    = worker_pid($node, $db);
	like($pid, qr/^\d+$/, $test_name) if defined $test_name;
	croak $node->name . ": no worker pid for database $db" unless $pid =~ /^\d+$/;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/\(PID $pid\) was terminated by signal 9/, $offset);
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	return $pid;
}

=pod

=item wait_delivered($node, $db, $timeout_s, $test_name)

SELECT dualwrite.wait_for_delivery('$timeout_s s') (default 60) in $db; true
when it returns t.  On false or an error, diag()s dualwrite.status and
dualwrite.workers.  With $test_name, also ok() of the outcome.

=item show_state($node, $db)

diag() of dualwrite.status and dualwrite.workers of $db.

=cut

sub show_state
{
	my ($node, $db) = @_;
	$db //= 'postgres';
	for my $view ('dualwrite.status', 'dualwrite.workers')
	{
		my ($rc, $out, $err) = $node->psql($db, "SELECT * FROM $view");
		diag $node->name . " $view:\n" . ($rc == 0 ? $out : $err);
	}
}

sub wait_delivered
{
	my ($node, $db, $timeout_s, $test_name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$db        //= 'postgres';
	$timeout_s //= 60;
	my ($rc, $out, $err) =
	  $node->psql($db, "SELECT dualwrite.wait_for_delivery('$timeout_s s')");
	my $ok = $rc == 0 && $out eq 't';
	ok($ok, $test_name) if defined $test_name;
	if (!$ok)
	{
		diag $node->name . ": wait_for_delivery('$timeout_s s') in $db: "
		  . ($rc == 0 ? "returned '$out'" : "failed: $err");
		show_state($node, $db);
	}
	return $ok;
}

=pod

=item table_text($node, $db, $table, $order_by)

Every row of $table as COPY (SELECT * FROM $table ORDER BY $order_by) TO
STDOUT text, under fixed settings (TimeZone UTC, DateStyle ISO, YMD,
IntervalStyle postgres, extra_float_digits 3, bytea_output hex).  Nothing
of pg_dualwrite is involved.  $table and $order_by are SQL text.

=item sides_equal($legacy, $modern, $table, $order_by, $test_name, %opts)

ok() that table_text() is the same on both sides; on a difference, diag()s
the row counts and the first lines found on one side only.  Options:
legacy_db, modern_db (default 'postgres'), modern_table (default $table),
max_diag (lines shown per side, default 20).  Returns the outcome.

=cut

sub table_text
{
	my ($node, $db, $table, $order_by) = @_;
	croak 'table_text: $order_by is required' unless defined $order_by && $order_by ne '';
	return $node->safe_psql($db,
		"$TEXT_SETTINGS\nCOPY (SELECT * FROM $table ORDER BY $order_by) TO STDOUT");
}

sub sides_equal
{
	my ($legacy, $modern, $table, $order_by, $test_name, %opts) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	_check_opts('sides_equal', \%opts, qw(legacy_db modern_db modern_table max_diag));
	my $l = table_text($legacy, $opts{legacy_db} // 'postgres', $table, $order_by);
	my $m = table_text($modern, $opts{modern_db} // 'postgres', $opts{modern_table} // $table,
		$order_by);
	my $ok = ok($l eq $m, $test_name);
	if (!$ok)
	{
		my $max  = $opts{max_diag} // 20;
		my @l    = split /\n/, $l;
		my @m    = split /\n/, $m;
		my %in_l = map { $_ => 1 } @l;
		my %in_m = map { $_ => 1 } @m;
		my @only_l = grep { !$in_m{$_} } @l;
		my @only_m = grep { !$in_l{$_} } @m;
		diag sprintf('%s: %d row(s) on %s, %d on %s; %d only on %s, %d only on %s',
			$table, scalar(@l), $legacy->name, scalar(@m), $modern->name,
			scalar(@only_l), $legacy->name, scalar(@only_m), $modern->name);
		diag 'only on ' . $legacy->name . ": $_" for grep { defined } @only_l[ 0 .. $max - 1 ];
		diag 'only on ' . $modern->name . ": $_" for grep { defined } @only_m[ 0 .. $max - 1 ];
		diag 'same rows, in another order' if !@only_l && !@only_m;
	}
	return $ok;
}

=pod

=item log_offset($node)

The current size of the node's log: pass it as offset to no_crash or
wait_for_log to look only at what comes after.

=item no_crash($node, $test_name, %opts)

ok() that the node's log has no "terminated by signal" line and no "server
process ... was terminated" line (a backend or worker crash, the postmaster
restarting everything); the lines found are diag()ed.  Options: offset =>
look only after this log position; allow_pids => [pids] ignores the lines
of these processes (workers killed on purpose, see kill_worker).  Returns the
outcome.

=cut

sub log_offset
{
	my ($node) = @_;
	return -s $node->logfile // 0;
}

sub no_crash
{
	my ($node, $test_name, %opts) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	_check_opts('no_crash', \%opts, qw(offset allow_pids));
	my $log = slurp_file($node->logfile, $opts{offset} // 0);
	my @bad = grep { /terminated by signal|server process .* was terminated/ } split /\n/, $log;
	for my $pid (@{ $opts{allow_pids} // [] })
	{
		@bad = grep { !/\(PID $pid\) was terminated by signal/ } @bad;
	}
	my $ok = ok(!@bad, $test_name);
	diag $node->name . " log: $_" for @bad[ 0 .. ($#bad < 19 ? $#bad : 19) ];
	return $ok;
}

=pod

=item pgbench_script_opts(%scripts)

%scripts maps a name to [weight, body]: each body is written to a file of
its own in a new temp dir, and the pgbench options that run them with their
weights (-f file@weight ..., in name order) are returned.

=cut

sub pgbench_script_opts
{
	my (%scripts) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir('pgbench');
	my @opts;
	for my $name (sort keys %scripts)
	{
		my ($weight, $body) = @{ $scripts{$name} };
		my $file = "$dir/$name.sql";
		open my $fh, '>', $file or die "cannot write $file: $!";
		print $fh $body;
		close $fh;
		push @opts, '-f', "$file\@$weight";
	}
	return @opts;
}

1;

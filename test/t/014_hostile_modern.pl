# 014_hostile_modern.pl
#    A fake or broken modern server cannot crash the legacy cluster, hold a
#    backend or the worker, or drive either out of memory (SPEC guarantee
#    11; issue 10, findings 4-6).  A listener of this test's own speaks just
#    enough of the v3 protocol to get past the startup (it answers 'N' to an
#    SSLRequest, AuthenticationOk, ParameterStatus, BackendKeyData,
#    ReadyForQuery) and then answers every simple Query but SET/BEGIN/COMMIT
#    with the behaviour under test, chosen by the dbname of the connection:
#
#      shape_C_R   C text columns, R rows of 'x'  (wrong result shapes)
#      error       an ErrorResponse
#      notices     a NOTICE every 100 ms, never a result
#      huge        a result of 200 MB
#      silent      nothing at all after the startup
#      slowstart   nothing at all, not even the startup (connect_timeout '600')
#
#    For each: enable(), dualwrite.check() or the worker pointed at it with
#    ALTER SERVER fails with a clear error within bounded time; the legacy
#    cluster never crashed; a healthy table on a real modern node keeps
#    flowing, and the victim table catches up once its server is real again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use DualWriteTest;

# ---------------------------------------------------------------- the fake server

sub pg_msg
{
	my ($type, $body) = @_;
	return $type . pack('N', length($body) + 4) . $body;
}

sub read_exactly
{
	my ($sock, $n) = @_;
	my $buf = '';
	while (length($buf) < $n)
	{
		my $r = sysread($sock, $buf, $n - length($buf), length($buf));
		return undef unless $r;
	}
	return $buf;
}

sub write_all
{
	my ($sock, $data) = @_;
	while (length $data)
	{
		my $w = syswrite($sock, $data);
		return 0 unless defined $w && $w > 0;
		substr($data, 0, $w) = '';
	}
	return 1;
}

sub ready { return pg_msg('Z', 'I'); }

sub row_description
{
	my ($ncols) = @_;
	my $body = pack('n', $ncols);
	# name, table oid, attnum, type oid 25 (text), typlen -1, typmod -1, text format
	$body .= "c$_\0" . pack('NnNnNn', 0, 0, 25, 0xFFFF, 0xFFFFFFFF, 0) for 1 .. $ncols;
	return pg_msg('T', $body);
}

sub data_row
{
	my @values = @_;
	return pg_msg('D', pack('n', scalar @values) . join('', map { pack('N', length $_) . $_ } @values));
}

sub notice_or_error
{
	my ($type, $severity, $code, $message) = @_;
	return pg_msg($type, "S$severity\0V$severity\0C$code\0M$message\0\0");
}

# One connection: the startup, then the behaviour named by its dbname.
sub serve
{
	my ($c) = @_;
	my %params;
	while (1)
	{
		my $head = read_exactly($c, 8) // return;
		my ($len, $code) = unpack('NN', $head);
		my $rest = $len > 8 ? (read_exactly($c, $len - 8) // return) : '';
		if ($code == 80877103 || $code == 80877104)    # SSLRequest, GSSENCRequest
		{
			write_all($c, 'N') or return;
			next;
		}
		%params = split /\0/, $rest;
		last;
	}
	my $mode = $params{database} // '';
	if ($mode eq 'slowstart')
	{
		sleep 3600;
		return;
	}
	my $startup = pg_msg('R', pack('N', 0));
	$startup .= pg_msg('S', "$_->[0]\0$_->[1]\0")
	  for ([ 'server_version', '15.0' ], [ 'client_encoding', 'UTF8' ],
		[ 'standard_conforming_strings', 'on' ], [ 'integer_datetimes', 'on' ],
		[ 'DateStyle', 'ISO, MDY' ]);
	$startup .= pg_msg('K', pack('NN', $$, 12345)) . ready();
	write_all($c, $startup) or return;
	while (1)
	{
		my $type = read_exactly($c, 1) // return;
		my $len = unpack('N', read_exactly($c, 4) // return);
		my $body = $len > 4 ? (read_exactly($c, $len - 4) // return) : '';
		return if $type eq 'X';
		next unless $type eq 'Q';
		next if $mode eq 'silent';
		(my $sql = $body) =~ s/\0$//;
		if ($sql =~ /^\s*(SET|BEGIN|COMMIT|ROLLBACK)\b/i)
		{
			write_all($c, pg_msg('C', uc($1) . "\0") . ready()) or return;
		}
		elsif ($mode =~ /^shape_/ && $sql eq 'SELECT pg_catalog.quote_ident(current_user::text)')
		{
			# the name of the modern role, so dualwrite.check() gets past "reachable"
			write_all($c, row_description(1) . data_row('x') . pg_msg('C', "SELECT 1\0") . ready()) or return;
		}
		elsif ($mode =~ /^shape_(\d+)_(\d+)$/)
		{
			my ($ncols, $nrows) = ($1, $2);
			my $out = row_description($ncols);
			$out .= data_row(('x') x $ncols) for 1 .. $nrows;
			write_all($c, $out . pg_msg('C', "SELECT $nrows\0") . ready()) or return;
		}
		elsif ($mode eq 'error')
		{
			write_all($c, notice_or_error('E', 'ERROR', 'XX000', 'the fake server refuses') . ready())
			  or return;
		}
		elsif ($mode eq 'notices')
		{
			while (write_all($c, notice_or_error('N', 'NOTICE', '00000', 'still busy')))
			{
				usleep(100_000);
			}
			return;
		}
		elsif ($mode eq 'huge')
		{
			my $row = data_row('y' x (1024 * 1024));
			write_all($c, row_description(1)) or return;
			for (1 .. 200) { write_all($c, $row) or return; }
			write_all($c, pg_msg('C', "SELECT 200\0") . ready()) or return;
		}
		else
		{
			write_all($c, notice_or_error('E', 'ERROR', '3D000', "no mode \"$mode\"") . ready())
			  or return;
		}
	}
}

my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Listen    => 64,
	ReuseAddr => 1) or die "cannot listen: $!";
my $fake_port = $listener->sockport;
my $parent    = $$;
my $fake_pid  = fork();
die "fork: $!" unless defined $fake_pid;
if ($fake_pid == 0)
{
	# Close what prove reads, so a dying test does not leave it waiting;
	# a process group of its own, so the test can stop every connection.
	close STDOUT;
	close STDERR;
	POSIX::setpgid(0, 0);
	$SIG{PIPE} = 'IGNORE';
	$SIG{CHLD} = 'IGNORE';
	while (1)
	{
		my $c = $listener->accept or next;
		my $child = fork();
		if (defined $child && $child == 0)
		{
			close $listener;
			serve($c);
			POSIX::_exit(0);
		}
		close $c;
	}
}
END { kill 'KILL', -$fake_pid if $fake_pid && $$ == $parent; }
close $listener;

# ---------------------------------------------------------------- the clusters

my $modern = modern_node('modern');
# Short bounds of our own, so each hostile case ends in seconds.
my $legacy = legacy_node('legacy',
	conf => "dualwrite.remote_timeout = '3s'\ndualwrite.connect_timeout = '3s'\n");
my $me = $modern->safe_psql('postgres', 'SELECT current_user');
for my $node ($modern, $legacy)
{
	$node->safe_psql('postgres', qq{
CREATE TABLE healthy (id int PRIMARY KEY, v text);
CREATE TABLE victim (id int PRIMARY KEY, v text);
});
}
$legacy->safe_psql('postgres', 'CREATE TABLE t_enable (id int PRIMARY KEY, v text)');
connect_nodes($legacy, $modern);
my $modern_host = $modern->host;
my $modern_port = $modern->port;
$legacy->safe_psql('postgres', qq{
CREATE SERVER fake FOREIGN DATA WRAPPER dualwrite OPTIONS (host '$modern_host', port '$modern_port', dbname 'postgres');
CREATE USER MAPPING FOR PUBLIC SERVER fake OPTIONS (user '$me');
CREATE SERVER hostile FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '$fake_port', dbname 'shape_1_1');
CREATE USER MAPPING FOR PUBLIC SERVER hostile OPTIONS (user 'x');
SELECT dualwrite.enable('healthy', target_server => 'modern');
SELECT dualwrite.enable('victim', target_server => 'fake');
INSERT INTO healthy VALUES (0, 'before');
INSERT INTO victim VALUES (0, 'before');
});
ensure_worker($legacy, 'postgres');
ok(wait_delivered($legacy, 'postgres', 60), 'both tables delivered while every server is real');

# ---------------------------------------------------------------- enable() and check()

# Run $sql on the legacy node, bounded by a statement_timeout far above our
# own bounds (without them, several of these cases hang for minutes).
sub timed_psql
{
	my ($sql) = @_;
	my $t0 = time;
	my ($rc, $out, $err) = $legacy->psql('postgres', "SET statement_timeout = '40s'; $sql");
	return ($rc, $out, $err, time - $t0);
}

my @enable_cases = (
	[ 'shape_1_1', qr/server "hostile" returned an unexpected result for the lookup of target table public\.t_enable.*\n.*Expected 2 columns, got 1/,
		'one column where two are expected' ],
	[ 'shape_2_1', qr/server "hostile" returned an unexpected result for the lookup of target table public\.t_enable.*\n.*Column 1 of row 1 is not an OID/,
		'a value of the wrong format' ],
	[ 'error', qr/modern server "hostile": the fake server refuses/, 'an error' ],
	[ 'notices', qr/server "hostile" did not answer within 3000 ms/, 'endless notices' ],
	[ 'huge', qr/server "hostile" sent more than 16384 kB in answer to one command/, 'a huge result' ],
	[ 'silent', qr/server "hostile" did not answer within 3000 ms/, 'silence after the startup' ],
	[ 'slowstart', qr/could not connect to server "hostile": timeout expired/,
		'no startup, with the server asking for connect_timeout 600' ]);
for my $case (@enable_cases)
{
	my ($mode, $re, $name) = @$case;
	my $extra = $mode eq 'slowstart' ? ", ADD connect_timeout '600'" : '';
	$legacy->safe_psql('postgres', "ALTER SERVER hostile OPTIONS (SET dbname '$mode'$extra)");
	my ($rc, $out, $err, $secs) = timed_psql("SELECT dualwrite.enable('t_enable', target_server => 'hostile')");
	isnt($rc, 0, "enable() fails: $name");
	like($err, $re, "enable() names the problem: $name");
	cmp_ok($secs, '<', 15, "enable() ends in bounded time: $name");
}
$legacy->safe_psql('postgres', "ALTER SERVER hostile OPTIONS (DROP connect_timeout)");
is($legacy->safe_psql('postgres', "SELECT count(*) FROM dualwrite.tables WHERE tbl = 't_enable'::regclass"),
	'0', 'no failed enable() left a trace');
is($legacy->safe_psql('postgres', "SELECT count(*) FROM dualwrite.servers WHERE server = 'hostile'"),
	'0', 'no failed enable() claimed the server');

# dualwrite.check() reads one-row results: no row at all must be an error row.
$legacy->safe_psql('postgres', "ALTER SERVER hostile OPTIONS (SET dbname 'shape_3_0')");
my ($rc, $out, $err, $secs) = timed_psql(
	"SET dualwrite.target_server = 'hostile'; SELECT ok, detail FROM dualwrite.check() WHERE object = 'hostile' AND check_name = 'temporary tables'");
is($rc, 0, 'dualwrite.check() survives a result without rows');
like($out, qr/^f\|server "hostile" returned an unexpected result for the TEMPORARY privilege check\. Expected 1 row, got 0\.$/,
	'dualwrite.check() reports the missing row');
$legacy->safe_psql('postgres', "ALTER SERVER hostile OPTIONS (SET dbname 'shape_2_1')");
($rc, $out, $err, $secs) = timed_psql(
	"SET dualwrite.target_server = 'hostile'; SELECT ok, detail FROM dualwrite.check() WHERE object = 'hostile' AND check_name = 'temporary tables'");
like($out, qr/^f\|server "hostile" returned an unexpected result for the TEMPORARY privilege check\. Expected 3 columns, got 2\.$/,
	'dualwrite.check() reports the missing column');
no_crash($legacy, 'legacy: enable() and check() against the fake server crashed nothing');

# ---------------------------------------------------------------- the worker

my $id = 0;
# (SQL regular expressions on dualwrite.status.last_error, in an order where
# each case's message differs from the one before)
my @worker_cases = (
	[ 'shape_1_1', 'server "fake" returned an unexpected result for the owner of the progress table', 'one column' ],
	[ 'notices', 'server "fake" did not answer within 3000 ms', 'endless notices' ],
	[ 'shape_6_0', 'server "fake" returned an unexpected result for the owner of the progress table', 'no progress row' ],
	[ 'silent', 'server "fake" did not answer within 3000 ms', 'silence after the startup' ],
	[ 'error', 'modern server "fake": the fake server refuses', 'an error' ],
	[ 'huge', 'server "fake" sent more than 16384 kB in answer to one command', 'a huge result' ]);
for my $case (@worker_cases)
{
	my ($mode, $re, $name) = @$case;
	my $offset = log_offset($legacy);
	$legacy->safe_psql('postgres',
		"ALTER SERVER fake OPTIONS (SET host '127.0.0.1', SET port '$fake_port', SET dbname '$mode')");
	$id++;
	$legacy->safe_psql('postgres', "INSERT INTO victim VALUES ($id, '$mode')");
	ok( poll_until(
			$legacy, 'postgres',
			"SELECT last_error ~ '$re' FROM dualwrite.status WHERE table_name = 'victim'::regclass",
			't', 60),
		"worker reports the problem in dualwrite.status: $name");
	$legacy->safe_psql('postgres', "INSERT INTO healthy VALUES ($id, '$mode')");
	ok(poll_until($modern, 'postgres', "SELECT count(*) FROM healthy WHERE id = $id", '1', 30),
		"the healthy table keeps flowing: $name");
	no_crash($legacy, "legacy: no crash with the worker on a fake server: $name", offset => $offset);
}

# The server is real again: the victim catches up, nothing was lost.
$legacy->safe_psql('postgres',
	"ALTER SERVER fake OPTIONS (SET host '$modern_host', SET port '$modern_port', SET dbname 'postgres')");
ok(wait_delivered($legacy, 'postgres', 60), 'everything delivered once the server is real again');
sides_equal($legacy, $modern, 'victim', 'id', 'victim: same rows on both sides');
sides_equal($legacy, $modern, 'healthy', 'id', 'healthy: same rows on both sides');
is($legacy->safe_psql('postgres', "SELECT last_error FROM dualwrite.status WHERE table_name = 'victim'::regclass"),
	'', 'victim: the error is cleared');

no_crash($legacy, 'legacy: no process crashed');
no_crash($modern, 'modern: no process crashed');

kill 'KILL', -$fake_pid;
waitpid($fake_pid, 0);
$legacy->stop;
$modern->stop;
done_testing();

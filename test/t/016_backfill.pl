
# Copyright (c) pg_dualwrite authors
#
# 016_backfill.pl - CALL dualwrite.backfill() copies 200,000 rows that existed
# before enable() while pgbench updates, deletes and re-inserts the same keys
# (and inserts new ones); the first run is cancelled mid-way by
# statement_timeout, the second resumes.  Afterwards a row-by-row comparison
# of both sides that does not use pg_dualwrite (sides_equal: COPY text of
# each side) shows no difference: no deleted row came back, no update was
# overwritten by an older copy, no inserted row arrived twice.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use DualWriteTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $NROWS = 200_000;
my $NKEYS = 220_000;    # the load also inserts keys the backfill never saw

my $modern = modern_node('modern');
my $legacy = legacy_node('legacy', conf => "dualwrite.batch_size = 5000\n");
my $ddl = 'CREATE TABLE t (id int PRIMARY KEY, v bigint NOT NULL, note text, pad text)';
$modern->safe_psql('postgres', $ddl);
$legacy->safe_psql('postgres', $ddl);
$legacy->safe_psql('postgres',
	"INSERT INTO t SELECT g, g, 'original', repeat('x', 50) FROM generate_series(1, $NROWS) g; ANALYZE t");
connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', q{SELECT dualwrite.enable('t')});
ensure_worker($legacy, 'postgres');
my $offset = log_offset($legacy);

# The load: single-statement transactions on random keys, and a delete and
# re-insert of one key in one transaction; no duplicate key, no deadlock.
my $script_dir = PostgreSQL::Test::Utils::tempdir('pgbench');
my %scripts = (
	'update.sql'  => "\\set k random(1, :nkeys)\nUPDATE t SET v = v + 1, note = 'updated' WHERE id = :k;\n",
	'delete.sql'  => "\\set k random(1, :nkeys)\nDELETE FROM t WHERE id = :k;\n",
	'upsert.sql'  => "\\set k random(1, :nkeys)\n"
	  . "INSERT INTO t VALUES (:k, -:k, 'inserted', 'y') ON CONFLICT (id) DO UPDATE SET v = t.v + 1000, note = 'reinserted';\n",
	'redo.sql'    => "\\set k random(1, :nkeys)\nBEGIN;\nDELETE FROM t WHERE id = :k;\n"
	  . "INSERT INTO t VALUES (:k, :k * 10, 'deleted and inserted', 'z');\nCOMMIT;\n",
);
my @script_opts;
for my $name (sort keys %scripts)
{
	my $file = "$script_dir/$name";
	open my $fh, '>', $file or die "$file: $!";
	print $fh $scripts{$name};
	close $fh;
	push @script_opts, '-f', "$file\@" . ($name eq 'update.sql' ? 4 : 2);
}
my ($load_out, $load_err) = ('', '');
my $load = IPC::Run::start(
	[
		$legacy->installed_command('pgbench'), '--no-vacuum',
		'-h', $legacy->host, '-p', $legacy->port,
		'-c', 4, '-j', 2, '-T', 600, '-R', 1500,
		'-D', "nkeys=$NKEYS", @script_opts, 'postgres'
	],
	'<', '/dev/null', '>', \$load_out, '2>', \$load_err);
ok(poll_until($legacy, 'postgres', q{SELECT count(*) > 100 FROM t WHERE note <> 'original'}, 't', 30),
	'the load commits');

# A first run, cancelled by statement_timeout after about half a second.
my ($rc, $out, $err) = $legacy->psql('postgres',
	q{SET statement_timeout = '500ms'; CALL dualwrite.backfill('t', batch_size => 500)});
my $after_cancel = $legacy->safe_psql('postgres',
	q{SELECT state || ' ' || rows_done FROM dualwrite.backfill_progress WHERE table_name = 't'::regclass});
note "after the first run: $after_cancel ($err)";
SKIP:
{
	skip 'the first run finished within 500 ms', 2 if $after_cancel =~ /^finished/;
	like($err, qr/canceling statement due to statement timeout/, 'the first run was cancelled');
	like($after_cancel, qr/^interrupted [1-9]/, 'some chunks committed before the cancel');
}
eval { $load->pump_nb };

# The second run resumes and finishes while the load goes on.
($rc, $out, $err) = $legacy->psql('postgres', q{CALL dualwrite.backfill('t', batch_size => 500)});
is($rc, 0, 'the second run finishes');
like($err, qr/resuming the backfill of table "t" after [1-9]/, 'the second run resumed')
  unless $after_cancel =~ /^finished/;
like($err, qr/backfill of table "t" finished/, 'it says it finished');
is( $legacy->safe_psql('postgres',
		q{SELECT backfill_state || ' ' || (backfill_rows >= 190000) FROM dualwrite.status WHERE table_name = 't'::regclass}),
	'finished true',
	'dualwrite.status shows the finished backfill');

# Let the load run a little longer over the copied rows, then stop it.
eval { $load->pump_nb };
ok($load->pumpable, 'the load was still running when the backfill ended');
sleep 2;
eval { $load->pump_nb };
$load->kill_kill(grace => 5);
poll_until($legacy, 'postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'pgbench'}, 't', 30)
  or diag 'pgbench sessions are still there';
unlike($load_err, qr/aborted in command/, 'no pgbench client failed');
note 'rows changed by the load: '
  . $legacy->safe_psql('postgres', q{SELECT note, count(*) FROM t GROUP BY 1 ORDER BY 1});

ok(wait_delivered($legacy, 'postgres', 180), 'everything delivered');
sides_equal($legacy, $modern, 't', 'id', 'both sides hold the same rows, row by row');
no_crash($legacy, 'legacy: no backend crashed', offset => $offset);

done_testing();

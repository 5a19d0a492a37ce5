# 010_outbox_bounded.pl
#    The outbox stays small under sustained load, even while another session
#    holds an old snapshot (idle in transaction): drained generations are
#    truncated, so space comes back without VACUUM.  Every row is compared
#    on both sides at the end.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $modern = PostgreSQL::Test::Cluster->new('modern');
$modern->init;
$modern->start;

my $legacy = PostgreSQL::Test::Cluster->new('legacy');
$legacy->init;
$legacy->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_dualwrite'
dualwrite.naptime = 50
dualwrite.outbox_rotate_interval = 1
autovacuum = off
});
$legacy->start;

my $ddl = 'CREATE TABLE events (id int PRIMARY KEY, counter bigint NOT NULL, payload text)';
$modern->safe_psql('postgres', $ddl);
$legacy->safe_psql('postgres', $ddl);
my ($mhost, $mport) = ($modern->host, $modern->port);
$legacy->safe_psql('postgres', qq{
CREATE EXTENSION pg_dualwrite;
CREATE SERVER modern FOREIGN DATA WRAPPER dualwrite OPTIONS (host '$mhost', port '$mport', dbname 'postgres');
CREATE USER MAPPING FOR PUBLIC SERVER modern OPTIONS (user '@{[ scalar getpwuid($<) ]}');
SELECT dualwrite.enable('events', target_server => 'modern');
INSERT INTO events SELECT g, 0, repeat('x', 200) FROM generate_series(1, 1000) g;
});

# A session holding an old snapshot for the whole run: VACUUM could not
# reclaim anything behind it, TRUNCATE can.
my $old = $legacy->background_psql('postgres');
$old->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$old->query_safe('SELECT count(*) FROM events');

my $outbox_size = q{SELECT pg_total_relation_size('dualwrite._outbox_0')
  + pg_total_relation_size('dualwrite._outbox_1') + pg_total_relation_size('dualwrite._outbox_2')};

# Sustained updates in rounds, delivery keeping up; sample the outbox size
# after each round.  Without reclamation it would only grow (nothing is
# ever deleted from an outbox table, and VACUUM could not help anyway).
my $rounds = 15;
my $per_round = 20000;
my $max_size = 0;
for my $r (1 .. $rounds)
{
	$legacy->safe_psql('postgres', qq{
DO \$\$
BEGIN
  FOR i IN 1..$per_round / 1000 LOOP
    UPDATE events SET counter = counter + 1 WHERE id <= 1000;
    COMMIT;
  END LOOP;
END \$\$;
});
	my $size = $legacy->safe_psql('postgres', $outbox_size);
	$max_size = $size if $size > $max_size;
	$legacy->poll_query_until('postgres', q{SELECT dualwrite.wait_for_delivery('1s')})
	  or die 'delivery did not keep up';
}
my $captured = $rounds * $per_round;

ok($legacy->poll_query_until('postgres', q{SELECT dualwrite.wait_for_delivery('1s')}),
	'all changes delivered');

# Rough size of everything captured: one outbox row is ~300 bytes here.
my $captured_bytes = $captured * 300;
cmp_ok($max_size, '<', $captured_bytes / 3,
	"outbox stayed bounded ($max_size bytes at most for about $captured_bytes bytes captured)");

# Once delivered, the generations are truncated again (while the old snapshot is still held).
ok( $legacy->poll_query_until('postgres', "SELECT ($outbox_size) < 1024 * 1024"),
	'drained outbox generations were truncated despite the old snapshot');

$old->query_safe('COMMIT');
$old->quit;

# Every row, both sides, counters included (a lost or doubled update would show).
my $q = 'COPY (SELECT * FROM events ORDER BY id) TO STDOUT';
is($modern->safe_psql('postgres', $q), $legacy->safe_psql('postgres', $q), 'both sides hold the same rows');
is($modern->safe_psql('postgres', 'SELECT min(counter) || \' \' || max(counter) FROM events'),
	$rounds * $per_round / 1000 . ' ' . $rounds * $per_round / 1000, 'every counter saw every update exactly once');

$legacy->stop;
$modern->stop;
done_testing();

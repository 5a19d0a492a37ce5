# 010_outbox_bounded.pl
#    The outbox stays small under sustained load, even while another session
#    holds an old snapshot (idle in transaction): drained generations are
#    truncated, so space comes back without VACUUM.  Every row is compared
#    on both sides at the end.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DualWriteTest;

my $modern = modern_node('modern');
# (and naptime 50 ms, retry backoff 50 .. 1000 ms)
my $legacy = legacy_node('legacy', conf => q{
dualwrite.outbox_rotate_interval = 1
autovacuum = off
});

my $ddl = 'CREATE TABLE events (id int PRIMARY KEY, counter bigint NOT NULL, payload text)';
$modern->safe_psql('postgres', $ddl);
$legacy->safe_psql('postgres', $ddl);
connect_nodes($legacy, $modern);
$legacy->safe_psql('postgres', qq{
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
	wait_delivered($legacy, 'postgres', $PostgreSQL::Test::Utils::timeout_default)
	  or die 'delivery did not keep up';
}
my $captured = $rounds * $per_round;

wait_delivered($legacy, 'postgres', $PostgreSQL::Test::Utils::timeout_default, 'all changes delivered');

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
sides_equal($legacy, $modern, 'events', 'id', 'both sides hold the same rows');
is($modern->safe_psql('postgres', 'SELECT min(counter) || \' \' || max(counter) FROM events'),
	$rounds * $per_round / 1000 . ' ' . $rounds * $per_round / 1000, 'every counter saw every update exactly once');

no_crash($legacy, 'legacy: no process crashed');
no_crash($modern, 'modern: no process crashed');

$legacy->stop;
$modern->stop;
done_testing();

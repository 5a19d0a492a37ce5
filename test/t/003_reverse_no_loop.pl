
# Copyright (c) pg_dualwrite authors
#
# 003_reverse_no_loop.pl - reverse dual write without loops (SPEC guarantee 6)
#
# Both nodes run pg_dualwrite (preloaded, extension created), each with the
# same table flagged towards the other one: legacy -> modern (forward) and
# modern -> legacy (reverse dual write, as used to roll back a cut-over).
#
#   - a change made on legacy reaches modern and is NOT captured again there:
#     modern's dualwrite.status shows captured = 0 for the table, its outbox
#     is empty, its worker applied nothing;
#   - the same the other way: a change made on modern reaches legacy and is
#     not captured again on legacy (legacy's captured count does not move);
#   - both tables end identical (COPY text of every row).
# If the worker applied changes with its capture triggers firing, the
# applied change would be captured on the other side (captured > 0, rows in
# the outbox) and sent back: the test fails.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DualWriteTest;

# Both preload pg_dualwrite (naptime 50 ms, retry backoff 50 .. 1000 ms).
my $legacy = legacy_node('legacy');
my $modern = legacy_node('modern');

my $ddl = q{
CREATE TABLE accounts (id integer PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL,
                       updated timestamptz NOT NULL DEFAULT '2000-01-01 00:00:00+00');
CREATE EXTENSION pg_dualwrite;
};
$legacy->safe_psql('postgres', $ddl);
$modern->safe_psql('postgres', $ddl);

# Each node delivers to the other one.
sub configure
{
	my ($node, $other, $server) = @_;
	connect_nodes($node, $other, server => $server);
	$node->safe_psql('postgres',
		qq{SELECT dualwrite.enable('public.accounts', target_server => '$server')});
}
configure($legacy, $modern, 'modern');
configure($modern, $legacy, 'legacy');

# ---------------------------------------------------------------- helpers

sub wait_for_delivery
{
	my ($node, $what) = @_;
	wait_delivered($node, 'postgres', 60, "$what: wait_for_delivery on " . $node->name . ' returns true');
}

sub status_of
{
	my ($node, $col) = @_;
	return $node->safe_psql('postgres',
		"SELECT $col FROM dualwrite.status WHERE table_name = 'public.accounts'::regclass");
}

sub outbox_rows
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT (SELECT count(*) FROM dualwrite._outbox_0) + (SELECT count(*) FROM dualwrite._outbox_1)
		       + (SELECT count(*) FROM dualwrite._outbox_2)});
}

sub applied_by_worker
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT coalesce(sum(applied), 0) FROM dualwrite.workers WHERE datname = 'postgres'});
}

# Both workers must run (001 asserts that CREATE EXTENSION alone starts one;
# ensure_worker wakes the launcher again if needed).
ensure_worker($legacy, 'postgres');
ensure_worker($modern, 'postgres');

# ---------------------------------------------------------------- forward
# 100 inserts + 30 updates + 10 deletes + 5 key updates (a delete and an
# insert each) = 150 captured changes on legacy.
my $legacy_changes = 150;
$legacy->safe_psql(
	'postgres', q{
INSERT INTO accounts (id, owner, balance) SELECT i, 'owner ' || i, i * 10 FROM generate_series(1, 100) i;
UPDATE accounts SET balance = balance + 1, updated = '2001-01-01 00:00:00+00' WHERE id <= 30;
DELETE FROM accounts WHERE id > 90;
UPDATE accounts SET id = id + 1000 WHERE id BETWEEN 81 AND 85;
BEGIN;
UPDATE accounts SET balance = -1;
ROLLBACK;
});
wait_for_delivery($legacy, 'forward');
sides_equal($legacy, $modern, 'accounts', 'id', 'forward: every row identical on both sides');
is(status_of($legacy, 'captured'), $legacy_changes, 'forward: legacy captured exactly its own changes');

# What modern applied was not captured there: nothing to send back.
is(status_of($modern, 'captured'), '0', 'forward: modern captured nothing (no loop)');
is(status_of($modern, 'queued'),   '0', 'forward: modern has nothing queued');
is(outbox_rows($modern),           '0', "forward: modern's outbox is empty");

# Give a (wrongly) captured change time to travel back, then look again.
$modern->safe_psql('postgres', q{SELECT dualwrite.wait_for_delivery('10s')});
is(applied_by_worker($modern), '0', "forward: modern's worker delivered nothing back to legacy");
is(status_of($legacy, 'captured'), $legacy_changes, 'forward: legacy captured nothing more');
is(outbox_rows($modern), '0', "forward: modern's outbox is still empty");

# ---------------------------------------------------------------- reverse
# 3 inserts + 2 updates + 1 delete = 6 changes made on modern.
$modern->safe_psql(
	'postgres', q{
INSERT INTO accounts (id, owner, balance) VALUES (2001, 'made on modern', 1), (2002, 'made on modern', 2), (2003, 'x', 3);
UPDATE accounts SET balance = 99, updated = '2002-02-02 00:00:00+00' WHERE id IN (1, 2001);
DELETE FROM accounts WHERE id = 2;
});
wait_for_delivery($modern, 'reverse');
sides_equal($modern, $legacy, 'accounts', 'id', 'reverse: every row identical on both sides');
is(status_of($modern, 'captured'), '6', 'reverse: modern captured exactly its own 6 changes');
is(status_of($legacy, 'captured'), $legacy_changes,
	'reverse: what legacy applied was not captured again (no loop)');
is(status_of($legacy, 'queued'), '0', 'reverse: legacy has nothing queued');

$legacy->safe_psql('postgres', q{SELECT dualwrite.wait_for_delivery('10s')});
is(status_of($modern, 'captured'), '6', 'reverse: nothing came back to modern');
sides_equal($modern, $legacy, 'accounts', 'id', 'reverse: both sides still identical');

no_crash($legacy, 'legacy: no process crashed');
no_crash($modern, 'modern: no process crashed');

$legacy->stop;
$modern->stop;
done_testing();

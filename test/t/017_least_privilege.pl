# Copyright (c) pg_dualwrite authors
#
# 017_least_privilege.pl - guarantee 8 of SPEC.md (least privilege) end to
# end, issue 10 findings 1-3 and 7-9, with two clusters and three legacy
# roles: a plain role (app), a delegated role (dw_deliver: owner of its
# tables, USAGE on schema dualwrite, EXECUTE on enable()/disable(), USAGE on
# the server, its own user mapping with a password; the server's delivering
# role) and the superuser.  The modern node asks dw_deliver for a password
# (scram-sha-256 in pg_hba.conf before the trust lines).
#
# Every attempt that must fail is checked for its error message (like) and
# for having changed nothing: dualwrite.tables, dualwrite.servers, the
# servers and user mappings on legacy and every table on the modern side
# are compared before and after (cfg_state()).
#
#  1. the delegate cannot write dualwrite.tables / dualwrite.servers (no
#     forged enabled_by or deliver_as); its enable() of its own table works
#     and the rows arrive; it cannot disable() a table it does not own, nor
#     send a table into a modern table its modern role has no rights on; a
#     server owned by a role that is neither a superuser nor the delivering
#     role is refused by enable() and by the worker (only that server
#     waits).
#  2/3. another non-superuser cannot send a table through the delegate's
#     mapping; enable() without USAGE on the server is refused; a
#     non-superuser's mapping without a password is refused before any
#     connection, and one with a password the modern side never asked for
#     (trust) is refused after it; the plain role cannot call enable().
#  7. on the modern side, a _dualwrite.applied with an ENABLE ALWAYS trigger,
#     or owned (and hooked) by another role, or in a schema _dualwrite
#     another role owns, is refused by the worker (status says so; the
#     trigger, which logs into a table, never ran; the other server keeps
#     flowing).  The ownership check runs before any statement that needs
#     the owner, so even a non-superuser delivering role gets the worker's
#     own message.
#  8. the owner renaming a column its column_map names holds only that
#     table (held_since/held_reason); the other table of the same server
#     keeps flowing; renaming it back makes it catch up and rejoin.
#  9. worker states: the plain role and the delegate can neither execute
#     dualwrite._worker_info() nor read dualwrite.workers / status; a role
#     granted them sees its own database's row only.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use DualWriteTest;

# ---------------------------------------------------------------- the nodes

my $modern = modern_node('modern', conf => "listen_addresses = '127.0.0.1'\nlog_connections = on\n");
my $legacy = legacy_node('legacy');
my $su     = $legacy->safe_psql('postgres', 'SELECT current_user');
my $msu    = $modern->safe_psql('postgres', 'SELECT current_user');
my $mport  = $modern->port;

# dw_deliver must give its password on the modern node; everyone else is
# trusted there (so a borrowed trust login is something to refuse).
{
	my $hba = $modern->data_dir . '/pg_hba.conf';
	my $old = slurp_file($hba);
	open my $fh, '>', $hba or die "$hba: $!";
	print $fh "local all dw_deliver scram-sha-256\n";
	print $fh "host all dw_deliver 127.0.0.1/32 scram-sha-256\n";
	print $fh $old;
	close $fh;
	$modern->reload;
}

$modern->safe_psql('postgres', qq{
CREATE ROLE dw_deliver LOGIN PASSWORD 'deliver_pw';
CREATE ROLE m_intruder;
GRANT TEMPORARY, CREATE ON DATABASE postgres TO dw_deliver;
GRANT SET ON PARAMETER session_replication_role TO dw_deliver;
CREATE TABLE d_t (id int PRIMARY KEY, v text);
CREATE TABLE d_map (id int PRIMARY KEY, label text);
CREATE TABLE secret (id int PRIMARY KEY, v text);
INSERT INTO secret VALUES (1, 'untouchable');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON d_t, d_map TO dw_deliver;
-- item 7: what a hook on _dualwrite.applied would do, if it ever ran
CREATE TABLE hook_log (at timestamptz DEFAULT now(), who text, op text);
GRANT INSERT ON hook_log TO PUBLIC;
CREATE FUNCTION hook() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO public.hook_log (who, op) VALUES (current_user, TG_OP);
    RETURN NULL;
END \$\$;
CREATE DATABASE su_db;
});
$modern->safe_psql('su_db', 'CREATE TABLE su_t (id int PRIMARY KEY, v text)');

$legacy->safe_psql('postgres', qq{
CREATE EXTENSION pg_dualwrite;
CREATE ROLE app;
CREATE ROLE dw_deliver;
CREATE ROLE intruder;
CREATE ROLE monitor;
CREATE ROLE srv_owner;
-- the delegate's tables
CREATE TABLE d_t (id int PRIMARY KEY, v text);
CREATE TABLE d_map (id int PRIMARY KEY, name text);
CREATE TABLE d_secret (id int PRIMARY KEY, v text);
CREATE TABLE d_x (id int PRIMARY KEY, v text);
ALTER TABLE d_t OWNER TO dw_deliver;
ALTER TABLE d_map OWNER TO dw_deliver;
ALTER TABLE d_secret OWNER TO dw_deliver;
ALTER TABLE d_x OWNER TO dw_deliver;
GRANT SELECT, INSERT, UPDATE, DELETE ON d_t TO app;
-- the superuser's table, the intruder's, the plain role's
CREATE TABLE su_t (id int PRIMARY KEY, v text);
CREATE TABLE i_t (id int PRIMARY KEY, v text);
ALTER TABLE i_t OWNER TO intruder;
CREATE TABLE app_t (id int PRIMARY KEY, v text);
ALTER TABLE app_t OWNER TO app;

-- the delegate (README "Delegation")
GRANT USAGE ON SCHEMA dualwrite TO dw_deliver;
GRANT EXECUTE ON FUNCTION dualwrite.enable(regclass, text, text, jsonb, name, text),
                          dualwrite.disable(regclass) TO dw_deliver;
CREATE SERVER modern FOREIGN DATA WRAPPER dualwrite
    OPTIONS (host '127.0.0.1', port '$mport', dbname 'postgres');
GRANT USAGE ON FOREIGN SERVER modern TO dw_deliver;
CREATE USER MAPPING FOR dw_deliver SERVER modern OPTIONS (user 'dw_deliver', password 'deliver_pw');

-- the superuser's own server (another modern database: its own _dualwrite)
CREATE SERVER modern_su FOREIGN DATA WRAPPER dualwrite
    OPTIONS (host '127.0.0.1', port '$mport', dbname 'su_db');
CREATE USER MAPPING FOR CURRENT_USER SERVER modern_su OPTIONS (user '$msu');

-- a second non-superuser with what the delegate has, on server modern
GRANT USAGE ON SCHEMA dualwrite TO intruder;
GRANT EXECUTE ON FUNCTION dualwrite.enable(regclass, text, text, jsonb, name, text),
                          dualwrite.disable(regclass) TO intruder;
GRANT USAGE ON FOREIGN SERVER modern TO intruder;
CREATE USER MAPPING FOR intruder SERVER modern OPTIONS (user 'dw_deliver', password 'guess');
-- a server nobody delivers to yet (the intruder has no USAGE on it)
CREATE SERVER modern2 FOREIGN DATA WRAPPER dualwrite
    OPTIONS (host '127.0.0.1', port '$mport', dbname 'postgres');

-- a server owned by a role that is neither a superuser nor its delivering role
CREATE SERVER srv_x FOREIGN DATA WRAPPER dualwrite
    OPTIONS (host '127.0.0.1', port '$mport', dbname 'postgres');
GRANT USAGE ON FOREIGN SERVER srv_x TO dw_deliver;
CREATE USER MAPPING FOR dw_deliver SERVER srv_x OPTIONS (user 'dw_deliver', password 'deliver_pw');
ALTER SERVER srv_x OWNER TO srv_owner;

SELECT dualwrite.enable('su_t', target_server => 'modern_su');
});
$legacy->safe_psql('postgres', 'CREATE DATABASE other');
$legacy->safe_psql('other', 'CREATE EXTENSION pg_dualwrite');
ensure_worker($legacy, 'postgres');
ensure_worker($legacy, 'other');

# Everything an attempt must leave as it was: the catalog, servers and user
# mappings on legacy, every table on the modern side (as the superuser).
sub cfg_state
{
	my $l = $legacy->safe_psql('postgres', q{
SELECT tbl::text, mode, target_server, target_table, column_map, enabled_by::text, key_attnums
  FROM dualwrite.tables ORDER BY 1;
SELECT server, deliver_as::text FROM dualwrite.servers ORDER BY 1;
SELECT srvname, srvowner::regrole, srvoptions FROM pg_foreign_server ORDER BY 1;
SELECT srvname, usename, umoptions FROM pg_user_mappings ORDER BY 1, 2;
SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2;
});
	my $m = join "\n--\n", map { table_text($modern, 'postgres', $_, '1') } qw(d_t d_map secret hook_log);
	$m .= "\n--\n" . table_text($modern, 'su_db', 'su_t', '1');
	$m .= "\n--\n" . $modern->safe_psql('postgres', q{
SELECT relname, relowner::regrole FROM pg_class WHERE relnamespace = '_dualwrite'::regnamespace ORDER BY 1});
	return "$l\n==\n$m";
}

# $sql as $role must fail with an error matching $re and change nothing.
sub refused
{
	my ($role, $sql, $re, $name, %opts) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $db     = $opts{db} // 'postgres';
	my $before = cfg_state();
	my ($rc, $out, $err) = $legacy->psql($db, "SET ROLE $role; $sql");
	isnt($rc, 0, "$name: fails");
	like($err, $re, "$name: says why");
	is(cfg_state(), $before, "$name: changes nothing");
}

sub modern_count
{
	my ($db, $sql) = @_;
	return $modern->safe_psql($db, $sql);
}

my $offset_l = log_offset($legacy);
my $offset_m = log_offset($modern);

# ---------------------------------------------------------------- 1. the delegate

$legacy->safe_psql('postgres', q{
SET ROLE dw_deliver;
SELECT dualwrite.enable('d_t', target_server => 'modern');
SELECT dualwrite.enable('d_map', target_server => 'modern', column_map => '{"name": "label"}');
INSERT INTO d_t VALUES (1, 'by the delegate');
INSERT INTO d_map VALUES (1, 'mapped');
RESET ROLE;
SET ROLE app;
INSERT INTO d_t VALUES (2, 'by the plain role');
RESET ROLE;
INSERT INTO su_t VALUES (1, 'by the superuser');
});
is($legacy->safe_psql('postgres',
		q{SELECT string_agg(tbl::text || ':' || enabled_by::text, ',' ORDER BY tbl::text) FROM dualwrite.tables}),
	"d_map:dw_deliver,d_t:dw_deliver,su_t:$su", 'enabled_by is whoever called enable()');
is($legacy->safe_psql('postgres',
		q{SELECT string_agg(server || ':' || deliver_as::text, ',' ORDER BY server) FROM dualwrite.servers}),
	"modern:dw_deliver,modern_su:$su", 'the delegate delivers its server, the superuser its own');
ok(wait_delivered($legacy, 'postgres', 60), "the delegate's tables (and the plain role's rows) are delivered");
sides_equal($legacy, $modern, 'd_t', 'id', 'd_t: delivered through the delegate\'s mapping');
is(modern_count('postgres', q{SELECT relowner::regrole FROM pg_class WHERE oid = '_dualwrite.applied'::regclass}),
	'dw_deliver', 'the progress table on modern is the delivering role\'s');

refused('dw_deliver',
	qq{INSERT INTO dualwrite.tables (tbl, mode, target_server, target_table, enabled_by)
	   VALUES ('su_t', 'async', 'modern', 'public.secret', '$su')},
	qr/permission denied for table tables/, 'delegate forging enabled_by in dualwrite.tables');
refused('dw_deliver', qq{UPDATE dualwrite.tables SET enabled_by = '$su' WHERE tbl = 'd_t'::regclass},
	qr/permission denied for table tables/, 'delegate rewriting enabled_by');
refused('dw_deliver', qq{UPDATE dualwrite.servers SET deliver_as = '$su' WHERE server = 'modern'},
	qr/permission denied for table servers/, 'delegate forging deliver_as in dualwrite.servers');
refused('dw_deliver', qq{INSERT INTO dualwrite.servers (server, deliver_as) VALUES ('modern2', '$su')},
	qr/permission denied for table servers/, 'delegate claiming a server for the superuser');
refused('dw_deliver', q{SELECT dualwrite.disable('su_t')},
	qr/must be owner of table su_t to stop dual-writing it/, 'delegate disabling a table it does not own');
refused('dw_deliver',
	q{SELECT dualwrite.enable('d_secret', target_server => 'modern', target_table => 'public.secret')},
	qr/modern role dw_deliver lacks SELECT, INSERT, UPDATE, DELETE, TRUNCATE on target table public\.secret on server "modern"/,
	'delegate sending a table into a modern table its modern role has no rights on');
refused('dw_deliver', q{SELECT dualwrite.enable('d_x', target_server => 'srv_x')},
	qr/server "srv_x" is owned by role "srv_owner", who could point it elsewhere/,
	'delegate enabling onto a server owned by another non-superuser');

# the worker checks the owner every round: only that server waits
$legacy->safe_psql('postgres', 'ALTER SERVER modern OWNER TO srv_owner');
$legacy->safe_psql('postgres', q{INSERT INTO d_t VALUES (3, 'not while untrusted'); INSERT INTO su_t VALUES (2, 'flows')});
ok( poll_until(
		$legacy, 'postgres',
		q{SELECT last_error LIKE 'server "modern" is owned by role "srv_owner", who could point it elsewhere%' AND queued = 1
		  FROM dualwrite.status WHERE table_name = 'd_t'::regclass}, 't', 30),
	'worker refuses a server owned by another non-superuser (status says so)');
ok(poll_until($modern, 'su_db', 'SELECT count(*) FROM su_t WHERE id = 2', '1', 30),
	'the superuser\'s server keeps flowing meanwhile');
is(modern_count('postgres', 'SELECT count(*) FROM d_t WHERE id = 3'), '0', 'nothing went to the untrusted server');
$legacy->safe_psql('postgres', qq{ALTER SERVER modern OWNER TO "$su"});
ok(wait_delivered($legacy, 'postgres', 60), 'delivery resumes once a superuser owns the server again');
no_crash($legacy, 'legacy: no crash after item 1');
no_crash($modern, 'modern: no crash after item 1');

# ---------------------------------------------------------------- 2/3. other roles

refused('intruder',
	q{SELECT dualwrite.enable('i_t', target_server => 'modern', target_table => 'public.d_t')},
	qr/server "modern" delivers as role "dw_deliver"/,
	'another non-superuser sending a table through the delegate\'s mapping');
refused('intruder',
	q{SELECT dualwrite.enable('i_t', target_server => 'modern2', target_table => 'public.d_t')},
	qr/permission denied for foreign server modern2/, 'enable() without USAGE on the server');

$legacy->safe_psql('postgres', qq{
GRANT USAGE ON FOREIGN SERVER modern2 TO intruder;
CREATE USER MAPPING FOR intruder SERVER modern2 OPTIONS (user '$msu');
});
my $moff = log_offset($modern);
refused('intruder',
	q{SELECT dualwrite.enable('i_t', target_server => 'modern2', target_table => 'public.d_t')},
	qr/password is required to connect to server "modern2" as role "intruder"/,
	'a non-superuser mapping without a password (modern trusts that role)');
unlike(slurp_file($modern->logfile, $moff), qr/connection authorized: user=\Q$msu\E database=postgres application_name=pg_dualwrite/,
	'... refused before any connection to the modern side');
$legacy->safe_psql('postgres', q{ALTER USER MAPPING FOR intruder SERVER modern2 OPTIONS (ADD password 'guess')});
refused('intruder',
	q{SELECT dualwrite.enable('i_t', target_server => 'modern2', target_table => 'public.d_t')},
	qr/password is required to connect to server "modern2"/,
	'a non-superuser mapping whose password the modern side never asked for (trust)');
like(slurp_file($modern->logfile, $moff), qr/connection authorized: user=\Q$msu\E database=postgres application_name=pg_dualwrite/,
	'... refused after the connection (the modern side had trusted it)');
refused('app', q{SELECT dualwrite.enable('app_t', target_server => 'modern')},
	qr/permission denied for schema dualwrite/, 'the plain role calling enable()');
refused('app', q{SELECT dualwrite.disable('d_t')},
	qr/permission denied for schema dualwrite/, 'the plain role calling disable()');
no_crash($legacy, 'legacy: no crash after items 2/3');
no_crash($modern, 'modern: no crash after items 2/3');

# ---------------------------------------------------------------- 7. modern-side objects

# End the worker's modern session: it checks _dualwrite when it connects.
sub end_worker_session
{
	$modern->safe_psql('postgres', q{
SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
 WHERE application_name = 'pg_dualwrite' AND usename = 'dw_deliver' AND datname = 'postgres'});
}

ok(wait_delivered($legacy, 'postgres', 60), 'idle before the modern side is hooked');
# (the worker is idle: it writes nothing to _dualwrite.applied before it
# reconnects)
$modern->safe_psql('postgres', q{
CREATE TRIGGER hook AFTER INSERT OR UPDATE OR DELETE ON _dualwrite.applied
    FOR EACH ROW EXECUTE FUNCTION public.hook();
ALTER TABLE _dualwrite.applied ENABLE ALWAYS TRIGGER hook;
});
end_worker_session();
$legacy->safe_psql('postgres', q{INSERT INTO d_t VALUES (4, 'not while hooked'); INSERT INTO su_t VALUES (3, 'flows')});
ok( poll_until(
		$legacy, 'postgres',
		q{SELECT last_error FROM dualwrite.status WHERE table_name = 'd_t'::regclass},
		'modern server "modern": _dualwrite.applied has triggers or rules, or is not a plain table', 30),
	'worker refuses a _dualwrite.applied with an ENABLE ALWAYS trigger (status says so)');
ok(poll_until($modern, 'su_db', 'SELECT count(*) FROM su_t WHERE id = 3', '1', 30),
	'the other server keeps flowing meanwhile');
is(modern_count('postgres', 'SELECT count(*) FROM d_t WHERE id = 4'), '0', 'the change was not shipped');
is(modern_count('postgres', 'SELECT count(*) FROM hook_log'), '0', 'the trigger never ran');

# another role owns it (and has granted the delivering role everything,
# and hooked it as its owner)
$modern->safe_psql('postgres', q{
BEGIN;
DROP TRIGGER hook ON _dualwrite.applied;
ALTER TABLE _dualwrite.applied OWNER TO m_intruder;
GRANT ALL ON _dualwrite.applied TO dw_deliver;
GRANT USAGE ON SCHEMA _dualwrite TO m_intruder;
SET ROLE m_intruder;
CREATE TRIGGER hook AFTER INSERT OR UPDATE OR DELETE ON _dualwrite.applied
    FOR EACH ROW EXECUTE FUNCTION public.hook();
ALTER TABLE _dualwrite.applied ENABLE ALWAYS TRIGGER hook;
RESET ROLE;
COMMIT;
});
end_worker_session();
$legacy->safe_psql('postgres', q{INSERT INTO su_t VALUES (4, 'flows')});
ok( poll_until(
		$legacy, 'postgres',
		q{SELECT last_error LIKE '%is not owned by the delivering role%' FROM dualwrite.status WHERE table_name = 'd_t'::regclass},
		't', 30),
	'worker refuses a _dualwrite.applied another role owns');
my $owner_error = $legacy->safe_psql('postgres',
	q{SELECT last_error FROM dualwrite.status WHERE table_name = 'd_t'::regclass});
like($owner_error, qr/^modern server "modern": .*\bapplied\b/, '... status shows the refusal');
like($owner_error,
	qr/^modern server "modern": _dualwrite\.applied is not owned by the delivering role "dw_deliver"$/,
	'... and says the delivering role does not own it');
ok(poll_until($modern, 'su_db', 'SELECT count(*) FROM su_t WHERE id = 4', '1', 30),
	'the other server keeps flowing meanwhile');
is(modern_count('postgres', 'SELECT count(*) FROM d_t WHERE id = 4'), '0', 'the change is still not shipped');
is(modern_count('postgres', 'SELECT count(*) FROM hook_log'), '0', 'the owner\'s trigger never ran');

# the table is the delivering role's again, but another role owns the
# schema (and could drop and replace the table): refused too
$modern->safe_psql('postgres', q{
BEGIN;
DROP TRIGGER hook ON _dualwrite.applied;
ALTER TABLE _dualwrite.applied OWNER TO dw_deliver;
ALTER SCHEMA _dualwrite OWNER TO m_intruder;
GRANT USAGE, CREATE ON SCHEMA _dualwrite TO dw_deliver;
COMMIT;
});
end_worker_session();
$legacy->safe_psql('postgres', q{INSERT INTO su_t VALUES (5, 'flows')});
ok( poll_until(
		$legacy, 'postgres',
		q{SELECT last_error NOT LIKE '%must be owner of table applied%' AND last_error NOT LIKE '%triggers or rules%'
		  FROM dualwrite.status WHERE table_name = 'd_t'::regclass},
		't', 30),
	'worker refuses a schema _dualwrite another role owns');
like($legacy->safe_psql('postgres', q{SELECT last_error FROM dualwrite.status WHERE table_name = 'd_t'::regclass}),
	qr/^modern server "modern": _dualwrite\.applied is not owned by the delivering role "dw_deliver"$/,
	'... and status says why');
ok(poll_until($modern, 'su_db', 'SELECT count(*) FROM su_t WHERE id = 5', '1', 30),
	'the other server keeps flowing meanwhile');
is(modern_count('postgres', 'SELECT count(*) FROM d_t WHERE id = 4'), '0', 'the change is still not shipped');

$modern->safe_psql('postgres', q{
ALTER SCHEMA _dualwrite OWNER TO dw_deliver;
REVOKE ALL ON SCHEMA _dualwrite FROM m_intruder;
});
ok(wait_delivered($legacy, 'postgres', 60), 'delivery resumes once the progress table is the delivering role\'s again');
sides_equal($legacy, $modern, 'd_t', 'id', 'd_t: caught up after the modern side was fixed');
is($legacy->safe_psql('postgres', q{SELECT last_error FROM dualwrite.status WHERE table_name = 'd_t'::regclass}),
	'', 'd_t: the error is cleared');
no_crash($legacy, 'legacy: no crash after item 7');
no_crash($modern, 'modern: no crash after item 7');

# ---------------------------------------------------------------- 8. per-table configuration errors

$legacy->safe_psql('postgres', q{
SET ROLE dw_deliver;
ALTER TABLE d_map RENAME COLUMN name TO title;
INSERT INTO d_map VALUES (2, 'while renamed');
INSERT INTO d_t VALUES (5, 'flows while d_map is held');
});
ok( poll_until(
		$legacy, 'postgres',
		q{SELECT held_since IS NOT NULL FROM dualwrite.status WHERE table_name = 'd_map'::regclass}, 't', 30),
	'the renamed column holds its table (held_since)');
is( $legacy->safe_psql('postgres', q{SELECT held_reason FROM dualwrite.status WHERE table_name = 'd_map'::regclass}),
	'the configuration of table public.d_map no longer fits it: column_map names column "name", which table "d_map" does not send',
	'held_reason names the column_map problem');
ok(poll_until($modern, 'postgres', 'SELECT count(*) FROM d_t WHERE id = 5', '1', 30),
	'another table of the same server keeps flowing');
is($legacy->safe_psql('postgres', q{SELECT held_since IS NULL FROM dualwrite.status WHERE table_name = 'd_t'::regclass}),
	't', 'the other table is not held');
is(modern_count('postgres', 'SELECT count(*) FROM d_map WHERE id = 2'), '0', 'the held table\'s change waits');
$legacy->safe_psql('postgres', 'SET ROLE dw_deliver; ALTER TABLE d_map RENAME COLUMN title TO name');
ok(wait_delivered($legacy, 'postgres', 60), 'renamed back: the held table catches up');
ok( poll_until(
		$legacy, 'postgres',
		q{SELECT held_since IS NULL FROM dualwrite.status WHERE table_name = 'd_map'::regclass}, 't', 30),
	'... and rejoins its server\'s stream');
$legacy->safe_psql('postgres', q{INSERT INTO d_map VALUES (3, 'after the rejoin')});
ok(wait_delivered($legacy, 'postgres', 60), 'the rejoined table keeps flowing');
sides_equal($legacy, $modern, 'd_map', 'id', 'd_map: same rows on both sides');
no_crash($legacy, 'legacy: no crash after item 8');
no_crash($modern, 'modern: no crash after item 8');

# ---------------------------------------------------------------- 9. worker states

refused('app', 'SELECT * FROM dualwrite._worker_info()', qr/permission denied for schema dualwrite/,
	'the plain role executing _worker_info()');
refused('app', 'SELECT * FROM dualwrite.workers', qr/permission denied for schema dualwrite/,
	'the plain role reading dualwrite.workers');
refused('app', 'SELECT * FROM dualwrite.status', qr/permission denied for schema dualwrite/,
	'the plain role reading dualwrite.status');
# the delegate has USAGE on the schema, and still no worker states
refused('dw_deliver', 'SELECT * FROM dualwrite._worker_info()', qr/permission denied for function _worker_info/,
	'the delegate executing _worker_info()');
refused('dw_deliver', 'SELECT * FROM dualwrite.workers', qr/permission denied for view workers/,
	'the delegate reading dualwrite.workers');
refused('dw_deliver', 'SELECT * FROM dualwrite.status', qr/permission denied for view status/,
	'the delegate reading dualwrite.status');

is($legacy->safe_psql('postgres', 'SELECT string_agg(datname, \',\' ORDER BY datname) FROM dualwrite.workers'),
	'other,postgres', 'the superuser sees both databases\' workers');
$legacy->safe_psql('postgres', q{
GRANT USAGE ON SCHEMA dualwrite TO monitor;
GRANT EXECUTE ON FUNCTION dualwrite._worker_info() TO monitor;
GRANT SELECT ON dualwrite.workers, dualwrite.status TO monitor;
});
refused('monitor', q{SELECT dualwrite.enable('app_t', target_server => 'modern')},
	qr/permission denied for function enable/, 'a role with USAGE on the schema calling enable()');
is($legacy->safe_psql('postgres', 'SET ROLE monitor; SELECT string_agg(datname, \',\') FROM dualwrite._worker_info()'),
	'postgres', 'a role granted _worker_info() sees its own database only');
is($legacy->safe_psql('postgres', 'SET ROLE monitor; SELECT string_agg(datname, \',\') FROM dualwrite.workers'),
	'postgres', 'a role granted dualwrite.workers sees its own database\'s row only');
my ($rc, $out, $err) = $legacy->psql('postgres',
	'SET ROLE monitor; SELECT string_agg(table_name::text, \',\' ORDER BY table_name::text) FROM dualwrite.status');
is($out, 'd_map,d_t,su_t', 'a role granted dualwrite.status reads it') or diag $err;
no_crash($legacy, 'legacy: no crash after item 9');
no_crash($modern, 'modern: no crash after item 9');

# ---------------------------------------------------------------- the end

ok(wait_delivered($legacy, 'postgres', 60), 'everything delivered');
sides_equal($legacy, $modern, 'd_t', 'id', 'd_t: same rows on both sides');
sides_equal($legacy, $modern, 'd_map', 'id', 'd_map: same rows on both sides');
sides_equal($legacy, $modern, 'su_t', 'id', 'su_t: same rows on both sides', modern_db => 'su_db');
is(modern_count('postgres', 'SELECT v FROM secret'), 'untouchable', 'the modern table nobody may write is untouched');
is(modern_count('postgres', 'SELECT count(*) FROM hook_log'), '0', 'no hook ever ran on the modern side');
no_crash($legacy, 'legacy: no process crashed', offset => $offset_l);
no_crash($modern, 'modern: no process crashed', offset => $offset_m);

$legacy->stop;
$modern->stop;
done_testing();

--
-- remote_options: who may set which connection option of the dualwrite
-- wrapper, what a non-superuser delivering role may connect with, and what
-- enable() checks before it locks anything.  Every refusal here comes
-- before a connection is attempted: the servers point at 127.0.0.1 port 1,
-- where a connection attempt would fail with "Connection refused".
--
CREATE ROLE dw_plain NOLOGIN;
GRANT USAGE ON FOREIGN DATA WRAPPER dualwrite TO dw_plain;
GRANT USAGE ON SCHEMA dualwrite TO dw_plain;
GRANT EXECUTE ON FUNCTION dualwrite.enable(regclass, text, text, jsonb, name, text) TO dw_plain;
GRANT SELECT ON dualwrite.tables, dualwrite.servers TO dw_plain;
CREATE TABLE plain_t (id bigint PRIMARY KEY, v text);
ALTER TABLE plain_t OWNER TO dw_plain;

-- A plain role may not set the options that use the legacy server's own
-- files or credentials, nor reach the modern side through a local socket.
SET ROLE dw_plain;
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '1', dbname 'x', passfile '/var/lib/postgresql/.pgpass');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', service 'prod');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', options '-c role=postgres');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', sslrootcert '/etc/ssl/certs/ca-certificates.crt');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', sslcrl '/tmp/crl.pem');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', sslcrldir '/tmp');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', requirepeer 'postgres');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', krbsrvname 'postgres');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', gsslib 'gssapi');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '/var/run/postgresql', dbname 'x');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '@pg', dbname 'x');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host 'db.example,/tmp', dbname 'x');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '', dbname 'x');
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (dbname 'x');
-- a host name or address is fine, and a hostaddr makes a socket-like host a name
CREATE SERVER plain_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '1', dbname 'x');
CREATE SERVER plain_srv2 FOREIGN DATA WRAPPER dualwrite OPTIONS (hostaddr '127.0.0.1', port '1', dbname 'x');
ALTER SERVER plain_srv OPTIONS (ADD sslrootcert '/etc/ssl/certs/ca-certificates.crt');
ALTER SERVER plain_srv OPTIONS (SET host '/tmp');
-- nor in its user mapping
CREATE USER MAPPING FOR dw_plain SERVER plain_srv OPTIONS (user 'x', sslcert '/var/lib/postgresql/.postgresql/postgresql.crt');
CREATE USER MAPPING FOR dw_plain SERVER plain_srv OPTIONS (user 'x', sslkey '/var/lib/postgresql/.postgresql/postgresql.key');
CREATE USER MAPPING FOR dw_plain SERVER plain_srv OPTIONS (user 'x');
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname LIKE 'plain_srv%' ORDER BY 1;

-- A non-superuser delivering role needs a non-empty password of its own,
-- checked before connecting (libpq would otherwise read one from a file).
SELECT dualwrite.enable('plain_t', target_server => 'plain_srv');
ALTER USER MAPPING FOR dw_plain SERVER plain_srv OPTIONS (ADD password '');
SELECT dualwrite.enable('plain_t', target_server => 'plain_srv');
ALTER USER MAPPING FOR dw_plain SERVER plain_srv OPTIONS (SET password 'plain_pw');
-- with one, the connection is attempted (and fails: nothing listens there)
\set VERBOSITY terse
SELECT dualwrite.enable('plain_t', target_server => 'plain_srv');
\set VERBOSITY default
RESET ROLE;

-- A superuser may set them; a non-superuser delivering role still may not
-- use them on a server it owns (a superuser did not choose them for it) ...
ALTER SERVER plain_srv OPTIONS (ADD sslrootcert '/nonexistent/root.crt');
SET ROLE dw_plain;
SELECT dualwrite.enable('plain_t', target_server => 'plain_srv');
RESET ROLE;
ALTER SERVER plain_srv OPTIONS (DROP sslrootcert, SET host '/tmp');
SET ROLE dw_plain;
SELECT dualwrite.enable('plain_t', target_server => 'plain_srv');
RESET ROLE;
-- ... nor, on any server, the legacy server's stored credentials.
CREATE SERVER su_srv FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '1', dbname 'x', passfile '/nonexistent/.pgpass');
CREATE USER MAPPING FOR PUBLIC SERVER su_srv OPTIONS (user 'x', password 'plain_pw');
GRANT USAGE ON FOREIGN SERVER su_srv TO dw_plain;
SET ROLE dw_plain;
SELECT dualwrite.enable('plain_t', target_server => 'su_srv');
RESET ROLE;
-- On a superuser's server, the superuser's other choices are used.
ALTER SERVER su_srv OPTIONS (DROP passfile, ADD sslrootcert '/nonexistent/root.crt', ADD sslmode 'verify-full');
SET ROLE dw_plain;
\set VERBOSITY terse
SELECT dualwrite.enable('plain_t', target_server => 'su_srv');
\set VERBOSITY default
RESET ROLE;

-- enable() checks the caller's privileges before it locks the table: a
-- table it does not own (already enabled: that check comes after the lock),
-- then USAGE on the server.
SET ROLE dw_plain;
SELECT dualwrite.enable('orders', target_server => 'modern');
SELECT dualwrite.enable('plain_t', target_server => 'modern');
RESET ROLE;
SELECT count(*) AS plain_flagged FROM dualwrite.tables WHERE tbl = 'plain_t'::regclass;
SELECT count(*) AS servers_claimed FROM dualwrite.servers WHERE server IN ('plain_srv', 'su_srv');

DROP SERVER su_srv CASCADE;
DROP SERVER plain_srv CASCADE;
DROP SERVER plain_srv2;
DROP TABLE plain_t;
REVOKE ALL ON dualwrite.tables, dualwrite.servers FROM dw_plain;
REVOKE ALL ON FUNCTION dualwrite.enable(regclass, text, text, jsonb, name, text) FROM dw_plain;
REVOKE ALL ON SCHEMA dualwrite FROM dw_plain;
REVOKE ALL ON FOREIGN DATA WRAPPER dualwrite FROM dw_plain;
DROP ROLE dw_plain;

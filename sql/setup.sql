--
-- setup: the modern side is a second database in the same instance, reached
-- through a dualwrite foreign server with a user mapping.  A postgres_fdw
-- view of it gives the tests a comparison that does not use pg_dualwrite.
--
CREATE DATABASE dw_modern TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'; -- as the legacy test database
\c dw_modern
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), note text);
\c contrib_regression
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), note text);

-- The server's address comes from this instance's own settings.
DO $$
BEGIN
    EXECUTE format('CREATE SERVER modern FOREIGN DATA WRAPPER dualwrite OPTIONS (host %L, port %L, dbname %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), 'dw_modern');
END $$;
CREATE USER MAPPING FOR PUBLIC SERVER modern OPTIONS (user 'postgres');
-- The test instance's superuser is whoever runs pg_regress; map it explicitly.
DO $$
BEGIN
    EXECUTE format('ALTER USER MAPPING FOR PUBLIC SERVER modern OPTIONS (SET user %L)', current_user);
END $$;

-- Independent reader of the modern database, for row-by-row comparisons.
CREATE EXTENSION postgres_fdw;
DO $$
BEGIN
    EXECUTE format('CREATE SERVER modern_check FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), 'dw_modern');
    EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER modern_check OPTIONS (user %L)', current_user);
END $$;
CREATE SCHEMA modern;

-- Settings of the suite.
ALTER DATABASE contrib_regression SET dualwrite.target_server = 'modern';
SET dualwrite.target_server = 'modern';
SHOW dualwrite.target_server;
SHOW dualwrite.default_mode;
SHOW dualwrite.batch_size;

-- Check hooks explain a rejected value; worker settings are reloadable only.
SET dualwrite.batch_size = 500;
ALTER SYSTEM SET dualwrite.batch_size = 0;
ALTER SYSTEM SET dualwrite.retry_backoff_max = '20ms';
SET dualwrite.default_mode = 'eventually';
SET dualwrite.no_such_setting = 1;

-- The wrapper validates options: credentials belong to the user mapping,
-- connection options to the server.
CREATE SERVER bad1 FOREIGN DATA WRAPPER dualwrite OPTIONS (host 'localhost', password 'x');
CREATE SERVER bad2 FOREIGN DATA WRAPPER dualwrite OPTIONS (hots 'localhost');
CREATE SERVER bad3 FOREIGN DATA WRAPPER dualwrite OPTIONS (connect_timeout 'soon');
CREATE USER MAPPING FOR CURRENT_USER SERVER modern OPTIONS (host 'x');
CREATE SERVER ok1 FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '1', dbname 'x', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (user 'nobody', password 'secret_pw_123');
ALTER USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (ADD dbname 'x');
-- Only superusers see a user mapping's options (the password).
SELECT count(*) FROM pg_user_mappings WHERE srvname = 'ok1';

-- Wait until a query returns true (each try in a transaction of its own,
-- so postgres_fdw reads of the modern side see its latest state).
CREATE PROCEDURE public.poll_until(query text, timeout_s int DEFAULT 60)
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        EXECUTE query INTO ok;
        COMMIT;
        EXIT WHEN ok OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.05);
    END LOOP;
    IF NOT ok THEN
        RAISE WARNING 'poll_until: still false after % s: %', timeout_s, query;
    END IF;
END $$;
-- A non-superuser delivering role must log in with the password of its user
-- mapping: scram for dw_deliver over the local socket, trust for the rest
-- (the suite's own connections).
CREATE ROLE dw_deliver LOGIN PASSWORD 'dw_deliver_pw';
DO $$
BEGIN
    EXECUTE format('COPY (VALUES (%L), (%L), (%L), (%L)) TO %L',
                   'local all dw_deliver scram-sha-256', 'local all all trust',
                   'host all all 127.0.0.1/32 trust', 'host all all ::1/128 trust',
                   current_setting('hba_file'));
END $$;
SELECT pg_reload_conf();

-- A dualwrite server of its own for a test (to this instance, database
-- `dbname`), with a PUBLIC mapping for the suite's superuser: a test that
-- makes its server fail does not touch the other tables' counters.
CREATE PROCEDURE public.make_server(name text, dbname text DEFAULT 'dw_modern')
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER dualwrite OPTIONS (host %L, port %L, dbname %L)',
                   name, split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), dbname);
    EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER %I OPTIONS (user %L)', name, current_user);
END $$;

--
-- boundary: a C++ exception or a PostgreSQL error crossing C++ frames
-- becomes a normal ERROR (SQLSTATE kept), destructors run, and the backend
-- survives.
--
CREATE FUNCTION pg_temp.sqlstate_of(kind text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dualwrite._selftest_boundary(kind);
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SELECT pg_temp.sqlstate_of('cpp_exception');
SELECT pg_temp.sqlstate_of('bad_alloc');
SELECT pg_temp.sqlstate_of('pg_error');
SELECT pg_temp.sqlstate_of('no_such_kind');
-- the error reaches the client like any other, with its detail
SELECT dualwrite._selftest_boundary('pg_error');
SELECT dualwrite._selftest_boundary('cpp_exception');
-- no destructor was skipped
SELECT dualwrite._selftest_boundary('live_objects') AS live_probe_objects;
-- same backend, still fine
SELECT pg_backend_pid() = pg_backend_pid() AS alive, 1 + 1 AS two;

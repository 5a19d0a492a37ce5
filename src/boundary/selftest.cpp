/*-------------------------------------------------------------------------
 * selftest.cpp
 *    dualwrite._selftest_boundary(kind): exercises the C++/PostgreSQL
 *    boundary from SQL so the regression suite can prove it:
 *      'cpp_exception'  a std::runtime_error becomes an ERROR (XX000)
 *      'bad_alloc'      std::bad_alloc becomes "out of memory" (53200)
 *      'pg_error'       an ereport inside pg_call() crosses a live C++
 *                       object, which is destroyed before the ERROR is
 *                       re-raised with its SQLSTATE (22012) intact
 *      'live_objects'   returns how many probe objects are alive (0
 *                       unless a destructor was skipped)
 *    Superuser-only; it changes nothing.
 *
 * IDENTIFICATION  src/boundary/selftest.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"

#include <stdexcept>

namespace pgdw {

static int64 live_probes = 0;

/* An object whose destructor must run however the scope is left. */
struct Probe {
	std::string payload;
	Probe() : payload(64, 'x') { live_probes++; }
	~Probe() { live_probes--; }
	Probe(const Probe &) = delete;
	Probe &operator=(const Probe &) = delete;
};

static int64
SelfTest(const char *kind)
{
	if (strcmp(kind, "live_objects") == 0)
		return live_probes;
	Probe probe;
	if (strcmp(kind, "cpp_exception") == 0)
		throw std::runtime_error("selftest exception from C++");
	if (strcmp(kind, "bad_alloc") == 0)
		throw std::bad_alloc();
	if (strcmp(kind, "pg_error") == 0)
		pg_call([] { ereport(ERROR, (errcode(ERRCODE_DIVISION_BY_ZERO), errmsg("selftest error from PostgreSQL"),
		                             errdetail("Raised inside pg_call() while a C++ object was alive."))); });
	return -1;
}

} // namespace pgdw

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_selftest_boundary);

PGDLLEXPORT Datum
dualwrite_selftest_boundary(PG_FUNCTION_ARGS)
{
	const char *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	return pgdw::pg_entry([&] {
		int64 r = pgdw::SelfTest(kind);
		if (r < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown selftest \"%s\"", kind)));
		PG_RETURN_INT64(r);
	});
}
}

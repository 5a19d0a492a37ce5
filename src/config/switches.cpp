/*-------------------------------------------------------------------------
 * switches.cpp
 *    dualwrite.pause(tbl) and dualwrite.resume(tbl): stop and restart the
 *    delivery of one table while its capture goes on.
 *
 * pause() only records the wish (dualwrite.tables.paused).  The worker
 * acts on it at its next round: it holds the table (worker/holds.hpp) at
 * the progress its server's stream has confirmed, and does not drain the
 * held stream while the table is paused.  Only the worker knows that
 * progress, which is why the hold is its to make: a hold started from an
 * older position would deliver some changes twice.  resume() clears the
 * wish; the held stream then catches up and rejoins its server's stream
 * like any held table.  While paused, the table's changes wait in the
 * outbox (status: paused, queued and lag growing); other tables flow.  A
 * transaction that wrote a paused and an unpaused table has the unpaused
 * table's changes applied now and the paused one's later, in their own
 * capture order (the documented exception of guarantee 9, as for holds).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/config/switches.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "config/catalog.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "utils/acl.h"
}

namespace pgdw::config {

/* The caller may steer a table's delivery if it owns the table. */
static void
CheckMayAct(Oid relid, const char *what)
{
	if (superuser() || pg_class_ownercheck(relid, GetUserId()))
		return;
	char *name = get_rel_name(relid);
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
	                errmsg("must be owner of table %s to %s its delivery", name != nullptr ? quote_identifier(name) : "?",
	                       what)));
}

static Datum
Switch(FunctionCallInfo fcinfo, bool pause)
{
	Oid relid = PG_GETARG_OID(0);
	CheckMayAct(relid, pause ? "pause" : "resume");
	bool was = SetPaused(relid, pause);
	if (was == pause)
		ereport(NOTICE, (errmsg("delivery of table \"%s\" is already %s", get_rel_name(relid),
		                        pause ? "paused" : "running")));
	shm::WakeLauncher();
	PG_RETURN_VOID();
}

} // namespace pgdw::config

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_pause);
PG_FUNCTION_INFO_V1(dualwrite_resume);

PGDLLEXPORT Datum
dualwrite_pause(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::Switch(fcinfo, true); });
}

PGDLLEXPORT Datum
dualwrite_resume(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::Switch(fcinfo, false); });
}
}

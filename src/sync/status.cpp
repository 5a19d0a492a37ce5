/*-------------------------------------------------------------------------
 * status.cpp
 *    Sync mode's figures for dualwrite.status: per table, the sync
 *    transactions shipped and those that went through the outbox, and
 *    whether older changes are still queued; per database, the in-doubt
 *    transactions the resolver saw at its last look.
 *
 * IDENTIFICATION  src/sync/status.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
}

namespace pgdw::sync {

static Datum
SyncInfo(FunctionCallInfo fcinfo)
{
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "dualwrite._sync_info must return a record");
	uint64 transactions = 0, fallbacks = 0;
	bool backlog = false;
	Datum values[3];
	bool nulls[3] = {false, false, false};
	if (!shm::SyncCounters(PG_GETARG_OID(0), &transactions, &fallbacks, &backlog))
		nulls[2] = true; /* not looked at since the server started */
	values[0] = Int64GetDatum(static_cast<int64>(transactions));
	values[1] = Int64GetDatum(static_cast<int64>(fallbacks));
	values[2] = BoolGetDatum(backlog);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

static Datum
InDoubt(FunctionCallInfo fcinfo)
{
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "dualwrite._in_doubt must return a record");
	Datum values[2] = {Int32GetDatum(0), 0};
	bool nulls[2] = {false, true};
	shm::DbSlot *slot = shm::Get() != nullptr ? shm::SlotFor(MyDatabaseId, false) : nullptr;
	if (slot != nullptr) {
		values[0] = Int32GetDatum(slot->in_doubt);
		if (slot->oldest_in_doubt != 0) {
			values[1] = TimestampTzGetDatum(slot->oldest_in_doubt);
			nulls[1] = false;
		}
	}
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

} // namespace pgdw::sync

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_sync_info);
PG_FUNCTION_INFO_V1(dualwrite_in_doubt);

PGDLLEXPORT Datum
dualwrite_sync_info(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::sync::SyncInfo(fcinfo); });
}

PGDLLEXPORT Datum
dualwrite_in_doubt(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::sync::InDoubt(fcinfo); });
}
}

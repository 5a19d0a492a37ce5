/*-------------------------------------------------------------------------
 * status.cpp
 *    SQL functions over the shared worker state: dualwrite._worker_info()
 *    (behind the dualwrite.workers view) and dualwrite._wake().
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/worker/status.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "commands/dbcommands.h"
}

namespace pgdw::worker {

static Datum
WorkerInfo(FunctionCallInfo fcinfo)
{
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	shm::Shared *shared = shm::Get();
	if (shared == nullptr)
		return (Datum) 0;

	/* Copy the slots under the lock, build rows after releasing it. */
	shm::DbSlot *copy = static_cast<shm::DbSlot *>(palloc(sizeof(shared->slots)));
	LWLockAcquire(shared->lock, LW_SHARED);
	memcpy(copy, shared->slots, sizeof(shared->slots));
	LWLockRelease(shared->lock);

	for (int i = 0; i < shm::kMaxDatabases; i++) {
		shm::DbSlot *s = &copy[i];
		if (s->dboid == InvalidOid || s->state == shm::kStateNoExtension)
			continue;
		/* Other databases' errors are theirs (they may quote row values). */
		if (s->dboid != MyDatabaseId && !superuser())
			continue;
		char *datname = get_database_name(s->dboid);
		if (datname == nullptr)
			continue;
		Datum values[10];
		bool nulls[10] = {false};
		values[0] = DirectFunctionCall1(namein, CStringGetDatum(datname));
		values[1] = Int32GetDatum(s->pid);
		nulls[1] = s->pid == 0;
		values[2] = CStringGetTextDatum(shm::StateName(s->state));
		values[3] = TimestampTzGetDatum(s->state_since);
		nulls[3] = s->state_since == 0;
		values[4] = TimestampTzGetDatum(s->last_batch_at);
		nulls[4] = s->last_batch_at == 0;
		values[5] = Int64GetDatum(static_cast<int64>(s->applied_total));
		values[6] = CStringGetTextDatum(s->last_error);
		nulls[6] = s->last_error[0] == '\0';
		values[7] = TimestampTzGetDatum(s->last_error_at);
		nulls[7] = s->last_error_at == 0;
		values[8] = Float8GetDatum(s->apply_rate);
		values[9] = Int64GetDatum(static_cast<int64>(s->batches));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

} // namespace pgdw::worker

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_worker_info);
PG_FUNCTION_INFO_V1(dualwrite_wake);
PG_FUNCTION_INFO_V1(dualwrite_debug_fault);
PG_FUNCTION_INFO_V1(dualwrite_capture_generation);
PG_FUNCTION_INFO_V1(dualwrite_capture_skipped_at);

PGDLLEXPORT Datum
dualwrite_worker_info(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::worker::WorkerInfo(fcinfo); });
}

/* Arm a test fault point of this database's worker (superuser only). */
PGDLLEXPORT Datum
dualwrite_debug_fault(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] {
		if (!superuser())
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			                errmsg("permission denied for function dualwrite._debug_fault"),
			                errdetail("Only superusers may arm test fault points.")));
		pgdw::shm::ArmFault(MyDatabaseId, text_to_cstring(PG_GETARG_TEXT_PP(0)));
		PG_RETURN_VOID();
	});
}

/* The outbox generation capture writes to now (for dualwrite.outbox). */
PGDLLEXPORT Datum
dualwrite_capture_generation(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] {
		if (pgdw::shm::Get() == nullptr)
			PG_RETURN_NULL();
		PG_RETURN_INT32(static_cast<int32>(pgdw::shm::CaptureGeneration()));
	});
}

/* When a change was last left uncaptured (dualwrite.enabled off), or NULL. */
PGDLLEXPORT Datum
dualwrite_capture_skipped_at(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] {
		TimestampTz at = pgdw::shm::LastSkippedCapture();
		if (at == 0)
			PG_RETURN_NULL();
		PG_RETURN_TIMESTAMPTZ(at);
	});
}

PGDLLEXPORT Datum
dualwrite_wake(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] {
		pgdw::shm::WakeLauncher();
		PG_RETURN_VOID();
	});
}
}

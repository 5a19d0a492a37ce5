/*-------------------------------------------------------------------------
 * worker.cpp
 *    The per-database delivery worker: a loop of drain rounds.
 *
 * Loop shape (STYLE.md 3.6): wait on the latch, CHECK_FOR_INTERRUPTS,
 * reload settings on SIGHUP, then one round.  A failed round is caught
 * here (PG_TRY), its transaction aborted, its stream's connection dropped
 * and retried with capped exponential backoff; one log line per state
 * change, not per retry.  SIGTERM is `die`.
 *
 * IDENTIFICATION  src/worker/worker.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "outbox/rotate.hpp"
#include "worker/drain.hpp"
#include "worker/holds.hpp"
#include "shmem/shmem.hpp"
#include "worker/worker.hpp"

extern "C" {
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "tcop/tcopprot.h"
}

namespace pgdw::worker {

static shm::DbSlot *my_slot = nullptr;
static bool failing = false;          /* last round failed (for one-line-per-change logging) */
static char last_logged[256] = "";    /* message of the failure last logged */

/* Settings that make our text output read back exactly on the modern side. */
static void
PinOutputSettings()
{
	SetConfigOption("DateStyle", "ISO, YMD", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("IntervalStyle", "postgres", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("extra_float_digits", "3", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("TimeZone", "UTC", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("bytea_output", "hex", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}

/* Moving average of the delivery rate, for the catch-up estimate. */
static void
RecordRate(int64 applied, TimestampTz started)
{
	long secs;
	int usecs;
	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	double elapsed = secs + usecs / 1e6;
	if (applied <= 0 || elapsed <= 0 || my_slot == nullptr)
		return;
	double sample = applied / elapsed;
	/* Weight 0.3: follows a change of pace within a few rounds. */
	my_slot->apply_rate = my_slot->apply_rate > 0 ? 0.7 * my_slot->apply_rate + 0.3 * sample : sample;
}

/* Per-table failure counters are advisory: if even recording them fails
 * (e.g. the extension is being dropped), forget it and go on. */
static void
RecordFailureQuietly(const char *server, const char *message)
{
	MemoryContext context = CurrentMemoryContext;
	PG_TRY();
	{
		RecordFailure(server, message);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

/* One round; returns ms to wait before the next one. */
static long
RoundGuarded()
{
	MemoryContext loop_context = CurrentMemoryContext;
	volatile long wait_ms = guc::naptime_ms;
	PG_TRY();
	{
		TimestampTz started = GetCurrentTimestamp();
		RoundResult r = pg_entry([] { return DrainRound(); });
		CommitPendingHold(); /* a table paused since the last round */
		RecordRate(r.applied, started);
		if (r.no_extension) {
			shm::SetState(my_slot, shm::kStateNoExtension, nullptr);
			ereport(DEBUG1, (errmsg("pg_dualwrite worker for database %u stops: the extension is not installed",
			                        MyDatabaseId)));
			proc_exit(0); /* the launcher starts us again after CREATE EXTENSION */
		}
		int after = 0;
		const char *recovered = TakeRecoveredServer(&after);
		if (recovered != nullptr)
			ereport(LOG, (errmsg("pg_dualwrite: delivery to server \"%s\" resumed after %d failed attempts",
			                     recovered, after)));
		failing = failing && r.backing_off;
		if (!failing)
			last_logged[0] = '\0';
		shm::SetState(my_slot, r.backing_off ? shm::kStateBackoff : r.applied > 0 ? shm::kStateRunning
		                                                                         : shm::kStateIdle,
		              nullptr);
		outbox::Maintain();
		if (r.backing_off || r.busy)
			wait_ms = Min(guc::naptime_ms, 100);
		else if (r.applied >= guc::batch_size)
			wait_ms = 0; /* a backlog: go again at once */
		/* Otherwise nap: every round reads the outbox generations whole, so
		 * rounds back to back under a steady trickle would cost more than the
		 * changes they carry.  Latency stays within dualwrite.naptime. */
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loop_context);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, nullptr);

		bool connection_problem = false;
		int attempts = 0;
		long retry_ms = 0;
		const char *server = OnRoundFailure(edata, &connection_problem, &attempts, &retry_ms);
		/* Before the state change, so whoever sees the state sees the counts. */
		if (server != nullptr)
			RecordFailureQuietly(server, edata->message);
		shm::SetState(my_slot, connection_problem ? shm::kStateUnreachable : shm::kStateBackoff, edata->message);
		/* One line per state change: a new error, not the same one again. */
		if (strcmp(last_logged, edata->message != nullptr ? edata->message : "") != 0) {
			ereport(WARNING, (errcode(edata->sqlerrcode),
			                  server != nullptr
			                      ? errmsg("pg_dualwrite: delivery to server \"%s\" failed: %s", server, edata->message)
			                      : errmsg("pg_dualwrite: drain round failed: %s", edata->message),
			                  edata->detail != nullptr ? errdetail_internal("%s", edata->detail) : 0,
			                  errhint("Changes stay in the outbox; retrying with backoff (next in %ld ms).", retry_ms)));
			strlcpy(last_logged, edata->message != nullptr ? edata->message : "", sizeof(last_logged));
		}
		failing = true;
		FreeErrorData(edata);
		/* Short naps: a round skips the stream until its retry time, but an
		 * ALTER SERVER (a fixed target) is noticed at once. */
		wait_ms = Min(retry_ms, guc::naptime_ms);
	}
	PG_END_TRY();
	return wait_ms;
}

static void
WorkerMain(Oid dboid)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("pg_dualwrite worker");
	PinOutputSettings();

	my_slot = shm::SlotFor(dboid, true);
	if (my_slot == nullptr)
		ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
		                errmsg("pg_dualwrite serves at most %d databases", shm::kMaxDatabases)));
	my_slot->pid = MyProcPid;
	shm::SetState(my_slot, shm::kStateIdle, nullptr);

	MemoryContext loop_context =
	    AllocSetContextCreate(TopMemoryContext, "pg_dualwrite worker loop", ALLOCSET_DEFAULT_SIZES);
	long wait_ms = 0;
	for (;;) {
		if (wait_ms > 0) {
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(loop_context);
		MemoryContextReset(loop_context);
		wait_ms = RoundGuarded();
	}
}

} // namespace pgdw::worker

extern "C" {
PGDLLEXPORT void
dualwrite_worker_main(Datum arg)
{
	pgdw::pg_entry([&] { pgdw::worker::WorkerMain(DatumGetObjectId(arg)); });
}
}

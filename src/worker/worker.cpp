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
#include "outbox/image.hpp"
#include "outbox/rotate.hpp"
#include "worker/drain.hpp"
#include "worker/tracking.hpp"
#include "worker/holds.hpp"
#include "shmem/shmem.hpp"
#include "worker/worker.hpp"
#include "sync/sync.hpp"

extern "C" {
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "tcop/tcopprot.h"
}

namespace pgdw::worker {

static shm::DbSlot *my_slot = nullptr;
static bool failing = false;          /* last round failed (for one-line-per-change logging) */
static char last_logged[256] = "";    /* message of the failure last logged */

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
		EndTracking(false); /* staged keys are lost: the next round says so */
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

/*
 * One resolver pass (sync/resolver.cpp), every dualwrite.resolve_interval
 * or at once when a backend asked for it.  Its failure (the modern side
 * down) is logged once per new message and retried next interval; it
 * never stops delivery.
 */
static TimestampTz next_resolve = 0;
static char resolve_logged[256] = "";

static void
ResolveGuarded()
{
	TimestampTz now = GetCurrentTimestamp();
	if (now < next_resolve && !my_slot->resolve_all)
		return;
	if (now < next_resolve - (int64) guc::resolve_interval_ms * 1000 + 200 * 1000)
		return; /* asked again right after a pass: not more than 5 per second */
	next_resolve = TimestampTzPlusMilliseconds(now, guc::resolve_interval_ms);
	MemoryContext context = CurrentMemoryContext;
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "pg_dualwrite: resolving in-doubt transactions");
		sync::ResolveInDoubt();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, nullptr);
		resolve_logged[0] = '\0';
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, nullptr);
		sync::DropResolverConnections();
		if (strcmp(resolve_logged, edata->message != nullptr ? edata->message : "") != 0) {
			ereport(WARNING, (errcode(edata->sqlerrcode),
			                  errmsg("pg_dualwrite: in-doubt resolution failed: %s", edata->message),
			                  edata->detail != nullptr ? errdetail_internal("%s", edata->detail) : 0,
			                  errhint("Retried every dualwrite.resolve_interval (%d ms).", guc::resolve_interval_ms)));
			strlcpy(resolve_logged, edata->message != nullptr ? edata->message : "", sizeof(resolve_logged));
		}
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

static void
WorkerMain(Oid dboid)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("pg_dualwrite worker");
	outbox::PinTextOutputForProcess(); /* text that reads back exactly */
	/* The worker's queries are scans of the outbox and small catalog reads,
	 * run once each: compiling them (a backlog's scan crosses jit_above_cost)
	 * took longer than running them. */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	my_slot = shm::SlotFor(dboid, true);
	if (my_slot == nullptr)
		ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
		                errmsg("pg_dualwrite serves at most %d databases", shm::kMaxDatabases)));
	my_slot->pid = MyProcPid;
	/* We may have crashed (or the server): look at every server for
	 * prepared transactions of sync mode left in doubt. */
	my_slot->resolve_all = true;
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
		ResolveGuarded();
		/* Wake for the next pass, or sooner if a backend asks (its latch set). */
		long until_resolve = (next_resolve - GetCurrentTimestamp()) / 1000;
		wait_ms = Min(wait_ms, Max(until_resolve, 1));
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

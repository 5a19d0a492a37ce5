/*-------------------------------------------------------------------------
 * launcher.cpp
 *    The launcher: a static background worker that keeps one delivery
 *    worker running per database that has pg_dualwrite.
 *
 * It connects to no database (it reads only the shared catalog
 * pg_database), starts a dynamic worker (BGW_NEVER_RESTART, notifying us)
 * for every connectable database, and starts it again when it exits,
 * no sooner than kRestartDelayMs after its last start.  A worker that finds
 * no pg_dualwrite in its database exits and is not started again until
 * CREATE EXTENSION (or dualwrite._wake()) sets the launcher's latch.
 *
 * IDENTIFICATION  src/worker/launcher.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "shmem/shmem.hpp"
#include "worker/worker.hpp"

extern "C" {
#include "access/genam.h"
#include "catalog/pg_database.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "tcop/tcopprot.h"
}

namespace pgdw::worker {

/* A crashing worker is started again at most this often. */
constexpr long kRestartDelayMs = 5000;
/* Rescan pg_database at least this often (a new database, a dropped one). */
constexpr long kRescanMs = 10000;
/* Databases without the extension are looked at again this often, in case
 * a wake-up was missed (e.g. the launcher was restarting at the time). */
constexpr long kNoExtensionRetryMs = 60000;

struct LaunchState {
	Oid dboid;
	BackgroundWorkerHandle *handle; /* TopMemoryContext */
	TimestampTz started_at;
	bool no_extension;              /* last worker found no extension */
};
static LaunchState launched[shm::kMaxDatabases];
static bool warned_no_slots = false;

void
RegisterLauncher()
{
	BackgroundWorker bgw;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "pg_dualwrite");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "dualwrite_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_dualwrite launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "pg_dualwrite launcher");
	RegisterBackgroundWorker(&bgw);
}

static void
StartWorker(LaunchState *ls)
{
	BackgroundWorker bgw;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART; /* the launcher restarts it */
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "pg_dualwrite");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "dualwrite_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_dualwrite worker %u", ls->dboid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "pg_dualwrite worker");
	bgw.bgw_main_arg = ObjectIdGetDatum(ls->dboid);
	bgw.bgw_notify_pid = MyProcPid;

	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	BackgroundWorkerHandle *handle = nullptr;
	bool ok = RegisterDynamicBackgroundWorker(&bgw, &handle);
	MemoryContextSwitchTo(old);
	ls->started_at = GetCurrentTimestamp();
	if (!ok) {
		if (!warned_no_slots)
			ereport(WARNING, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			                  errmsg("pg_dualwrite could not start a worker for database %u", ls->dboid),
			                  errhint("Raise max_worker_processes.")));
		warned_no_slots = true;
		return;
	}
	warned_no_slots = false;
	if (ls->handle != nullptr)
		pfree(ls->handle);
	ls->handle = handle;
}

/* Connectable, non-template databases. */
static int
ListDatabases(Oid *out, int max)
{
	int n = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	Relation rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
	HeapTuple tup;
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr && n < max) {
		Form_pg_database db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tup));
		if (db->datallowconn && !db->datistemplate)
			out[n++] = db->oid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return n;
}

/* Start or restart workers; returns true if one was held back by the
 * restart delay (so the caller looks again soon). */
static bool
Supervise(bool rescan_all)
{
	bool deferred = false;
	Oid dbs[shm::kMaxDatabases];
	int ndbs = ListDatabases(dbs, shm::kMaxDatabases);
	TimestampTz now = GetCurrentTimestamp();
	for (int i = 0; i < ndbs; i++) {
		LaunchState *ls = nullptr;
		for (auto &l : launched)
			if (l.dboid == dbs[i])
				ls = &l;
		if (ls == nullptr)
			for (auto &l : launched)
				if (ls == nullptr && l.dboid == InvalidOid) {
					ls = &l;
					memset(ls, 0, sizeof(*ls));
					ls->dboid = dbs[i];
				}
		if (ls == nullptr)
			break;
		if (ls->handle != nullptr) {
			pid_t pid;
			if (GetBackgroundWorkerPid(ls->handle, &pid) != BGWH_STOPPED)
				continue; /* running or starting */
			shm::DbSlot *slot = shm::SlotFor(ls->dboid, false);
			ls->no_extension = slot != nullptr && slot->state == shm::kStateNoExtension;
			if (slot != nullptr && slot->state != shm::kStateNoExtension)
				shm::SetState(slot, shm::kStateStopped, nullptr);
			pfree(ls->handle);
			ls->handle = nullptr;
		}
		if (ls->no_extension && !rescan_all && !TimestampDifferenceExceeds(ls->started_at, now, kNoExtensionRetryMs))
			continue;
		if (!TimestampDifferenceExceeds(ls->started_at, now, kRestartDelayMs) && ls->started_at != 0) {
			deferred = true;
			continue;
		}
		ls->no_extension = false;
		StartWorker(ls);
	}
	/* Forget databases that are gone. */
	for (auto &l : launched) {
		bool present = false;
		for (int i = 0; i < ndbs; i++)
			present = present || dbs[i] == l.dboid;
		if (!present && l.dboid != InvalidOid && l.handle == nullptr) {
			shm::DbSlot *slot = shm::SlotFor(l.dboid, false);
			if (slot != nullptr)
				slot->dboid = InvalidOid;
			l.dboid = InvalidOid;
		}
	}
	return deferred;
}

static void
LauncherMain()
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
	pgstat_report_appname("pg_dualwrite launcher");

	shm::Shared *shared = shm::Get();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->launcher_pid = MyProcPid;
	shared->launcher_latch = MyLatch;
	LWLockRelease(shared->lock);

	bool rescan_all = true;
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		bool deferred = Supervise(rescan_all);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, deferred ? 1000 : kRescanMs,
		                 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		/* Databases without the extension are retried on request (CREATE
		 * EXTENSION calls dualwrite._wake() at commit); a request that met
		 * the restart delay stays pending until it could be served. */
		rescan_all = shm::TakeWakeRequest() || (rescan_all && deferred);
	}
}

} // namespace pgdw::worker

extern "C" {
PGDLLEXPORT void
dualwrite_launcher_main(Datum arg)
{
	pgdw::pg_entry([] { pgdw::worker::LauncherMain(); });
}
}

/*-------------------------------------------------------------------------
 * txn.cpp
 *    Sync mode's commit protocol, driven by the transaction callbacks
 *    (steps 2-4 of sync.hpp): what a transaction noted, the backlog check,
 *    shipping and PREPARE at pre-commit, COMMIT PREPARED after the local
 *    commit, ROLLBACK PREPARED after an abort.
 *
 * Failure handling at pre-commit runs the shipping in an internal
 * subtransaction: its rollback releases whatever the failed step held
 * (buffer pins, relations, the GUC nest level of the pinned output
 * settings) and undoes the deletion of the shipped outbox rows, so the
 * `queue` policy can commit the transaction with its changes still in the
 * outbox.  After the local commit nothing may raise: errors there become
 * WARNINGs and the resolver finishes the job.
 *
 * State is per backend, reset at every transaction end; the noted
 * positions live in TopTransactionContext.  No C++ object is alive across
 * an ereport here.
 *
 * IDENTIFICATION  src/sync/txn.cpp
 *-------------------------------------------------------------------------
 */
#include "sync/internal.hpp"
#include "sync/sync.hpp"

#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "core/gid.hpp"
#include "outbox/image.hpp"
#include "remote/connection.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"
}

namespace pgdw::sync {

constexpr int kMaxServers = 16;
constexpr int kMaxMarked = 256;
constexpr int kGidLen = 128;

/* What the current transaction did (reset at its end). */
static Noted *noted = nullptr;
static int nnoted = 0, noted_cap = 0;
/* Tables this transaction marked as queued (EndQueued at its end). */
static Oid marked[kMaxMarked];
static int nmarked = 0;
/* Remote transactions prepared for it. */
static struct {
	Session *session;
	char gid[kGidLen];
} prepared[kMaxServers];
static int nprepared = 0;
/* The sync tables it wrote, and whether they went through the outbox (counted at commit). */
static Oid counted[kMaxMarked];
static int ncounted = 0;
static bool counted_fallback = false;

static void
Reset()
{
	noted = nullptr; /* TopTransactionContext is gone */
	nnoted = noted_cap = 0;
	nmarked = nprepared = ncounted = 0;
	counted_fallback = false;
}

void
NoteChange(Relation rel, const outbox::Position &pos)
{
	if (nnoted == noted_cap) {
		int cap = noted_cap == 0 ? 64 : noted_cap * 2;
		noted = static_cast<Noted *>(noted == nullptr ? MemoryContextAlloc(TopTransactionContext, sizeof(Noted) * cap)
		                                              : repalloc_huge(noted, sizeof(Noted) * cap));
		noted_cap = cap;
	}
	noted[nnoted].pos = pos;
	noted[nnoted].root = FlaggedRoot(rel);
	nnoted++;
}

static void
Mark(Oid relid)
{
	for (int i = 0; i < nmarked; i++)
		if (marked[i] == relid)
			return;
	if (nmarked == kMaxMarked)
		ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
		                errmsg("pg_dualwrite: a transaction can route at most %d sync tables through the outbox",
		                       kMaxMarked)));
	shm::MarkQueued(relid);
	marked[nmarked++] = relid;
}

void
MarkQueuedInThisTransaction(Oid relid)
{
	Mark(relid);
}

/* Ask the worker's resolver to look at every server soon. */
static void
RequestResolve()
{
	shm::DbSlot *slot = shm::SlotFor(MyDatabaseId, false);
	if (slot != nullptr)
		slot->resolve_all = true; /* a flag: a torn read only delays it one pass */
}

/*
 * Test pause points (dualwrite.sync_test_pause, superuser only): log, then
 * wait until dualwrite._debug_fault('sync_resume') or 300 s.  After the
 * local commit interrupts are held, so only a kill or an immediate
 * shutdown ends the wait early: what the crash tests want.
 */
static void
Pause(int point, const char *name)
{
	if (guc::sync_test_pause != point)
		return;
	ereport(LOG, (errmsg("pg_dualwrite: sync test pause at %s (pid %d)", name, MyProcPid)));
	for (int i = 0; i < 3000 && !shm::TakeFault("sync_resume"); i++) {
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* The distinct flagged tables of the noted changes, in first-change order. */
static Oid *
NotedRoots(int *nroots)
{
	Oid *roots = static_cast<Oid *>(palloc(sizeof(Oid) * nnoted));
	int n = 0;
	for (int i = 0; i < nnoted; i++) {
		if (n > 0 && roots[n - 1] == noted[i].root)
			continue;
		bool seen = false;
		for (int j = 0; j < n && !seen; j++)
			seen = roots[j] == noted[i].root;
		if (!seen)
			roots[n++] = noted[i].root;
	}
	*nroots = n;
	return roots;
}

static int
PolicyOf(const Table *t)
{
	return t->policy >= 0 ? t->policy : guc::sync_failure;
}

/* Must the table's changes go through the outbox (it is paused, cannot be
 * delivered now, or older changes of it are still queued)? */
static bool
MustQueue(const Table *t)
{
	return t->cfg->paused || t->cfg->problem != nullptr || shm::Backlog(t->relid);
}

/* Wait up to dualwrite.sync_backlog_wait for the worker to deliver the
 * queued changes of the tables (paused or undeliverable ones need not
 * wait: they are queued anyway). */
static void
WaitForBacklog(Table **tables, int n)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), guc::sync_backlog_wait_ms);
	for (;;) {
		bool waiting = false;
		for (int i = 0; i < n && !waiting; i++)
			waiting = tables[i] != nullptr && !tables[i]->cfg->paused && tables[i]->cfg->problem == nullptr &&
			          shm::Backlog(tables[i]->relid);
		if (!waiting || GetCurrentTimestamp() >= deadline)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Leave the transaction's sync changes in the outbox, for the worker. */
static void
QueueAll(Table **tables, int n)
{
	for (int i = 0; i < n; i++)
		if (tables[i] != nullptr)
			Mark(tables[i]->relid);
	counted_fallback = true;
}

/* "a, b": the tables of `server` among them, for messages. */
static const char *
TableNames(Table **tables, int n, const char *server)
{
	StringInfoData s;
	initStringInfo(&s);
	for (int i = 0; i < n; i++)
		if (tables[i] != nullptr && (server == nullptr || strcmp(tables[i]->cfg->target_server, server) == 0)) {
			const char *name = get_rel_name(tables[i]->relid);
			appendStringInfo(&s, "%s%s", s.len > 0 ? ", " : "", name != nullptr ? name : "?");
		}
	return s.data;
}

/* ROLLBACK PREPARED of prepared[i]; a failure is the resolver's work. */
static void
RollbackOne(int i)
{
	Session *s = prepared[i].session;
	if (s->conn == nullptr) {
		RequestResolve();
		return;
	}
	char sql[kGidLen + 32];
	snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'", prepared[i].gid);
	PG_TRY();
	{
		(void) remote::ExecUnlessMissing(s->conn, sql); /* missing: the resolver did it */
	}
	PG_CATCH();
	{
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING, (errcode(edata->sqlerrcode),
		                  errmsg("pg_dualwrite: could not roll back prepared transaction \"%s\" on server \"%s\": %s",
		                         prepared[i].gid, s->server, edata->message),
		                  errdetail("The worker's resolver rolls it back.")));
		FreeErrorData(edata);
		DropSession(s);
		RequestResolve();
	}
	PG_END_TRY();
}

static void
RollbackPrepared()
{
	for (int i = 0; i < nprepared; i++)
		RollbackOne(i);
	nprepared = 0;
}

/* The noted changes of tables still in sync mode (the rest stay queued). */
static Noted *
ShippedChanges(int *n)
{
	Noted *out = static_cast<Noted *>(palloc(sizeof(Noted) * nnoted));
	int k = 0;
	for (int i = 0; i < nnoted; i++)
		if (TableFor(noted[i].root) != nullptr)
			out[k++] = noted[i];
	*n = k;
	return out;
}

/*
 * Ship and prepare on every target server, in an internal subtransaction.
 * Returns NULL on success; else the error (in the caller's context), with
 * everything prepared rolled back and the outbox rows back in place.
 */
static ErrorData *
ShipAll(Table **tables, int ntables, const char **failed_server)
{
	int nship;
	Noted *ship = ShippedChanges(&nship);
	/* The target servers, in the order their tables were first written. */
	const char *servers[kMaxServers];
	Oid users[kMaxServers];
	int nservers = 0;
	for (int i = 0; i < ntables; i++) {
		if (tables[i] == nullptr)
			continue;
		bool seen = false;
		for (int j = 0; j < nservers && !seen; j++)
			seen = strcmp(servers[j], tables[i]->cfg->target_server) == 0;
		if (seen)
			continue;
		if (nservers == kMaxServers)
			ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			                errmsg("pg_dualwrite: a transaction can write sync tables of at most %d servers", kMaxServers)));
		servers[nservers] = tables[i]->cfg->target_server;
		users[nservers] = tables[i]->cfg->deliver_as;
		nservers++;
	}

	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData *failure = nullptr;
	Session *volatile inflight = nullptr;
	volatile int current = -1;
	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int level = outbox::PinTextOutput();
		uint64 system_id = GetSystemIdentifier();
		uint64 fxid = U64FromFullTransactionId(GetTopFullTransactionId());
		for (int k = 0; k < nservers; k++) {
			current = k;
			inflight = nullptr;
			Session *s = SessionFor(servers[k], users[k]);
			inflight = s;
			char gid[kGidLen];
			pg_entry([&] {
				std::string g = core::FormatGid({system_id, MyDatabaseId, fxid, s->serverid});
				strlcpy(gid, g.c_str(), sizeof(gid));
			});
			Pause(guc::kPauseBeforePrepare, "before_prepare");
			ShipAndPrepare(s, ship, nship, servers[k], gid);
			prepared[nprepared].session = s;
			strlcpy(prepared[nprepared].gid, gid, kGidLen);
			nprepared++;
			inflight = nullptr;
		}
		Pause(guc::kPauseAfterPrepare, "after_prepare");
		outbox::UnpinTextOutput(level);
		DeleteShipped(ship, nship);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		failure = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (inflight != nullptr)
			DropSession(inflight); /* its state is unknown */
		*failed_server = current >= 0 ? servers[current] : nullptr;
		RollbackPrepared();
	}
	PG_END_TRY();
	return failure;
}

static void PreCommitWork();

static void
PreCommit()
{
	if (nnoted == 0)
		return;
	/* Reading the table configuration (SPI) and output functions want one;
	 * an error on the way is cleaned up by the abort. */
	bool pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	PreCommitWork();
	if (pushed)
		PopActiveSnapshot();
}

static void
PreCommitWork()
{
	int nroots;
	Oid *roots = NotedRoots(&nroots);
	Table **tables = static_cast<Table **>(palloc0(sizeof(Table *) * nroots));
	int nsync = 0;
	for (int i = 0; i < nroots; i++) {
		/* NULL: switched to async in this transaction; its rows stay queued. */
		tables[i] = TableFor(roots[i]);
		if (tables[i] != nullptr) {
			nsync++;
			if (ncounted < kMaxMarked)
				counted[ncounted++] = roots[i];
		}
	}
	if (nsync == 0)
		return;

	/* Per-key order across modes: never overtake a queued change. */
	WaitForBacklog(tables, nroots);
	bool queue = false;
	for (int i = 0; i < nroots; i++) {
		Table *t = tables[i];
		if (t == nullptr || !MustQueue(t))
			continue;
		queue = true;
		if (t->cfg->paused || PolicyOf(t) == guc::kSyncFailQueue)
			continue;
		if (t->cfg->problem != nullptr)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			                errmsg("pg_dualwrite: sync table \"%s\" cannot be delivered: %s", get_rel_name(t->relid),
			                       t->cfg->problem),
			                errhint("Fix the table's configuration (see dualwrite.status), or set its sync_failure "
			                        "to 'queue' to let its transactions go through the outbox meanwhile.")));
		ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
		                errmsg("pg_dualwrite: sync table \"%s\" has older changes queued in the outbox",
		                       get_rel_name(t->relid)),
		                errdetail("A sync transaction must not overtake them; the worker did not deliver them within "
		                          "dualwrite.sync_backlog_wait (%d ms).",
		                          guc::sync_backlog_wait_ms),
		                errhint("See dualwrite.status for why delivery is behind, or set the table's sync_failure "
		                        "to 'queue' to let such transactions go through the outbox.")));
	}
	if (queue) {
		/* All or nothing: the worker delivers the transaction whole. */
		QueueAll(tables, nroots);
		return;
	}

	const char *server = nullptr;
	ErrorData *failure = ShipAll(tables, nroots, &server);
	if (failure == nullptr)
		return;

	bool all_queue = true;
	for (int i = 0; i < nroots; i++)
		if (tables[i] != nullptr && PolicyOf(tables[i]) != guc::kSyncFailQueue)
			all_queue = false;
	bool interrupted = failure->sqlerrcode == ERRCODE_QUERY_CANCELED || failure->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN;
	const char *names = TableNames(tables, nroots, server);
	if (all_queue && !interrupted) {
		ereport(WARNING, (errcode(failure->sqlerrcode),
		                  errmsg("pg_dualwrite: sync write of table %s failed, its changes are queued: %s", names,
		                         failure->message),
		                  failure->detail != nullptr ? errdetail_internal("%s", failure->detail) : 0,
		                  errhint("sync_failure is 'queue': the transaction commits and the worker delivers its "
		                          "changes later.")));
		QueueAll(tables, nroots);
		FreeErrorData(failure);
		return;
	}
	if (interrupted)
		ReThrowError(failure);
	ereport(ERROR, (errcode(failure->sqlerrcode),
	                errmsg("pg_dualwrite: sync write of table %s failed: %s", names, failure->message),
	                failure->detail != nullptr ? errdetail_internal("%s", failure->detail) : 0,
	                failure->hint != nullptr ? errhint("%s", failure->hint) : 0));
}

/* COMMIT PREPARED of prepared[i] (sent only, with nowait).  Never raises. */
static void
CommitOne(int i)
{
	Session *s = prepared[i].session;
	char sql[kGidLen + 32];
	snprintf(sql, sizeof(sql), "COMMIT PREPARED '%s'", prepared[i].gid);
	PG_TRY();
	{
		if (s->conn == nullptr)
			ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE), errmsg("the connection is closed")));
		if (guc::sync_remote_commit == guc::kRemoteNowait) {
			remote::SendCommand(s->conn, sql);
			s->pending = true;
			strlcpy(s->pending_gid, prepared[i].gid, sizeof(s->pending_gid));
		} else
			(void) remote::ExecUnlessMissing(s->conn, sql); /* missing: the resolver did it */
	}
	PG_CATCH();
	{
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING, (errcode(edata->sqlerrcode),
		                  errmsg("pg_dualwrite: the transaction committed, but COMMIT PREPARED failed on server "
		                         "\"%s\": %s",
		                         s->server, edata->message),
		                  errdetail("Prepared transaction \"%s\" is committed by the worker's resolver within "
		                            "dualwrite.resolve_interval once the server is reachable.",
		                            prepared[i].gid)));
		FreeErrorData(edata);
		DropSession(s);
		RequestResolve();
	}
	PG_END_TRY();
}

/* After the local commit: make it durable, then COMMIT PREPARED.  Never raises. */
static void
AfterCommit()
{
	if (nprepared > 0) {
		/* synchronous_commit = off returns before the commit record is on disk. */
		XLogFlush(XactLastCommitEnd);
		Pause(guc::kPauseAfterLocalCommit, "after_local_commit");
	}
	/*
	 * Interrupts are held here (CommitTransaction), so this wait cannot be
	 * cancelled.  Waiting long gains nothing: the local commit stands and the
	 * resolver commits the prepared transaction anyway.  So the client gets
	 * its COMMIT back within dualwrite.connect_timeout (10 s) at the most,
	 * even from a modern side that stopped answering.  CommitOne never raises,
	 * so the setting is always put back.
	 */
	int saved_timeout = guc::remote_timeout_ms;
	int bound = guc::connect_timeout_s * 1000;
	if (bound > 0 && (saved_timeout == 0 || saved_timeout > bound))
		guc::remote_timeout_ms = bound;
	for (int i = 0; i < nprepared; i++)
		CommitOne(i);
	guc::remote_timeout_ms = saved_timeout;
	for (int i = 0; i < ncounted; i++)
		shm::CountSyncTransaction(counted[i], counted_fallback);
}

static void
EndTransaction()
{
	for (int i = 0; i < nmarked; i++)
		shm::EndQueued(marked[i]);
	Reset();
}

extern "C" {
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event) {
	case XACT_EVENT_PRE_COMMIT:
		PreCommit();
		break;
	case XACT_EVENT_PRE_PREPARE:
		if (nnoted > 0 || nmarked > 0)
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			                errmsg("pg_dualwrite: cannot PREPARE a transaction that wrote a sync table or changed a "
			                       "table's mode"),
			                errdetail("Sync mode runs its own two-phase commit with the modern database.")));
		break;
	case XACT_EVENT_COMMIT:
		AfterCommit();
		EndTransaction();
		break;
	case XACT_EVENT_ABORT:
		RollbackPrepared();
		EndTransaction();
		break;
	case XACT_EVENT_PREPARE:
		EndTransaction();
		break;
	default:
		break; /* parallel workers never write */
	}
}
}

void
Install()
{
	RegisterXactCallback(xact_callback, nullptr);
}

} // namespace pgdw::sync

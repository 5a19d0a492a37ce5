/*-------------------------------------------------------------------------
 * sync_tables.cpp
 *    Per-table sync state in shared memory (see sync_tables.hpp).  Entries
 *    are few and short-lived operations: one array, the shared lock.
 *
 * IDENTIFICATION  src/shmem/sync_tables.cpp
 *-------------------------------------------------------------------------
 */
#include "shmem/sync_tables.hpp"

#include "shmem/shmem.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/timestamp.h"
}

namespace pgdw::shm {

static SyncTable *
Find(Shared *sh, Oid dboid, Oid relid)
{
	for (auto &e : sh->sync_tables)
		if (e.dboid == dboid && e.relid == relid)
			return &e;
	return nullptr;
}

/* The entry of (this database, relid), created as "unknown" (a backlog)
 * when missing; reuses the least recently used entry when full (which can
 * only make a table look backlogged: safe).  Caller holds the lock
 * exclusively. */
static SyncTable *
FindOrCreate(Shared *sh, Oid relid)
{
	SyncTable *e = Find(sh, MyDatabaseId, relid);
	if (e == nullptr) {
		SyncTable *victim = nullptr;
		for (auto &c : sh->sync_tables) {
			if (c.dboid == InvalidOid) {
				victim = &c;
				break;
			}
			if (c.open == 0 && (victim == nullptr || c.used_at < victim->used_at))
				victim = &c;
		}
		if (victim == nullptr)
			ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			                errmsg("pg_dualwrite tracks at most %d sync tables at once", kMaxSyncTables)));
		e = victim;
		memset(e, 0, sizeof(*e));
		e->dboid = MyDatabaseId;
		e->relid = relid;
		e->queued = 1; /* unknown: the worker's next round tells */
	}
	e->used_at = GetCurrentTimestamp();
	return e;
}

static Shared *
Require()
{
	Shared *sh = Get();
	if (sh == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("pg_dualwrite sync mode needs the library in shared_preload_libraries"),
		                errhint("Add pg_dualwrite to shared_preload_libraries and restart the server.")));
	return sh;
}

bool
Backlog(Oid relid)
{
	Shared *sh = Require();
	/* Every sync commit asks: shared, unless the entry must be created. */
	LWLockAcquire(sh->lock, LW_SHARED);
	SyncTable *e = Find(sh, MyDatabaseId, relid);
	bool backlog = e != nullptr && e->queued != e->delivered;
	LWLockRelease(sh->lock);
	if (e != nullptr)
		return backlog;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	e = FindOrCreate(sh, relid);
	backlog = e->queued != e->delivered;
	LWLockRelease(sh->lock);
	return backlog;
}

void
MarkQueued(Oid relid)
{
	Shared *sh = Require();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	SyncTable *e = FindOrCreate(sh, relid);
	e->queued++;
	e->open++;
	LWLockRelease(sh->lock);
}

/* Called from transaction end: must not raise. */
void
EndQueued(Oid relid)
{
	Shared *sh = Get();
	if (sh == nullptr)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	SyncTable *e = Find(sh, MyDatabaseId, relid);
	if (e != nullptr && e->open > 0)
		e->open--;
	LWLockRelease(sh->lock);
}

void
ForgetBacklog(Oid relid)
{
	Shared *sh = Require();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	SyncTable *e = FindOrCreate(sh, relid);
	if (e->open == 0)
		e->delivered = e->queued;
	LWLockRelease(sh->lock);
}

void
RoundStart(Oid dboid)
{
	Shared *sh = Get();
	if (sh == nullptr)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (auto &e : sh->sync_tables)
		if (e.dboid == dboid) {
			e.round_valid = e.open == 0;
			e.round = e.queued;
		}
	LWLockRelease(sh->lock);
}

void
RoundDelivered(Oid dboid, Oid relid)
{
	Shared *sh = Get();
	if (sh == nullptr)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	SyncTable *e = Find(sh, dboid, relid);
	if (e != nullptr && e->round_valid && e->round > e->delivered)
		e->delivered = e->round;
	if (e != nullptr)
		e->round_valid = false;
	LWLockRelease(sh->lock);
}

void
CountSyncTransaction(Oid relid, bool fallback)
{
	Shared *sh = Get();
	if (sh == nullptr)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	SyncTable *e = Find(sh, MyDatabaseId, relid);
	if (e != nullptr) {
		e->used_at = GetCurrentTimestamp(); /* in use: not the entry to reuse */
		e->transactions++;
		if (fallback)
			e->fallbacks++;
	}
	LWLockRelease(sh->lock);
}

bool
SyncCounters(Oid relid, uint64 *transactions, uint64 *fallbacks, bool *backlog)
{
	Shared *sh = Get();
	if (sh == nullptr)
		return false;
	LWLockAcquire(sh->lock, LW_SHARED);
	SyncTable *e = Find(sh, MyDatabaseId, relid);
	if (e != nullptr) {
		*transactions = e->transactions;
		*fallbacks = e->fallbacks;
		*backlog = e->queued != e->delivered;
	}
	LWLockRelease(sh->lock);
	return e != nullptr;
}

} // namespace pgdw::shm

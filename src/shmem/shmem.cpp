/*-------------------------------------------------------------------------
 * shmem.cpp
 *    Shared memory of pg_dualwrite (see shmem.hpp).
 *
 * Called from PostgreSQL hooks and C++ code holding no objects with
 * destructors: PostgreSQL functions are called directly.
 *
 * IDENTIFICATION  src/shmem/shmem.cpp
 *-------------------------------------------------------------------------
 */
#include "shmem/shmem.hpp"

#include "boundary/boundary.hpp"

namespace pgdw::shm {

static Shared *shared = nullptr;
static shmem_request_hook_type prev_request_hook = nullptr;
static shmem_startup_hook_type prev_startup_hook = nullptr;

/* Cached slot of MyDatabaseId, re-validated on every use. */
static DbSlot *my_slot = nullptr;

const char *
StateName(int state)
{
	switch (state) {
	case kStateFree: return "free";
	case kStateStarting: return "starting";
	case kStateIdle: return "idle";
	case kStateRunning: return "running";
	case kStateBackoff: return "backing off";
	case kStateUnreachable: return "target unreachable";
	case kStateNoExtension: return "no extension";
	case kStateStopped: return "stopped";
	}
	return "unknown";
}

static void
RequestShmem()
{
	if (prev_request_hook)
		prev_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(Shared)));
	RequestNamedLWLockTranche("pg_dualwrite", 1);
}

static void
StartupShmem()
{
	if (prev_startup_hook)
		prev_startup_hook();

	bool found;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = static_cast<Shared *>(ShmemInitStruct("pg_dualwrite", sizeof(Shared), &found));
	if (!found) {
		memset(shared, 0, sizeof(Shared));
		shared->lock = &(GetNamedLWLockTranche("pg_dualwrite"))->lock;
		for (int i = 0; i < kMaxDatabases; i++) {
			pg_atomic_init_u32(&shared->slots[i].capture_gen, 0);
			pg_atomic_init_u64(&shared->slots[i].skipped_at, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

extern "C" {
static void
request_hook(void)
{
	pg_entry([] { RequestShmem(); });
}
static void
startup_hook(void)
{
	pg_entry([] { StartupShmem(); });
}
}

void
InstallHooks()
{
	prev_request_hook = shmem_request_hook;
	shmem_request_hook = request_hook;
	prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = startup_hook;
}

Shared *
Get()
{
	return shared;
}

DbSlot *
SlotFor(Oid dboid, bool create)
{
	if (shared == nullptr)
		return nullptr;
	DbSlot *found = nullptr;
	LWLockAcquire(shared->lock, create ? LW_EXCLUSIVE : LW_SHARED);
	for (int i = 0; i < kMaxDatabases && found == nullptr; i++)
		if (shared->slots[i].dboid == dboid)
			found = &shared->slots[i];
	for (int i = 0; create && i < kMaxDatabases && found == nullptr; i++) {
		DbSlot *s = &shared->slots[i];
		if (s->dboid == InvalidOid) {
			uint32 gen = pg_atomic_read_u32(&s->capture_gen);
			memset(s, 0, sizeof(DbSlot));
			pg_atomic_init_u32(&s->capture_gen, gen % 3);
			pg_atomic_init_u64(&s->skipped_at, 0);
			s->dboid = dboid;
			s->state = kStateStarting;
			s->state_since = GetCurrentTimestamp();
			found = s;
		}
	}
	LWLockRelease(shared->lock);
	return found;
}

uint32
CaptureGeneration()
{
	/*
	 * Read without a lock: a stale generation is harmless.  The worker scans
	 * every generation, and truncates one only under an AccessExclusiveLock
	 * that waits for every transaction that inserted into it (outbox.hpp).
	 */
	if (my_slot == nullptr || my_slot->dboid != MyDatabaseId) {
		my_slot = nullptr;
		if (shared == nullptr)
			return 0;
		for (int i = 0; i < kMaxDatabases; i++)
			if (shared->slots[i].dboid == MyDatabaseId)
				my_slot = &shared->slots[i];
		if (my_slot == nullptr)
			return 0;
	}
	return pg_atomic_read_u32(&my_slot->capture_gen) % 3;
}

/* Wake-ups wait for commit (pglogical's pattern): a worker started before
 * CREATE EXTENSION commits would not see the extension and stop. */
static bool wake_at_commit = false;

extern "C" {
static void
wake_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) {
		if (wake_at_commit)
			pg_entry([] { WakeLauncherNow(); }); /* takes an LWLock, sets a latch: cannot fail */
		wake_at_commit = false;
	} else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_at_commit = false;
}
}

void
WakeLauncher()
{
	static bool registered = false;
	if (!registered) {
		RegisterXactCallback(wake_xact_callback, nullptr);
		registered = true;
	}
	wake_at_commit = true;
}

void
WakeLauncherNow()
{
	if (shared == nullptr)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->wake_requested = true;
	Latch *latch = shared->launcher_latch;
	LWLockRelease(shared->lock);
	if (latch != nullptr)
		SetLatch(latch);
}

bool
TakeWakeRequest()
{
	if (shared == nullptr)
		return false;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	bool requested = shared->wake_requested;
	shared->wake_requested = false;
	LWLockRelease(shared->lock);
	return requested;
}

void
NoteSkippedCapture()
{
	DbSlot *slot = SlotFor(MyDatabaseId, false);
	if (slot != nullptr)
		pg_atomic_write_u64(&slot->skipped_at, static_cast<uint64>(GetCurrentTimestamp()));
}

TimestampTz
LastSkippedCapture()
{
	DbSlot *slot = SlotFor(MyDatabaseId, false);
	return slot != nullptr ? static_cast<TimestampTz>(pg_atomic_read_u64(&slot->skipped_at)) : 0;
}

void
ArmFault(Oid dboid, const char *point)
{
	DbSlot *slot = SlotFor(dboid, true);
	if (slot == nullptr)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(slot->fault, point, sizeof(slot->fault));
	LWLockRelease(shared->lock);
}

bool
TakeFault(const char *point)
{
	DbSlot *slot = SlotFor(MyDatabaseId, false);
	if (slot == nullptr || slot->fault[0] == '\0')
		return false;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	bool hit = strcmp(slot->fault, point) == 0;
	if (hit)
		slot->fault[0] = '\0';
	LWLockRelease(shared->lock);
	return hit;
}

void
SetState(DbSlot *slot, int state, const char *error)
{
	if (slot == nullptr)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (slot->state != state)
		slot->state_since = GetCurrentTimestamp();
	slot->state = state;
	if (error != nullptr) {
		strlcpy(slot->last_error, error, kErrorLen);
		slot->last_error_at = GetCurrentTimestamp();
	}
	LWLockRelease(shared->lock);
}

} // namespace pgdw::shm

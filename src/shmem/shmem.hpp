/*-------------------------------------------------------------------------
 * shmem.hpp
 *    Shared state between the launcher, the per-database workers, the
 *    capture trigger and the status functions.
 *
 * Nothing here is needed for correctness after a crash: the durable
 * truth is in the outbox tables and in the progress row on the modern
 * side.  Shared memory carries what must be fast (which outbox table
 * capture writes to) or live (worker states for dualwrite.workers).
 *
 * IDENTIFICATION  src/shmem/shmem.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"
#include "shmem/sync_tables.hpp"
#include "shmem/tracking.hpp"

extern "C" {
#include "port/atomics.h"
}

namespace pgdw::shm {

/* One worker per database; more databases than this are not served. */
constexpr int kMaxDatabases = 64;
constexpr int kErrorLen = 256;

enum WorkerState : int {
	kStateFree = 0,     /* slot unused */
	kStateStarting,     /* registered, not yet running */
	kStateIdle,         /* running, nothing to deliver */
	kStateRunning,      /* delivering */
	kStateBackoff,      /* last round failed, waiting to retry */
	kStateUnreachable,  /* cannot connect to the modern database */
	kStateNoExtension,  /* database has no pg_dualwrite: not served */
	kStateStopped,      /* worker exited */
};

const char *StateName(int state);

struct DbSlot {
	Oid dboid;                     /* InvalidOid: free */
	pid_t pid;                     /* worker pid, 0 if none */
	int state;                     /* WorkerState */
	TimestampTz state_since;       /* when state last changed */
	TimestampTz last_batch_at;     /* last remote commit of a batch */
	uint64 applied_total;          /* changes applied since start */
	double apply_rate;             /* changes/s while delivering (moving average) */
	char last_error[kErrorLen];    /* last delivery error, "" if none */
	TimestampTz last_error_at;
	pg_atomic_uint32 capture_gen;  /* outbox generation capture writes to */
	uint64 batches;                /* remote transactions committed since start */
	pg_atomic_uint64 skipped_at;   /* last change not captured (dualwrite.enabled off), 0: none */
	char fault[32];                /* armed test fault point, "" if none */
	/* sync mode's in-doubt transactions on the modern side (resolver) */
	int in_doubt;                  /* prepared, not yet resolved, at the last look */
	TimestampTz oldest_in_doubt;   /* when the oldest of them was prepared, 0: none */
	bool resolve_all;              /* look at every server, not only those of sync tables */
	TrackingState tracking;        /* incremental reconcile (tracking.hpp) */
};

struct Shared {
	LWLock *lock;                  /* protects slot allocation and texts */
	pid_t launcher_pid;
	Latch *launcher_latch;         /* set to make the launcher rescan */
	bool wake_requested;           /* also look at databases without the extension */
	DbSlot slots[kMaxDatabases];
	SyncTable sync_tables[kMaxSyncTables]; /* sync_tables.hpp */
	TrackRequest track_requests[kMaxTrackRequests]; /* tracking.hpp */
};

/* Hooks, installed by _PG_init. */
void InstallHooks();

/* nullptr unless the library was preloaded. */
Shared *Get();

/* The slot of a database, allocating one if create (takes the lock). */
DbSlot *SlotFor(Oid dboid, bool create);

/* Outbox generation for new changes of this database (0 if unknown). */
uint32 CaptureGeneration();

/* Wake the launcher when the current transaction commits, so it rescans
 * databases (after CREATE EXTENSION, enable). */
void WakeLauncher();
void WakeLauncherNow();

/* Test and clear the launcher's wake-up request. */
bool TakeWakeRequest();

/*
 * Test fault points, armed by the superuser-only dualwrite._debug_fault()
 * for the TAP tests: the worker of the database fires an armed point once
 * (and disarms it) when it passes there.  Not a setting, so a restarted
 * worker does not fire it again.
 */
void ArmFault(Oid dboid, const char *point);
bool TakeFault(const char *point);

/* A change of a flagged table was not captured (dualwrite.enabled is off):
 * note when, for dualwrite.status (the worker makes it durable). */
void NoteSkippedCapture();
/* The time of the last skipped change in this database, 0 if none. */
TimestampTz LastSkippedCapture();

/* Record a worker state change (and error text) for this database. */
void SetState(DbSlot *slot, int state, const char *error);

} // namespace pgdw::shm

/*-------------------------------------------------------------------------
 * sync_tables.hpp
 *    Per-table state of sync mode in shared memory: is anything of the
 *    table still queued in the outbox, and the table's sync counters.
 *
 * Why: a sync transaction ships at its commit; a change of the same table
 * that is still queued (from the table's async period, from a `queue`
 * fallback, or routed through the outbox because of an earlier backlog)
 * was committed before it and must be applied before it (per-key commit
 * order, guarantee 3).  While a table has a backlog its sync transactions
 * wait for the worker or go through the outbox too.
 *
 * The protocol, per table:
 *  - A transaction that leaves changes of the table in the outbox calls
 *    MarkQueued() before its local commit (open++, queued++) and
 *    EndQueued() at its end (open--; commit or abort).  Set_mode() to sync
 *    marks like one, since the async changes before it are queued.
 *  - The worker calls RoundStart() before it takes its round's snapshot:
 *    for every table with open == 0 it notes round = queued.  Every
 *    transaction counted in that `queued` has ended, so it is committed
 *    (or aborted) in the snapshot taken next.  Once the round has
 *    delivered all of the table's changes of that snapshot,
 *    RoundDelivered() sets delivered = round.
 *  - Backlog(table) is queued != delivered.  A transaction that marks
 *    after RoundStart raises queued beyond round, so its changes, which
 *    the round may not have seen, keep the backlog until a later round.
 *  - Shared memory starts empty after a restart: a table without an entry
 *    is given queued = 1, delivered = 0 (unknown: a backlog), until the
 *    worker's first round clears it.  ForgetBacklog() (enable of a table
 *    that has nothing queued) starts it clean.
 *
 * IDENTIFICATION  src/shmem/sync_tables.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

extern "C" {
#include "port/atomics.h"
}

namespace pgdw::shm {

constexpr int kMaxSyncTables = 1024;

struct SyncTable {
	Oid dboid; /* InvalidOid: free */
	Oid relid;
	uint64 queued;     /* marks so far */
	uint64 delivered;  /* marks whose changes are delivered */
	uint64 round;      /* queued at RoundStart, if round_valid */
	bool round_valid;
	int open;          /* marking transactions not yet ended */
	uint64 transactions; /* sync transactions shipped (committed locally) */
	uint64 fallbacks;    /* sync transactions that went through the outbox */
	TimestampTz used_at; /* last use: the oldest free entry is reused */
};

/* Is anything of the table queued?  (Creates the entry: "unknown" = yes.) */
bool Backlog(Oid relid);
void MarkQueued(Oid relid);
void EndQueued(Oid relid);
void ForgetBacklog(Oid relid);

/* The worker's side (see above). */
void RoundStart(Oid dboid);
void RoundDelivered(Oid dboid, Oid relid);

/* Counters for dualwrite.status. */
void CountSyncTransaction(Oid relid, bool fallback);
bool SyncCounters(Oid relid, uint64 *transactions, uint64 *fallbacks, bool *backlog);

} // namespace pgdw::shm

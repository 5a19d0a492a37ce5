/*-------------------------------------------------------------------------
 * sync.hpp
 *    Sync mode: a transaction that writes a sync table commits on the
 *    legacy database only if the same changes commit on the modern one,
 *    and vice versa (SPEC guarantee 4).
 *
 * The protocol (txn.cpp), per local transaction T:
 *  1. Capture is the async path's: the row trigger appends each change to
 *     the outbox in T (same image, same order); for a sync table it also
 *     notes where (generation, TID).  A rolled-back subtransaction's rows
 *     are invisible to T itself, so savepoints need nothing more.
 *  2. Pre-commit (XACT_EVENT_PRE_COMMIT, T can still fail): T's noted rows
 *     are read back under SnapshotSelf and, per target server, sent in ONE
 *     libpq pipeline: BEGIN, a prepared upsert/delete per change (in
 *     capture order, which is per-key commit order), PREPARE TRANSACTION
 *     gid (core/gid.hpp).  One round trip, however many rows.  Then T
 *     deletes its noted outbox rows, so the worker never sees them.
 *  3. Local commit.  Then (XACT_EVENT_COMMIT) the commit record is flushed
 *     (XLogFlush: with synchronous_commit = off it may not be on disk yet,
 *     and a legacy crash must not leave the modern side committed and the
 *     legacy side not), then COMMIT PREPARED; by default the backend waits
 *     for it (dualwrite.sync_remote_commit = wait: read-your-writes on the
 *     modern side).  A failure here can no longer undo the local commit: a
 *     WARNING, and the resolver finishes the job.
 *  4. Abort after step 2 (a later pre-commit step failed, cancel, backend
 *     exit): ROLLBACK PREPARED.  If that fails too, the resolver does it.
 *  Why both sides agree: the remote transaction is durable (prepared)
 *  before the local commit record exists, and it is committed only after
 *  that record is durable.  Between the two, the local transaction's fate
 *  (committed in clog, or not in progress and not committed = aborted)
 *  decides the prepared transaction, and the gid names that transaction.
 *
 * Failures before the local commit (the modern side down, a constraint
 * violated there, a timeout) follow the table's sync_failure: `error`
 * fails T with the remote SQLSTATE, message and detail, naming the table;
 * `queue` rolls back what was prepared and commits T with its changes left
 * in the outbox, where the worker delivers them (the outbox rows were
 * written in T all along).  Cancel and termination always fail T.
 *
 * Per-key order across modes (shmem/sync_tables.hpp): while a table has
 * changes queued in the outbox, a sync transaction waits for the worker
 * (dualwrite.sync_backlog_wait), then goes through the outbox too (queue)
 * or fails (error): it must not overtake an older queued change.  A
 * transaction whose tables disagree (one must queue, one must not) fails.
 *
 * Resolution (resolver.cpp, in the per-database worker, every
 * dualwrite.resolve_interval): the modern side's prepared transactions
 * whose gid names this cluster and database are committed or rolled back
 * by their local transaction's fate; in progress: left for later.
 *
 * Connections (session.cpp): one per backend and target server, through
 * the server's delivering role's user mapping (as the worker delivers),
 * reused across transactions, dropped after an error, an ALTER SERVER or
 * USER MAPPING, and closed at backend exit.
 *
 * IDENTIFICATION  src/sync/sync.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "outbox/outbox.hpp"

namespace pgdw::sync {

/* Register the transaction callbacks (from _PG_init). */
void Install();

/* A change of sync table `rel` (the flagged table or a partition of it)
 * was appended at `pos` in the current transaction. */
void NoteChange(Relation rel, const outbox::Position &pos);

/* The table's changes queued so far are not yet delivered: mark it as
 * having a backlog until this transaction ends and the worker delivered
 * them (set_mode to sync of a table with an async past). */
void MarkQueuedInThisTransaction(Oid relid);

/* One resolver pass of the worker (inside its transaction; raises). */
void ResolveInDoubt();
/* Forget the resolver's connections (after a failed pass). */
void DropResolverConnections();

} // namespace pgdw::sync

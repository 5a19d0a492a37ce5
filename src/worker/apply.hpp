/*-------------------------------------------------------------------------
 * apply.hpp
 *    Building a batch and applying it on the modern side as one remote
 *    transaction, pipelined: a batch's COMMIT is left in flight while the
 *    next one is read and encoded.
 *
 * How a batch is applied: the rows of each target go to a temporary
 * staging table by COPY, then one DELETE of the keys whose newest change
 * is a delete and one INSERT ... ON CONFLICT DO UPDATE of the newest image
 * of the others.  A batch of inserts into one table goes straight into the
 * target by COPY (under a savepoint: a key that already exists falls back
 * to the upsert).  The tables one TRUNCATE statement truncated are
 * truncated together.  The progress row is updated in the same remote
 * transaction (drain.hpp).
 *
 * IDENTIFICATION  src/worker/apply.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "outbox/reader.hpp"
#include "worker/stream.hpp"

namespace pgdw::worker {

/* Start of a round: no batch in flight, counters for n targets (palloc'd
 * in the current, round-long context). */
void ResetApplyState(int ntargets);

/* Apply one fetched batch (n > 0) of the range (prev, cur] of `s`.  With
 * `commit`, it ends a remote transaction: the progress row (the position of
 * its last change) and COMMIT are sent and left in flight.  Without, it is a
 * chunk: applied in the remote transaction, which stays open for the next
 * batch (a legacy transaction larger than a batch, drain.hpp).  Returns the
 * changes of earlier transactions confirmed meanwhile. */
int64 ApplyBatch(Stream *s, const outbox::Change *changes, uint64 n, const char *prev, const char *cur,
                 bool commit);

/* Is a remote transaction open with chunks in it? */
bool RemoteXactOpen();

/* Commit the open remote transaction (progress at `last`, the last change
 * sent), left in flight. */
int64 CommitOpenXact(Stream *s, const char *prev, const char *cur, const outbox::Change &last);

/* Wait for the batch in flight (if any) to commit; then advance its
 * stream's progress.  Returns the changes it applied. */
int64 FinishInFlight();

/* The tables the failing remote call or decoding was about (0 when it was
 * the stream's own statement: BEGIN, progress, COMMIT). */
int BlamedTables(const Oid **relids);

/* After a failure: forget the batch in flight (its outcome is read back
 * from the modern side) and every staged row. */
void AbandonBatches();

} // namespace pgdw::worker

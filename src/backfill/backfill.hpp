/*-------------------------------------------------------------------------
 * backfill.hpp
 *    CALL dualwrite.backfill(tbl, batch_size => 10000, restart => false):
 *    copy the rows a flagged table held before capture began to the modern
 *    side while the application keeps writing.
 *
 * The mechanism: a direct copy under row locks, committed on the modern
 * side before the legacy side.  The table is walked in chunks of
 * batch_size rows by primary-key range, in key order, each chunk in its
 * own READ COMMITTED transaction C:
 *    1. hi := the batch_size-th key after lo (an index-only read; NULL when
 *       fewer rows remain: the last chunk of the table is open-ended);
 *    2. SELECT <sent columns> FROM ONLY leaf t WHERE key > lo AND key <= hi
 *       ORDER BY key FOR SHARE, streamed to the modern side as it is read:
 *       a COPY into the target, or through the upsert where a key is there
 *       already (ship.hpp), in one remote transaction;
 *    3. the remote transaction commits; then the state row
 *       dualwrite._backfill moves to (leaf, hi) and C commits.
 *
 * Why that is right under concurrent writes.  Capture is on (the table is
 * flagged) before the backfill starts, so every change committed during
 * the backfill is delivered by the worker (or shipped by its session in
 * sync mode) in per-key commit order.  For one key k copied by C:
 *  - A change W that commits after C locked k: W's UPDATE or DELETE waits
 *    for C's share lock until C commits, which is after C's remote commit.
 *    So W reaches the modern side after the copy and wins: an update made
 *    during the backfill is never overwritten by an older copy, a row
 *    deleted during the backfill does not come back.
 *  - Changes W1..Wn that committed before C locked k: C (READ COMMITTED,
 *    FOR SHARE waits for a running writer and EvalPlanQual re-reads the
 *    newest version) copies the newest committed version, which is Wn's
 *    image.  Some of W1..Wn may still be queued when the copy lands and
 *    are applied after it: the key then goes back to an older image for a
 *    moment, and forward again with each later Wi, ending at Wn's image,
 *    the copy's.  Nothing of k is captured between Wn and C's lock.  So
 *    the end state is right; only a reader of the modern side during the
 *    backfill can see such a step back.  An insert W of k is the same
 *    case: the copy and W's delivery upsert the same image, and k arrives
 *    once (a primary key).
 *  - An uncommitted insert C does not see needs nothing from C.
 *  - An unchanged row that existed before capture lies in exactly one key
 *    range (lo, hi] and is copied by that chunk: ranges are contiguous and
 *    cover the whole key space ((-inf, hi1], (hi1, hi2], ..., (hin, +inf)).
 *    A row whose key an UPDATE moves is covered by that UPDATE's capture.
 *  - A crash or a cancel: before the remote commit nothing of C is left on
 *    either side; between the remote and the local commit the copy is
 *    there and the state row still says "before C", so C runs again and
 *    upserts the same rows (held by no lock in between, they may have
 *    changed: that is the first case again, with the rerun as C).
 *
 * Why not through the outbox (the copy appended as captured inserts and
 * delivered by the worker, which an earlier version did): every row was
 * then written twice more on the legacy side (outbox heap and WAL) and
 * read back by the worker; a backfill reached 0.27x (0.48x after the
 * outbox fixes it led to) of a plain COPY between the clusters, the
 * direct copy about 0.8x (README, test/bench/backfill.sh).
 *
 * What a direct copy must respect, and does:
 *  - a paused table (dualwrite.pause) or a held one (its delivery stopped
 *    on a problem) is refused: its delivery is meant to wait;
 *  - incremental reconcile: the worker records the keys it applies, a
 *    backfill does not; dualwrite._reconcile_next() says "full" for a
 *    table backfilled since its last full run (the state row's
 *    updated_at, written after each remote commit, against the baseline).
 *
 * Resumable: the state row (relid, enabled_at, leaf, last_key) is updated
 * in each chunk's transaction, so a rerun continues after the last chunk
 * that committed.  A finished backfill is not repeated unless restart =>
 * true (repeating would be harmless: it only queues current images again).
 * enable() after disable() starts a new backfill (enabled_at differs).
 * Two sessions on one table serialise on the state row (FOR UPDATE): each
 * chunk continues where the last committed chunk of either ended.
 *
 * Frames here hold only trivially destructible locals and call
 * PostgreSQL directly (boundary.hpp): the chunk loop commits through SPI.
 *
 * IDENTIFICATION  src/backfill/backfill.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "config/catalog.hpp"
#include "pg/pg.hpp"

namespace pgdw::backfill {

/* The rows of one chunk that were copied, and where the next one begins. */
struct ChunkResult {
	int64 rows;
	Datum next_lo; /* text[] in the caller's context; valid unless last */
	bool last;     /* the leaf has no rows after this chunk */
};

/*
 * Copy one chunk of `leaf` (a plain table: the flagged table or one of its
 * partitions) after key `lo` (a text[] of the key columns' text, or
 * (Datum) 0 for the first chunk) to the modern side, in an open remote
 * transaction (ship.hpp) that the caller commits.  Needs SPI and runs in
 * the caller's transaction.  key_names: the key's column names.
 */
ChunkResult CopyChunk(Relation leaf, const config::TableConfig *cfg, const char *const *key_names, int nkeys,
                      Datum lo, int batch_size);

} // namespace pgdw::backfill

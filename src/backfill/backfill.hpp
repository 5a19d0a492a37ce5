/*-------------------------------------------------------------------------
 * backfill.hpp
 *    CALL dualwrite.backfill(tbl, batch_size => 10000, restart => false):
 *    copy the rows a flagged table held before capture began to the modern
 *    side while the application keeps writing.
 *
 * The mechanism: the copy flows through the outbox.  The table is walked
 * in chunks of batch_size rows by primary-key range, in key order, each
 * chunk in its own READ COMMITTED transaction:
 *    1. hi := the batch_size-th key after lo (an index-only read; NULL when
 *       fewer rows remain: the last chunk of the table is open-ended);
 *    2. SELECT t FROM ONLY leaf t WHERE key > lo AND key <= hi FOR SHARE,
 *       and every row read is appended to the outbox as a change
 *       carrying its current image (outbox::Append, the capture path);
 *    3. the state row dualwrite._backfill moves to (leaf, hi) and the
 *       chunk commits.
 * The worker then delivers those changes like any captured change.  They
 * are marked 'I' (inserts): the apply treats an insert and an update alike
 * (the newest image of a key is upserted), but a batch of inserts only
 * goes by COPY straight into the target, as fast as a plain COPY; where a
 * key already exists there (delivered by capture, or a copy repeating a
 * captured insert in the same batch) that COPY fails on the duplicate and
 * the worker applies the batch through staging and the upsert instead
 * (worker/apply.cpp).  So the mark changes speed, never the result.
 *
 * Why that is right under concurrent writes.  Capture is on (the table is
 * flagged) before the backfill starts, so every change committed during
 * the backfill has its own outbox row with a full image (or a delete).
 * For one key k, the outbox orders changes by the WAL insert position
 * taken when they were captured, and the worker applies them in that
 * order (drain.hpp).  Let C be the chunk transaction that copies k and W
 * any transaction that changes k:
 *  - W committed before C locked k: C's FOR SHARE waits for W (or finds it
 *    committed) and, READ COMMITTED, reads W's version (EvalPlanQual
 *    re-reads the newest version and re-checks the range).  W's change
 *    was captured before W's commit record, C's copy after it: the copy
 *    comes later and carries the same or a newer image.  Applied last, it
 *    leaves the right value.
 *  - W changes k after C locked it: W's UPDATE/DELETE waits for C's share
 *    lock until C commits, so W's change is captured after C's commit
 *    record, after C's copy, and is applied after it: an update made during
 *    the backfill is never overwritten by an older copy, a row deleted
 *    during the backfill does not come back.
 *  - A row inserted during the backfill has its own 'I' change; if C also
 *    sees it (its key lies in C's range and it committed first), C's copy
 *    of the same image follows and the upsert is idempotent: it arrives once.
 *  - An uncommitted insert C does not see needs nothing from C.
 *  - An unchanged row that existed before capture lies in exactly one key
 *    range (lo, hi] and is read by that chunk: ranges are contiguous and
 *    cover the whole key space ((-inf, hi1], (hi1, hi2], ..., (hin, +inf)).
 *    A row whose key an UPDATE moves is covered by that UPDATE's capture.
 * No argument depends on the modern side's state, so this holds after a
 * cancel or a crash too: a chunk either committed (its copies are queued
 * with it, and the state row says so) or left nothing.
 *
 * Why not a direct upsert to the modern side per chunk, committed before
 * the local chunk: a change W that committed before C's lock may still be
 * queued in the outbox when C's direct copy lands, and the worker would
 * then apply W's older image after C's newer one.  Proving that away
 * would need C to wait for delivery of every earlier change of its keys.
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
 * (Datum) 0 for the first chunk) into the outbox.  Needs SPI and runs in
 * the caller's transaction.  key_names: the key's column names.
 */
ChunkResult CopyChunk(Relation leaf, const char *const *key_names, int nkeys, Datum lo, int batch_size);

} // namespace pgdw::backfill

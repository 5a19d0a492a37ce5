/*-------------------------------------------------------------------------
 * reader.hpp
 *    Reading one snapshot range of the outbox in capture order, for the
 *    worker (see worker/drain.hpp for the range algorithm).
 *
 * A range is every change of the given relations whose transaction is
 * committed in snapshot `cur` and not in snapshot `prev`, after a position
 * (lsn, txid, seq).  The reader scans the three generations with the
 * caller's MVCC snapshot (aborted and running transactions stay invisible),
 * keeps only the sort keys and tuple ids of matching rows, sorts them, and
 * then fetches the rows one by one in that order.  Sorting 32-byte keys
 * instead of whole rows keeps a backlog's sort in memory.
 *
 * Memory is bounded: at most dualwrite.max_sort_keys keys are kept.  When a range holds
 * more, the reader keeps the smallest keys only and reports `truncated`;
 * the caller then reads again from the position it reached.
 *
 * Transaction ends (for whole-transaction delivery, worker/drain.hpp): each
 * change says whether it is its transaction's last change in the range
 * (`txn_last`).  A range holds whole transactions (it is cut by commit
 * snapshots), so among the keys of one pass the last key of a transaction
 * is its last change, unless the pass was truncated and the transaction
 * has changes beyond the limit: a second scan of the outbox, done only for
 * truncated passes, finds those.  The bookkeeping costs one hash entry per
 * transaction of the pass, besides its keys.
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/outbox/reader.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::outbox {

/* One change, as the worker needs it. */
struct Change {
	Oid relid;
	char op;
	struct varlena *data; /* detoasted copy in the caller's context; NULL for T */
	uint32 layout;        /* the image's layout fingerprint */
	XLogRecPtr lsn;
	uint64 txid;
	int32 seq;
	bool txn_last; /* no later change of its transaction in the range */
};

struct RangeScan; /* opaque */

/* The range's bounds and position, as SQL datums (pg_snapshot) and values. */
struct RangeSpec {
	const Oid *relids;
	int nrelids;
	Datum prev; /* pg_snapshot */
	Datum cur;  /* pg_snapshot */
	XLogRecPtr pos_lsn;
	uint64 pos_txid;
	int32 pos_seq;
};

/* Collect and sort the range's keys (in the current memory context). */
RangeScan *BeginRangeScan(const RangeSpec &spec);

/* The next change in capture order; false at the end. */
bool NextChange(RangeScan *scan, Change *out);

/* Step back one change: the next NextChange() returns it again. */
void UnreadChange(RangeScan *scan);

/* True if the range held more than one scan may keep: read it again from
 * the last applied position. */
bool RangeTruncated(const RangeScan *scan);

void EndRangeScan(RangeScan *scan);

} // namespace pgdw::outbox

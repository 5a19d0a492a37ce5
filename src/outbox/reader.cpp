/*-------------------------------------------------------------------------
 * reader.cpp
 *    Capture-ordered reading of an outbox range (see reader.hpp).
 *
 * IDENTIFICATION  src/outbox/reader.cpp
 *-------------------------------------------------------------------------
 */
#include "outbox/reader.hpp"

#include "config/guc.hpp"
#include "outbox/outbox.hpp"

extern "C" {
#include "access/detoast.h"
#include "storage/bufmgr.h"
#include "utils/fmgrprotos.h"
#include "utils/pg_lsn.h"
#include "utils/xid8.h"
}

namespace pgdw::outbox {


struct Key {
	XLogRecPtr lsn;
	uint64 txid;
	int32 seq;
	uint16 gen;
	ItemPointerData tid;
};

struct RangeScan {
	Key *keys;
	int64 nkeys;
	int64 next;
	bool truncated;
	Relation rels[kGenerations];
	Snapshot snapshot;
};

static int
CompareKeys(const void *a, const void *b)
{
	const Key *x = static_cast<const Key *>(a);
	const Key *y = static_cast<const Key *>(b);
	if (x->lsn != y->lsn)
		return x->lsn < y->lsn ? -1 : 1;
	if (x->txid != y->txid)
		return x->txid < y->txid ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

static bool
KeyAfter(XLogRecPtr lsn, uint64 txid, int32 seq, XLogRecPtr plsn, uint64 ptxid, int32 pseq)
{
	if (lsn != plsn)
		return lsn > plsn;
	if (txid != ptxid)
		return txid > ptxid;
	return seq > pseq;
}

static bool
Visible(uint64 txid, Datum snapshot)
{
	return DatumGetBool(DirectFunctionCall2(pg_visible_in_snapshot, UInt64GetDatum(txid), snapshot));
}

static bool
WantedRelation(const RangeSpec &spec, Oid relid)
{
	for (int i = 0; i < spec.nrelids; i++)
		if (spec.relids[i] == relid)
			return true;
	return false;
}

RangeScan *
BeginRangeScan(const RangeSpec &spec)
{
	RangeScan *scan = static_cast<RangeScan *>(palloc0(sizeof(RangeScan)));
	scan->snapshot = GetActiveSnapshot();
	const int64 max_keys = guc::max_sort_keys;
	int64 capacity = Min(1024, max_keys);
	scan->keys = static_cast<Key *>(palloc(sizeof(Key) * capacity));
	uint64 prev_xmin = DatumGetUInt64(DirectFunctionCall1(pg_snapshot_xmin, spec.prev));

	/* Keys beyond this one are left for a later read (set when truncating). */
	bool limited = false;
	Key limit = {};

	for (int g = 0; g < kGenerations; g++) {
		Relation rel = table_open(GenerationRelid(g), AccessShareLock);
		scan->rels[g] = rel;
		TupleDesc desc = RelationGetDescr(rel);
		TableScanDesc ts = table_beginscan_strat(rel, scan->snapshot, 0, nullptr, true, false);
		HeapTuple tup;
		while ((tup = heap_getnext(ts, ForwardScanDirection)) != nullptr) {
			CHECK_FOR_INTERRUPTS();
			bool isnull;
			/* The leading columns are fixed-width and never null: cheap to read. */
			Oid relid = DatumGetObjectId(heap_getattr(tup, kRelid, desc, &isnull));
			if (!WantedRelation(spec, relid))
				continue;
			uint64 txid = DatumGetUInt64(heap_getattr(tup, kTxid, desc, &isnull));
			if (txid < prev_xmin || Visible(txid, spec.prev) || !Visible(txid, spec.cur))
				continue;
			XLogRecPtr lsn = DatumGetLSN(heap_getattr(tup, kLsn, desc, &isnull));
			int32 seq = DatumGetInt32(heap_getattr(tup, kSeq, desc, &isnull));
			if (!KeyAfter(lsn, txid, seq, spec.pos_lsn, spec.pos_txid, spec.pos_seq))
				continue;
			if (limited && KeyAfter(lsn, txid, seq, limit.lsn, limit.txid, limit.seq))
				continue;
			if (scan->nkeys == capacity) {
				if (capacity < max_keys) {
					capacity = Min(capacity * 2, max_keys);
					scan->keys = static_cast<Key *>(repalloc_huge(scan->keys, sizeof(Key) * capacity));
				} else {
					/* Full: keep the smaller half, read the rest another time. */
					qsort(scan->keys, scan->nkeys, sizeof(Key), CompareKeys);
					scan->nkeys /= 2;
					limit = scan->keys[scan->nkeys - 1];
					limited = true;
					scan->truncated = true;
					if (KeyAfter(lsn, txid, seq, limit.lsn, limit.txid, limit.seq))
						continue;
				}
			}
			Key &k = scan->keys[scan->nkeys++];
			k.lsn = lsn;
			k.txid = txid;
			k.seq = seq;
			k.gen = static_cast<uint16>(g);
			k.tid = tup->t_self;
		}
		table_endscan(ts);
	}
	qsort(scan->keys, scan->nkeys, sizeof(Key), CompareKeys);
	return scan;
}

bool
NextChange(RangeScan *scan, Change *out)
{
	while (scan->next < scan->nkeys) {
		Key &k = scan->keys[scan->next++];
		Relation rel = scan->rels[k.gen];
		HeapTupleData tup;
		tup.t_self = k.tid;
		Buffer buf;
		/* Visible when collected under the same snapshot: still visible. */
		if (!heap_fetch(rel, scan->snapshot, &tup, &buf, false))
			elog(ERROR, "outbox row (%u,%u) of generation %d vanished", ItemPointerGetBlockNumber(&k.tid),
			     ItemPointerGetOffsetNumber(&k.tid), k.gen);
		TupleDesc desc = RelationGetDescr(rel);
		bool isnull;
		out->relid = DatumGetObjectId(heap_getattr(&tup, kRelid, desc, &isnull));
		out->op = DatumGetChar(heap_getattr(&tup, kOp, desc, &isnull));
		out->layout = static_cast<uint32>(DatumGetInt32(heap_getattr(&tup, kLayout, desc, &isnull)));
		out->lsn = k.lsn;
		out->txid = k.txid;
		out->seq = k.seq;
		Datum data = heap_getattr(&tup, kData, desc, &isnull);
		out->data = nullptr;
		if (!isnull) {
			struct varlena *v = reinterpret_cast<struct varlena *>(DatumGetPointer(data));
			if (VARATT_IS_EXTENDED(v))
				out->data = detoast_attr(v); /* a fresh copy */
			else {
				out->data = static_cast<struct varlena *>(palloc(VARSIZE(v)));
				memcpy(out->data, v, VARSIZE(v));
			}
		}
		ReleaseBuffer(buf);
		return true;
	}
	return false;
}

void
UnreadChange(RangeScan *scan)
{
	if (scan->next > 0)
		scan->next--;
}

bool
RangeTruncated(const RangeScan *scan)
{
	return scan->truncated;
}

void
EndRangeScan(RangeScan *scan)
{
	for (Relation rel : scan->rels)
		if (rel != nullptr)
			table_close(rel, AccessShareLock);
	pfree(scan->keys);
	pfree(scan);
}

} // namespace pgdw::outbox

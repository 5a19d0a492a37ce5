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
#include "utils/hsearch.h"
#include "utils/pg_lsn.h"
#include "utils/xid8.h"
}

namespace pgdw::outbox {


struct Key {
	XLogRecPtr lsn;
	uint64 txid;
	int32 seq;
	uint16 gen;
	bool last; /* no later change of its transaction in the range */
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

/* A row of the range after the spec's position, as ScanRange() finds it. */
struct RangeRow {
	int gen;
	HeapTuple tup;
	XLogRecPtr lsn;
	uint64 txid;
	int32 seq;
};
typedef void (*RowFn)(RangeScan *scan, void *arg, const RangeRow &row);

/* Call fn for every row of the range after the spec's position, in heap
 * order (the generations are opened on the first call, kept open). */
static void
ScanRange(RangeScan *scan, const RangeSpec &spec, RowFn fn, void *arg)
{
	uint64 prev_xmin = DatumGetUInt64(DirectFunctionCall1(pg_snapshot_xmin, spec.prev));
	for (int g = 0; g < kGenerations; g++) {
		if (scan->rels[g] == nullptr)
			scan->rels[g] = table_open(GenerationRelid(g), AccessShareLock);
		Relation rel = scan->rels[g];
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
			fn(scan, arg, RangeRow{g, tup, lsn, txid, seq});
		}
		table_endscan(ts);
	}
}

/* First scan: keep the smallest keys, at most max_sort_keys of them. */
struct Collect {
	int64 capacity;
	int64 max_keys;
	bool limited; /* keys beyond `limit` are left for a later pass */
	Key limit;
};

static void
CollectKey(RangeScan *scan, void *arg, const RangeRow &row)
{
	Collect &c = *static_cast<Collect *>(arg);
	if (c.limited && KeyAfter(row.lsn, row.txid, row.seq, c.limit.lsn, c.limit.txid, c.limit.seq))
		return;
	if (scan->nkeys == c.capacity) {
		if (c.capacity < c.max_keys) {
			c.capacity = Min(c.capacity * 2, c.max_keys);
			scan->keys = static_cast<Key *>(repalloc_huge(scan->keys, sizeof(Key) * c.capacity));
		} else {
			/* Full: keep the smaller half, read the rest another time. */
			qsort(scan->keys, scan->nkeys, sizeof(Key), CompareKeys);
			scan->nkeys /= 2;
			c.limit = scan->keys[scan->nkeys - 1];
			c.limited = true;
			scan->truncated = true;
			if (KeyAfter(row.lsn, row.txid, row.seq, c.limit.lsn, c.limit.txid, c.limit.seq))
				return;
		}
	}
	Key &k = scan->keys[scan->nkeys++];
	k.lsn = row.lsn;
	k.txid = row.txid;
	k.seq = row.seq;
	k.gen = static_cast<uint16>(row.gen);
	k.last = false;
	k.tid = row.tup->t_self;
}

/* A transaction of the kept keys, and its last kept key. */
struct TxEnd {
	uint64 txid;
	int64 last;
};

struct Beyond {
	HTAB *ends;
	Key limit;
};

/* Second scan of a truncated pass: a kept transaction with a change beyond
 * the limit does not end in this pass. */
static void
UnmarkContinued(RangeScan *scan, void *arg, const RangeRow &row)
{
	Beyond &b = *static_cast<Beyond *>(arg);
	if (!KeyAfter(row.lsn, row.txid, row.seq, b.limit.lsn, b.limit.txid, b.limit.seq))
		return;
	TxEnd *e = static_cast<TxEnd *>(hash_search(b.ends, &row.txid, HASH_FIND, nullptr));
	if (e != nullptr)
		scan->keys[e->last].last = false;
}

/*
 * Mark each key that is its transaction's last change in the range (see
 * reader.hpp).  Walking the sorted keys backwards, the first key met of a
 * transaction is its last kept one.  When the pass was truncated, that key
 * is the transaction's last only if no change of it lies beyond the limit:
 * one more scan looks for those (memory stays bounded by the kept keys).
 */
static void
MarkTransactionEnds(RangeScan *scan, const RangeSpec &spec, const Collect &c)
{
	HASHCTL ctl;
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(TxEnd);
	ctl.hcxt = CurrentMemoryContext;
	HTAB *ends = hash_create("pg_dualwrite range transactions", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int64 i = scan->nkeys - 1; i >= 0; i--) {
		Key &k = scan->keys[i];
		/* Runs of one transaction are common: one look-up per run. */
		if (i + 1 < scan->nkeys && scan->keys[i + 1].txid == k.txid)
			continue;
		bool found;
		TxEnd *e = static_cast<TxEnd *>(hash_search(ends, &k.txid, HASH_ENTER, &found));
		if (!found) {
			e->last = i;
			k.last = true;
		}
	}
	if (c.limited) {
		Beyond b = {ends, c.limit};
		ScanRange(scan, spec, UnmarkContinued, &b);
	}
	hash_destroy(ends);
}

RangeScan *
BeginRangeScan(const RangeSpec &spec)
{
	RangeScan *scan = static_cast<RangeScan *>(palloc0(sizeof(RangeScan)));
	scan->snapshot = GetActiveSnapshot();
	Collect c = {};
	c.max_keys = guc::max_sort_keys;
	c.capacity = Min(1024, c.max_keys);
	scan->keys = static_cast<Key *>(palloc(sizeof(Key) * c.capacity));
	ScanRange(scan, spec, CollectKey, &c);
	qsort(scan->keys, scan->nkeys, sizeof(Key), CompareKeys);
	MarkTransactionEnds(scan, spec, c);
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
		out->txn_last = k.last;
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

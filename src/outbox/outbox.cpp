/*-------------------------------------------------------------------------
 * outbox.cpp
 *    Appending changes to the outbox (see outbox.hpp).  This is the hot
 *    path of capture: no SPI, no text conversion, no index; one heap_insert
 *    of the raw row image per change.
 *
 * Frames here hold only trivially destructible locals; PostgreSQL errors
 * propagate by longjmp to the trigger's caller.
 *
 * IDENTIFICATION  src/outbox/outbox.cpp
 *-------------------------------------------------------------------------
 */
#include "outbox/outbox.hpp"

#include "outbox/layout.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "access/tableam.h"
#include "access/xact.h"
#include "utils/inval.h"
#include "utils/pg_lsn.h"
#include "utils/xid8.h"
}

namespace pgdw::outbox {

static Oid generation_oids[kGenerations];
static bool cache_valid = false;
static bool callback_registered = false;
static int32 capture_seq = 0;

/* Any relcache invalidation of an outbox table (TRUNCATE, DROP EXTENSION)
 * or a full reset forgets the cached OIDs. */
static void
InvalidateCache(Datum arg, Oid relid)
{
	if (!cache_valid)
		return;
	if (relid == InvalidOid) {
		cache_valid = false;
		return;
	}
	for (Oid oid : generation_oids)
		if (oid == relid)
			cache_valid = false;
}

extern "C" {
static void
relcache_callback(Datum arg, Oid relid)
{
	InvalidateCache(arg, relid); /* cannot fail */
}
}

Oid
GenerationRelid(uint32 gen)
{
	if (!cache_valid) {
		if (!callback_registered) {
			CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
			callback_registered = true;
		}
		Oid nsp = get_namespace_oid("dualwrite", true);
		for (int g = 0; g < kGenerations; g++) {
			char name[NAMEDATALEN];
			snprintf(name, sizeof(name), "_outbox_%d", g);
			generation_oids[g] = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
			if (!OidIsValid(generation_oids[g]))
				ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				                errmsg("pg_dualwrite outbox table \"dualwrite.%s\" does not exist", name),
				                errhint("The extension pg_dualwrite must be installed in this database "
				                        "(CREATE EXTENSION pg_dualwrite), or its triggers dropped.")));
		}
		cache_valid = true;
	}
	return generation_oids[gen % kGenerations];
}

/* A bytea holding the tuple's header and data, TOAST pointers inlined. */
static bytea *
TupleImage(Relation source, HeapTuple tuple)
{
	HeapTuple flat = tuple;
	if (HeapTupleHasExternal(tuple))
		flat = toast_flatten_tuple(tuple, RelationGetDescr(source));
	bytea *image = static_cast<bytea *>(palloc(VARHDRSZ + flat->t_len));
	SET_VARSIZE(image, VARHDRSZ + flat->t_len);
	memcpy(VARDATA(image), flat->t_data, flat->t_len);
	return image;
}

/* The statement whose TRUNCATE rows share one lsn. */
static struct {
	FullTransactionId xid;
	CommandId cid;
	XLogRecPtr lsn;
} truncate_group;

static Position
AppendAt(Relation source, char op, HeapTuple tuple, XLogRecPtr lsn)
{
	Position pos;
	Datum values[kNatts];
	bool nulls[kNatts] = {false};

	values[kTxid - 1] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[kLsn - 1] = LSNGetDatum(lsn);
	values[kSeq - 1] = Int32GetDatum(++capture_seq);
	values[kTs - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[kRelid - 1] = ObjectIdGetDatum(RelationGetRelid(source));
	values[kOp - 1] = CharGetDatum(op);
	if (tuple != nullptr) {
		values[kLayout - 1] =
		    Int32GetDatum(static_cast<int32>(LayoutFingerprint(RelationGetDescr(source), HeapTupleHeaderGetNatts(tuple->t_data))));
		values[kData - 1] = PointerGetDatum(TupleImage(source, tuple));
	} else {
		values[kLayout - 1] = Int32GetDatum(0);
		nulls[kData - 1] = true;
	}

	/* RowExclusiveLock is kept to transaction end: the worker truncates a
	 * generation only after taking AccessExclusiveLock, i.e. after every
	 * transaction that wrote into it has ended. */
	pos.gen = shm::CaptureGeneration() % kGenerations;
	Relation outbox = table_open(GenerationRelid(pos.gen), RowExclusiveLock);
	if (RelationGetDescr(outbox)->natts != kNatts)
		elog(ERROR, "pg_dualwrite outbox table \"%s\" has %d columns, expected %d", RelationGetRelationName(outbox),
		     RelationGetDescr(outbox)->natts, kNatts);
	HeapTuple row = heap_form_tuple(RelationGetDescr(outbox), values, nulls);
	/* Append-only and never vacuumed: no free space to look for. */
	heap_insert(outbox, row, GetCurrentCommandId(true), HEAP_INSERT_SKIP_FSM, nullptr);
	pos.tid = row->t_self;
	pos.seq = capture_seq;
	table_close(outbox, NoLock);
	heap_freetuple(row);
	if (tuple != nullptr)
		pfree(DatumGetPointer(values[kData - 1]));
	return pos;
}

Position
Append(Relation source, char op, HeapTuple tuple)
{
	return AppendAt(source, op, tuple, GetXLogInsertRecPtr());
}

Position
AppendTruncate(Relation source)
{
	FullTransactionId xid = GetTopFullTransactionId();
	CommandId cid = GetCurrentCommandId(false);
	/* The statement's BEFORE TRUNCATE triggers fire one after the other
	 * with no command counter increment in between. */
	if (!FullTransactionIdEquals(xid, truncate_group.xid) || cid != truncate_group.cid) {
		truncate_group.xid = xid;
		truncate_group.cid = cid;
		truncate_group.lsn = GetXLogInsertRecPtr();
	}
	return AppendAt(source, kTruncate, nullptr, truncate_group.lsn);
}

void
AppendDeleteAll(Relation leaf, void (*note)(Relation, const Position &))
{
	/* The latest snapshot: under the AccessExclusiveLock every other
	 * writer has ended, and a REPEATABLE READ caller's own snapshot could
	 * miss rows committed while it waited for the lock. */
	Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(leaf, snapshot, 0, nullptr);
	HeapTuple tup;
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
		CHECK_FOR_INTERRUPTS();
		Position pos = Append(leaf, kDelete, tup);
		if (note != nullptr)
			note(leaf, pos); /* a sync table's: shipped at commit */
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
}

} // namespace pgdw::outbox

/*-------------------------------------------------------------------------
 * trigger.cpp
 *    The capture triggers installed by dualwrite.enable():
 *      dualwrite._capture()          AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW
 *      dualwrite._capture_truncate() BEFORE TRUNCATE, FOR EACH STATEMENT, on the
 *                                    flagged table and on each of its partitions
 *
 * They write into the outbox in the same transaction as the user's change,
 * so an aborted transaction (or subtransaction) leaves nothing behind and
 * a committed one always leaves its change.  heap_insert bypasses ACL
 * checks on purpose: a role that may write the table has its changes
 * captured without any privilege on the dualwrite schema.
 *
 * The triggers are ordinary (ENABLE ORIGIN) triggers: they do not fire
 * under session_replication_role = replica, which is how the worker
 * applies changes on a modern side that runs pg_dualwrite too (no loops).
 *
 * IDENTIFICATION  src/capture/trigger.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "outbox/outbox.hpp"
#include "shmem/shmem.hpp"
#include "sync/sync.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/partition.h"
#include "nodes/bitmapset.h"
#include "utils/datum.h"
}

namespace pgdw::capture {

/* Validate the calling context: these can only fail if misdeclared. */
static TriggerData *
CheckContext(FunctionCallInfo fcinfo, const char *name, bool row_level)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "%s: not called by trigger manager", name);
	TriggerData *td = reinterpret_cast<TriggerData *>(fcinfo->context);
	/* Row changes AFTER (the row is final); TRUNCATE BEFORE (the rows of a
	 * truncated partition are still there to be read). */
	if (row_level ? !TRIGGER_FIRED_AFTER(td->tg_event) : !TRIGGER_FIRED_BEFORE(td->tg_event))
		elog(ERROR, "%s: must be fired %s", name, row_level ? "AFTER" : "BEFORE");
	if (row_level != static_cast<bool>(TRIGGER_FIRED_FOR_ROW(td->tg_event)))
		elog(ERROR, "%s: must be fired FOR EACH %s", name, row_level ? "ROW" : "STATEMENT");
	return td;
}

/* Did an UPDATE change the replica-identity key (normally the primary key)? */
static bool
KeyChanged(Relation rel, HeapTuple oldtup, HeapTuple newtup)
{
	Bitmapset *key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	TupleDesc desc = RelationGetDescr(rel);
	bool changed = false;
	int i = -1;
	while (!changed && (i = bms_next_member(key, i)) >= 0) {
		AttrNumber attnum = i + FirstLowInvalidHeapAttributeNumber;
		Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
		bool old_null, new_null;
		Datum o = heap_getattr(oldtup, attnum, desc, &old_null);
		Datum n = heap_getattr(newtup, attnum, desc, &new_null);
		changed = old_null != new_null || (!old_null && !datumIsEqual(o, n, att->attbyval, att->attlen));
	}
	bms_free(key);
	return changed;
}

/* Is `rel` a sync table's (or partition's)?  Its row trigger says so; no
 * catalog lookup, which would end the TRUNCATE statement's grouping. */
static bool
RowTriggerSaysSync(Relation rel)
{
	if (rel->trigdesc == nullptr)
		return false;
	for (int i = 0; i < rel->trigdesc->numtriggers; i++) {
		const Trigger *t = &rel->trigdesc->triggers[i];
		if (strcmp(t->tgname, "dualwrite_capture") == 0)
			return t->tgnargs == 1 && strcmp(t->tgargs[0], "sync") == 0;
	}
	return false;
}

/*
 * dualwrite.enabled = off (superuser-only): nothing is captured.  Said once
 * per session, and noted in shared memory for dualwrite.status, because the
 * two databases now diverge until a reconcile.
 */
static bool
CaptureSwitchedOff(Relation rel)
{
	static bool warned = false;
	if (guc::enabled)
		return false;
	shm::NoteSkippedCapture();
	if (!warned) {
		warned = true;
		ereport(WARNING, (errmsg("pg_dualwrite capture is switched off: changes of table \"%s\" are not sent to the "
		                         "modern database",
		                         RelationGetRelationName(rel)),
		                  errdetail("dualwrite.enabled is off; the two databases diverge from here on."),
		                  errhint("Set dualwrite.enabled back to on and reconcile the flagged tables.")));
	}
	return true;
}

static Datum
CaptureRow(FunctionCallInfo fcinfo)
{
	TriggerData *td = CheckContext(fcinfo, "dualwrite._capture", true);
	Relation rel = td->tg_relation;
	if (CaptureSwitchedOff(rel))
		return PointerGetDatum(nullptr);

	/* Sync mode (enable(..., mode => 'sync')): the trigger's argument says
	 * so, and the change is also noted to be shipped at commit. */
	bool sync = td->tg_trigger->tgnargs == 1 && strcmp(td->tg_trigger->tgargs[0], "sync") == 0;
	auto append = [&](char op, HeapTuple tuple) {
		outbox::Position pos = outbox::Append(rel, op, tuple);
		if (sync)
			sync::NoteChange(rel, pos);
	};
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		append(outbox::kInsert, td->tg_trigtuple);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		append(outbox::kDelete, td->tg_trigtuple);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
		if (KeyChanged(rel, td->tg_trigtuple, td->tg_newtuple)) {
			/* A key update is the old key's delete followed by the new row. */
			append(outbox::kDelete, td->tg_trigtuple);
			append(outbox::kInsert, td->tg_newtuple);
		} else
			append(outbox::kUpdate, td->tg_newtuple);
	} else
		elog(ERROR, "dualwrite._capture: unexpected trigger event %u", td->tg_event);
	return PointerGetDatum(nullptr);
}

/*
 * The flagged tables a TRUNCATE statement truncates whole.  A statement's
 * BEFORE TRUNCATE triggers fire one after the other, the named tables
 * before the partitions it expands to, with no command counter increment
 * in between: (transaction, command id) names the statement.
 */
constexpr int kMaxTruncatedRoots = 64;
static struct {
	FullTransactionId xid;
	CommandId cid;
	int n;
	Oid roots[kMaxTruncatedRoots];
} truncated_roots;

static bool
InThisStatement()
{
	return FullTransactionIdEquals(truncated_roots.xid, GetTopFullTransactionId()) &&
	       truncated_roots.cid == GetCurrentCommandId(false);
}

static void
RememberTruncatedRoot(Oid relid)
{
	if (!InThisStatement()) {
		truncated_roots.xid = GetTopFullTransactionId();
		truncated_roots.cid = GetCurrentCommandId(false);
		truncated_roots.n = 0;
	}
	if (truncated_roots.n < kMaxTruncatedRoots)
		truncated_roots.roots[truncated_roots.n++] = relid;
}

static bool
RootTruncatedInThisStatement(Oid relid)
{
	if (!InThisStatement())
		return false;
	for (int i = 0; i < truncated_roots.n; i++)
		if (truncated_roots.roots[i] == relid)
			return true;
	return false;
}

/*
 * TRUNCATE of the flagged table itself is one T change, applied as a
 * TRUNCATE of its target.  TRUNCATE of one partition (or of a sub-tree)
 * is a delete of each of its rows: the modern table need not be
 * partitioned the same way, and a delete of rows that are not there is
 * harmless.  When the same statement truncates the whole table, its
 * partitions add nothing.
 */
static Datum
CaptureTruncate(FunctionCallInfo fcinfo)
{
	TriggerData *td = CheckContext(fcinfo, "dualwrite._capture_truncate", false);
	if (!TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		elog(ERROR, "dualwrite._capture_truncate: must be fired by TRUNCATE");
	Relation rel = td->tg_relation;
	if (CaptureSwitchedOff(rel))
		return PointerGetDatum(nullptr);
	if (!rel->rd_rel->relispartition) {
		/* Flagged tables are never partitions (enable() refuses them). */
		RememberTruncatedRoot(RelationGetRelid(rel));
		outbox::Position pos = outbox::AppendTruncate(rel);
		if (RowTriggerSaysSync(rel))
			sync::NoteChange(rel, pos);
		return PointerGetDatum(nullptr);
	}
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return PointerGetDatum(nullptr); /* a sub-tree: its leaves are truncated too */
	List *ancestors = get_partition_ancestors(RelationGetRelid(rel));
	Oid root = ancestors != NIL ? llast_oid(ancestors) : InvalidOid;
	list_free(ancestors);
	if (!RootTruncatedInThisStatement(root))
		outbox::AppendDeleteAll(rel, RowTriggerSaysSync(rel) ? sync::NoteChange : nullptr);
	return PointerGetDatum(nullptr);
}

} // namespace pgdw::capture

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_capture);
PG_FUNCTION_INFO_V1(dualwrite_capture_truncate);

PGDLLEXPORT Datum
dualwrite_capture(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::capture::CaptureRow(fcinfo); });
}

PGDLLEXPORT Datum
dualwrite_capture_truncate(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::capture::CaptureTruncate(fcinfo); });
}
}

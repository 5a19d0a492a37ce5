/*-------------------------------------------------------------------------
 * trigger.cpp
 *    The capture triggers installed by dualwrite.enable():
 *      dualwrite._capture()          AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW
 *      dualwrite._capture_truncate() AFTER TRUNCATE, FOR EACH STATEMENT
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
#include "outbox/outbox.hpp"

extern "C" {
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
	if (!TRIGGER_FIRED_AFTER(td->tg_event))
		elog(ERROR, "%s: must be fired AFTER", name);
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

static Datum
CaptureRow(FunctionCallInfo fcinfo)
{
	TriggerData *td = CheckContext(fcinfo, "dualwrite._capture", true);
	Relation rel = td->tg_relation;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		outbox::Append(rel, outbox::kInsert, td->tg_trigtuple);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		outbox::Append(rel, outbox::kDelete, td->tg_trigtuple);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
		if (KeyChanged(rel, td->tg_trigtuple, td->tg_newtuple)) {
			/* A key update is the old key's delete followed by the new row. */
			outbox::Append(rel, outbox::kDelete, td->tg_trigtuple);
			outbox::Append(rel, outbox::kInsert, td->tg_newtuple);
		} else
			outbox::Append(rel, outbox::kUpdate, td->tg_newtuple);
	} else
		elog(ERROR, "dualwrite._capture: unexpected trigger event %u", td->tg_event);
	return PointerGetDatum(nullptr);
}

static Datum
CaptureTruncate(FunctionCallInfo fcinfo)
{
	TriggerData *td = CheckContext(fcinfo, "dualwrite._capture_truncate", false);
	if (!TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		elog(ERROR, "dualwrite._capture_truncate: must be fired by TRUNCATE");
	outbox::Append(td->tg_relation, outbox::kTruncate, nullptr);
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

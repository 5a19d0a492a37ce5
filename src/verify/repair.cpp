/*-------------------------------------------------------------------------
 * repair.cpp
 *    reconcile(..., repair => true): make the modern side match legacy
 *    (the source of truth) through the normal delivery path.
 *
 * The repair of a difference is appended to the outbox in the caller's
 * transaction: the row's current image, locked FOR UPDATE (so no
 * concurrent change can slip in between), as an update (an upsert on the
 * modern side); an extra row as a delete of its key.  The worker delivers
 * them in commit order with every other change, so ordering with live
 * changes is kept.
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/verify/repair.cpp
 *-------------------------------------------------------------------------
 */
#include "verify/reconcile.hpp"

#include "outbox/outbox.hpp"

extern "C" {
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "storage/itemptr.h"
}

namespace pgdw::verify {

/* Append the repair of one difference to the outbox (caller's transaction). */
void
Repair(Run *run, const Difference &d)
{
	const config::TableConfig *cfg = run->cfg;
	if (d.kind == 'e') {
		Relation rel = table_open(cfg->relid, RowExclusiveLock);
		TupleDesc desc = RelationGetDescr(rel);
		Datum *values = static_cast<Datum *>(palloc0(sizeof(Datum) * desc->natts));
		bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * desc->natts));
		memset(nulls, true, sizeof(bool) * desc->natts);
		for (int k = 0; k < run->nkey; k++) {
			AttrNumber att = cfg->columns[run->keycols[k]].attnum;
			Form_pg_attribute a = TupleDescAttr(desc, att - 1);
			Oid input, ioparam;
			getTypeInputInfo(a->atttypid, &input, &ioparam);
			values[att - 1] = OidInputFunctionCall(input, d.key[k], ioparam, a->atttypmod);
			nulls[att - 1] = false;
		}
		HeapTuple tup = heap_form_tuple(desc, values, nulls);
		outbox::Append(rel, outbox::kDelete, tup);
		table_close(rel, NoLock);
		return;
	}
	/* missing or different: the current image, locked */
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t.tableoid, t.ctid FROM %s AS t WHERE %s FOR UPDATE",
	                 quote_qualified_identifier(get_namespace_name(get_rel_namespace(cfg->relid)),
	                                            get_rel_name(cfg->relid)),
	                 RangeCondition(cfg, d.key, d.key, false));
	SPI_connect();
	if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock a row of table %s", cfg->target_display);
	if (SPI_processed == 1) {
		bool isnull;
		Oid leaf = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		ItemPointerData tid = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		Relation rel = table_open(leaf, RowExclusiveLock);
		TupleTableSlot *slot = table_slot_create(rel, nullptr);
		if (table_tuple_fetch_row_version(rel, &tid, SnapshotAny, slot)) {
			bool should_free;
			HeapTuple tup = ExecFetchSlotHeapTuple(slot, true, &should_free);
			outbox::Append(rel, outbox::kUpdate, tup);
		}
		ExecDropSingleTupleTableSlot(slot);
		table_close(rel, NoLock);
	}
	SPI_finish();
}

} // namespace pgdw::verify

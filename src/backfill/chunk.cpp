/*-------------------------------------------------------------------------
 * chunk.cpp
 *    One chunk of a backfill (see backfill.hpp): find the chunk's upper key,
 *    read its rows under FOR SHARE through a cursor (bounded memory: 1,000
 *    rows at a time) and append their current images to the outbox.
 *
 * The key is compared as a row, ROW(k1, k2) > ROW(lo1, lo2), which the
 * primary-key index answers as one range; key values travel as text (the
 * types' own output and input functions round-trip them exactly).
 *
 * Frames here hold only trivially destructible locals; PostgreSQL errors
 * propagate by longjmp to the procedure's caller.
 *
 * IDENTIFICATION  src/backfill/chunk.cpp
 *-------------------------------------------------------------------------
 */
#include "backfill/backfill.hpp"

#include "outbox/outbox.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/typcache.h"
}

namespace pgdw::backfill {

constexpr int kFetchRows = 1000;

/* ROW(t.k1, ...) <op> ROW(CAST($n[1] AS type1), ...) */
static void
AppendKeyCompare(StringInfo sql, Relation leaf, const char *const *key_names, int nkeys, const char *op, int param)
{
	appendStringInfoString(sql, "ROW(");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(sql, "%st.%s", i > 0 ? ", " : "", quote_identifier(key_names[i]));
	appendStringInfo(sql, ") OPERATOR(pg_catalog.%s) ROW(", op);
	for (int i = 0; i < nkeys; i++) {
		AttrNumber att = get_attnum(RelationGetRelid(leaf), key_names[i]);
		if (att == InvalidAttrNumber)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
			                errmsg("key column \"%s\" of table \"%s\" does not exist", key_names[i],
			                       RelationGetRelationName(leaf))));
		appendStringInfo(sql, "%sCAST($%d[%d] AS %s)", i > 0 ? ", " : "", param, i + 1,
		                 format_type_be_qualified(get_atttype(RelationGetRelid(leaf), att)));
	}
	appendStringInfoChar(sql, ')');
}

static const char *
QualifiedName(Relation leaf)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(leaf)), RelationGetRelationName(leaf));
}

/* The batch_size-th key after lo, as text[], or (Datum) 0 if fewer remain. */
static Datum
UpperKey(Relation leaf, const char *const *key_names, int nkeys, Datum lo, int batch_size, MemoryContext out)
{
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ARRAY[");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%st.%s::pg_catalog.text", i > 0 ? ", " : "", quote_identifier(key_names[i]));
	appendStringInfo(&sql, "] FROM ONLY %s t", QualifiedName(leaf));
	if (lo != (Datum) 0) {
		appendStringInfoString(&sql, " WHERE ");
		AppendKeyCompare(&sql, leaf, key_names, nkeys, ">", 1);
	}
	appendStringInfoString(&sql, " ORDER BY ");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%st.%s", i > 0 ? ", " : "", quote_identifier(key_names[i]));
	appendStringInfo(&sql, " OFFSET %d LIMIT 1", batch_size - 1);

	Oid types[1] = {TEXTARRAYOID};
	Datum values[1] = {lo};
	char nulls[1] = {lo == (Datum) 0 ? 'n' : ' '};
	if (SPI_execute_with_args(sql.data, 1, types, values, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", sql.data);
	if (SPI_processed == 0)
		return (Datum) 0;
	bool isnull;
	Datum key = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "backfill: NULL key in table \"%s\"", RelationGetRelationName(leaf));
	MemoryContext old = MemoryContextSwitchTo(out);
	Datum copy = datumCopy(key, false, -1);
	MemoryContextSwitchTo(old);
	return copy;
}

ChunkResult
CopyChunk(Relation leaf, const char *const *key_names, int nkeys, Datum lo, int batch_size)
{
	ChunkResult result = {0, (Datum) 0, false};
	MemoryContext caller = CurrentMemoryContext;
	Datum hi = UpperKey(leaf, key_names, nkeys, lo, batch_size, caller);
	result.last = hi == (Datum) 0;
	result.next_lo = hi;

	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t FROM ONLY %s t WHERE true", QualifiedName(leaf));
	if (lo != (Datum) 0) {
		appendStringInfoString(&sql, " AND ");
		AppendKeyCompare(&sql, leaf, key_names, nkeys, ">", 1);
	}
	if (hi != (Datum) 0) {
		appendStringInfoString(&sql, " AND ");
		AppendKeyCompare(&sql, leaf, key_names, nkeys, "<=", 2);
	}
	appendStringInfoString(&sql, " FOR SHARE OF t");

	Oid types[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum values[2] = {lo, hi};
	char nulls[2] = {lo == (Datum) 0 ? 'n' : ' ', hi == (Datum) 0 ? 'n' : ' '};
	Portal portal = SPI_cursor_open_with_args(nullptr, sql.data, 2, types, values, nulls, false, 0);
	MemoryContext rows = AllocSetContextCreate(caller, "backfill rows", ALLOCSET_DEFAULT_SIZES);
	for (;;) {
		SPI_cursor_fetch(portal, true, kFetchRows);
		if (SPI_processed == 0)
			break;
		MemoryContext old = MemoryContextSwitchTo(rows);
		for (uint64 i = 0; i < SPI_processed; i++) {
			CHECK_FOR_INTERRUPTS();
			bool isnull;
			Datum d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			if (isnull)
				continue;
			/* The whole-row value has the table's row type, dropped columns
			 * included, and its TOAST values inlined: the same layout as a
			 * captured image. */
			HeapTupleHeader td = DatumGetHeapTupleHeader(d);
			HeapTupleData tuple;
			tuple.t_len = HeapTupleHeaderGetDatumLength(td);
			tuple.t_data = td;
			ItemPointerSetInvalid(&tuple.t_self);
			tuple.t_tableOid = RelationGetRelid(leaf);
			outbox::Append(leaf, outbox::kInsert, &tuple);
			result.rows++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rows);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(rows);
	return result;
}

} // namespace pgdw::backfill

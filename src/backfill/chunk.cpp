/*-------------------------------------------------------------------------
 * chunk.cpp
 *    One chunk of a backfill (see backfill.hpp): find the chunk's upper key,
 *    read its rows in key order under FOR SHARE through a cursor, 1,000 at
 *    a time, and stream them to the modern side (ship.hpp) as they are
 *    read: the sent columns by name, column_map applied, each value by its
 *    type's output function under the worker's pinned text settings.
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

#include "backfill/ship.hpp"
#include "config/guc.hpp"
#include "outbox/image.hpp"
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

/* ARRAY[key text...] of the current row of the cursor (columns: the sent
 * ones, in cfg order), in `out`. */
static Datum
RowKey(const config::TableConfig *cfg, HeapTuple row, TupleDesc desc, FmgrInfo *out, MemoryContext into)
{
	Datum *texts = static_cast<Datum *>(palloc(sizeof(Datum) * (cfg->ncolumns + 1)));
	int n = 0;
	for (int c = 0; c < cfg->ncolumns; c++) {
		if (!cfg->columns[c].is_key)
			continue;
		bool isnull;
		Datum v = SPI_getbinval(row, desc, c + 1, &isnull);
		if (isnull)
			elog(ERROR, "backfill: NULL key column \"%s\"", cfg->columns[c].legacy_name);
		texts[n++] = CStringGetTextDatum(OutputFunctionCall(&out[c], v));
	}
	MemoryContext old = MemoryContextSwitchTo(into);
	Datum key = PointerGetDatum(construct_array(texts, n, TEXTOID, -1, false, TYPALIGN_INT));
	MemoryContextSwitchTo(old);
	return key;
}

ChunkResult
CopyChunk(Relation leaf, const config::TableConfig *cfg, const char *const *key_names, int nkeys, Datum lo,
          int batch_size)
{
	ChunkResult result = {0, (Datum) 0, false};
	MemoryContext caller = CurrentMemoryContext;
	/* Text that reads back exactly, as the worker sends it; also the key
	 * texts of the range bounds (a DateStyle of the session's own would
	 * read a date key back wrong). */
	int pin = outbox::PinTextOutput();
	Datum hi = UpperKey(leaf, key_names, nkeys, lo, batch_size, caller);
	result.last = hi == (Datum) 0;
	result.next_lo = hi;

	/* The sent columns by name (a partition may order them differently),
	 * in key order: row locks are taken in the order the worker's and the
	 * application's statements mostly take them. */
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int c = 0; c < cfg->ncolumns; c++)
		appendStringInfo(&sql, "%st.%s", c > 0 ? ", " : "", quote_identifier(cfg->columns[c].legacy_name));
	appendStringInfo(&sql, " FROM ONLY %s t WHERE true", QualifiedName(leaf));
	if (lo != (Datum) 0) {
		appendStringInfoString(&sql, " AND ");
		AppendKeyCompare(&sql, leaf, key_names, nkeys, ">", 1);
	}
	if (hi != (Datum) 0) {
		appendStringInfoString(&sql, " AND ");
		AppendKeyCompare(&sql, leaf, key_names, nkeys, "<=", 2);
	}
	appendStringInfoString(&sql, " ORDER BY ");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%st.%s", i > 0 ? ", " : "", quote_identifier(key_names[i]));
	appendStringInfoString(&sql, " FOR SHARE OF t");

	Oid types[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum values[2] = {lo, hi};
	char nulls[2] = {lo == (Datum) 0 ? 'n' : ' ', hi == (Datum) 0 ? 'n' : ' '};
	Portal portal = SPI_cursor_open_with_args(nullptr, sql.data, 2, types, values, nulls, false, 0);
	MemoryContext rows = AllocSetContextCreate(caller, "backfill rows", ALLOCSET_DEFAULT_SIZES);
	int ncols = cfg->ncolumns;
	FmgrInfo *out = static_cast<FmgrInfo *>(palloc(sizeof(FmgrInfo) * (ncols + 1)));
	Datum *vals = static_cast<Datum *>(palloc(sizeof(Datum) * (ncols + 1)));
	bool *isnull = static_cast<bool *>(palloc(sizeof(bool) * (ncols + 1)));
	bool have_out = false;
	size_t max_bytes = static_cast<size_t>(guc::batch_bytes_kb) * 1024;
	BeginShipChunk();
	bool stopped = false;
	while (!stopped) {
		SPI_cursor_fetch(portal, true, kFetchRows);
		if (SPI_processed == 0)
			break;
		TupleDesc desc = SPI_tuptable->tupdesc;
		if (!have_out) {
			for (int c = 0; c < ncols; c++) {
				Oid outfunc;
				bool varlena;
				getTypeOutputInfo(SPI_gettypeid(desc, c + 1), &outfunc, &varlena);
				fmgr_info_cxt(outfunc, &out[c], caller);
			}
			have_out = true;
		}
		MemoryContext old = MemoryContextSwitchTo(rows);
		for (uint64 i = 0; i < SPI_processed; i++) {
			CHECK_FOR_INTERRUPTS();
			HeapTuple row = SPI_tuptable->vals[i];
			for (int c = 0; c < ncols; c++)
				vals[c] = SPI_getbinval(row, desc, c + 1, &isnull[c]);
			ShipRow(vals, isnull, out, ncols);
			result.rows++;
			/* Bounded memory whatever the rows' size: a chunk that reached
			 * dualwrite.batch_bytes ends at this row (the rows locked after
			 * it are read again by the next chunk). */
			if (ShippedBytes() >= max_bytes) {
				result.next_lo = RowKey(cfg, row, desc, out, caller);
				result.last = false;
				stopped = true;
				break;
			}
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rows);
		ShipPending();
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(rows);
	outbox::UnpinTextOutput(pin);
	return result;
}

} // namespace pgdw::backfill

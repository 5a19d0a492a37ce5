/*-------------------------------------------------------------------------
 * checksum.cpp
 *    dualwrite.row_checksum(record), dualwrite.table_checksum(tbl [, from,
 *    to]), dualwrite.checksum_sql(tbl [, from, to]) and
 *    dualwrite.remote_checksum(tbl [, from, to]).
 *
 * table_checksum reads the flagged table with the caller's rights (SPI,
 * a cursor fetched in batches: bounded memory) and hashes each row's
 * canonical encoding over the columns it delivers, named as on the modern
 * side (config::TableConfig).  checksum_sql is the same computation in
 * plain SQL for the modern table (core::TableChecksumSql);
 * remote_checksum runs that SQL over the server's delivering connection.
 * A range is [from_key, to_key) in the key's row order, each bound given
 * as the key columns' text values (NULL: unbounded); the same condition
 * is applied on both sides.
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals;
 * the SQL text is built by core/ behind pg_string().
 *
 * IDENTIFICATION  src/verify/checksum.cpp
 *-------------------------------------------------------------------------
 */
#include "verify/checksum.hpp"
#include "verify/reconcile.hpp"

#include "boundary/boundary.hpp"
#include "core/quote.hpp"
#include "remote/connection.hpp"
#include "remote/result.hpp"
#include "verify/canonical.hpp"

extern "C" {
#include "access/tupdesc.h"
#include "utils/array.h"
#include "utils/typcache.h"
}

namespace pgdw::verify {

config::TableConfig *
LoadFlaggedTable(Oid relid)
{
	int n = 0;
	config::TableConfig **all = config::LoadAll(&n);
	for (int i = 0; i < n; i++) {
		if (all[i]->relid != relid)
			continue;
		if (all[i]->problem != nullptr)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			                errmsg("table %s cannot be verified", all[i]->target_display),
			                errdetail("%s", all[i]->problem)));
		return all[i];
	}
	char *name = get_rel_name(relid);
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
	                errmsg("table %s is not dual-written", name ? quote_identifier(name) : "(dropped)"),
	                errhint("Only tables flagged by dualwrite.enable() can be verified against their modern side.")));
	return nullptr;
}

/* The bound's values, checked against the key (one text per key column). */
static char **
BoundValues(const config::TableConfig *cfg, ArrayType *bound, const char *which)
{
	if (bound == nullptr)
		return nullptr;
	int nkey = 0;
	for (int i = 0; i < cfg->ncolumns; i++)
		nkey += cfg->columns[i].is_key ? 1 : 0;
	Datum *elems;
	bool *nulls;
	int n;
	deconstruct_array_builtin(bound, TEXTOID, &elems, &nulls, &n);
	if (n != nkey || ARR_NDIM(bound) > 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("%s has %d values, but the key of table %s has %d columns", which, n,
		                       cfg->target_display, nkey),
		                errhint("Give one text value per key column (%s), in attribute order.",
		                        config::KeyColumnList(cfg))));
	char **vals = static_cast<char **>(palloc(sizeof(char *) * n));
	for (int i = 0; i < n; i++) {
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s has a NULL key value", which),
			                errhint("Pass NULL instead of the whole array for an unbounded side.")));
		vals[i] = TextDatumGetCString(elems[i]);
	}
	return vals;
}

/* ROW(k1, k2) >= ROW('v1', 'v2') AND ... over alias t, with legacy or modern names;
 * from == to (the same array): ROW(k1, k2) = ROW(...). */
char *
RangeCondition(const config::TableConfig *cfg, char **from, char **to, bool modern)
{
	if (from == nullptr && to == nullptr)
		return pstrdup("");
	StringInfoData cols;
	initStringInfo(&cols);
	for (int i = 0; i < cfg->ncolumns; i++) {
		const config::ColumnConfig *c = &cfg->columns[i];
		if (!c->is_key)
			continue;
		appendStringInfo(&cols, "%st.%s", cols.len ? ", " : "",
		                 quote_identifier(modern ? c->modern_name : c->legacy_name));
	}
	StringInfoData out;
	initStringInfo(&out);
	bool exact = from == to;
	for (int side = 0; side < (exact ? 1 : 2); side++) {
		char **vals = side == 0 ? from : to;
		if (vals == nullptr)
			continue;
		if (out.len)
			appendStringInfoString(&out, " AND ");
		appendStringInfo(&out, "ROW(%s) %s ROW(", cols.data, exact ? "=" : side == 0 ? ">=" : "<");
		int k = 0;
		for (int i = 0; i < cfg->ncolumns; i++) {
			if (!cfg->columns[i].is_key)
				continue;
			appendStringInfo(&out, "%s%s", k ? ", " : "", quote_literal_cstr(vals[k]));
			k++;
		}
		appendStringInfoChar(&out, ')');
	}
	return out.data;
}

/* The legacy table's codecs (sorted) for the delivered columns. */
ColumnCodec *
TableCodecs(Relation rel, const config::TableConfig *cfg)
{
	TupleDesc desc = RelationGetDescr(rel);
	ColumnCodec *codecs = static_cast<ColumnCodec *>(palloc0(sizeof(ColumnCodec) * (cfg->ncolumns + 1)));
	for (int i = 0; i < cfg->ncolumns; i++) {
		Form_pg_attribute att = TupleDescAttr(desc, cfg->columns[i].attnum - 1);
		PrepareCodec(&codecs[i], cfg->columns[i].modern_name, att->atttypid);
		codecs[i].source = i; /* column i of the SELECT */
	}
	SortCodecs(codecs, cfg->ncolumns);
	return codecs;
}

Checksum
LegacyChecksum(const config::TableConfig *cfg, ArrayType *from, ArrayType *to)
{
	char **fromv = BoundValues(cfg, from, "from_key");
	char **tov = BoundValues(cfg, to, "to_key");
	return LegacyFigures(cfg, RangeCondition(cfg, fromv, tov, false));
}

void
RowDigest(const ColumnCodec *codecs, int ncolumns, HeapTuple tup, TupleDesc desc, int offset, StringInfo buf,
          unsigned char digest[32])
{
	resetStringInfo(buf);
	for (int i = 0; i < ncolumns; i++) {
		bool isnull;
		Datum v = SPI_getbinval(tup, desc, offset + codecs[i].source + 1, &isnull);
		AppendColumn(buf, &codecs[i], v, isnull);
	}
	Sha256(buf->data, buf->len, digest);
}

void
LegacyGroupedFigures(const config::TableConfig *cfg, const char *cond, const char *group, int ngroups, Checksum *out)
{
	Relation rel = table_open(cfg->relid, AccessShareLock);
	ColumnCodec *codecs = TableCodecs(rel, cfg);
	StringInfoData sql;
	initStringInfo(&sql);
	/* column 1: the group (0 without one), then the delivered columns */
	appendStringInfo(&sql, "SELECT %s", group != nullptr ? group : "0");
	for (int i = 0; i < cfg->ncolumns; i++)
		appendStringInfo(&sql, ", t.%s", quote_identifier(cfg->columns[i].legacy_name));
	appendStringInfo(&sql, " FROM %s AS t",
	                 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
	                                            RelationGetRelationName(rel)));
	if (cond[0] != '\0')
		appendStringInfo(&sql, " WHERE %s", cond);
	table_close(rel, NoLock); /* keep the lock to the end of the transaction */

	memset(out, 0, sizeof(Checksum) * ngroups);
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext rowcxt = AllocSetContextCreate(outer, "dualwrite checksum rows", ALLOCSET_DEFAULT_SIZES);
	StringInfoData row; /* in the caller's context: it outlives SPI and the row resets */
	initStringInfo(&row);
	SPI_connect();
	/* not read-only: a fresh snapshot per call (reconcile re-checks rows
	 * after their pending changes were delivered) */
	SPIPlanPtr plan = SPI_prepare(sql.data, 0, nullptr);
	if (plan == nullptr)
		elog(ERROR, "could not prepare the checksum query of table %s: %s", cfg->target_display,
		     SPI_result_code_string(SPI_result));
	Portal portal = SPI_cursor_open(nullptr, plan, nullptr, nullptr, false);
	for (;;) {
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++) {
			CHECK_FOR_INTERRUPTS();
			HeapTuple tup = SPI_tuptable->vals[r];
			TupleDesc d = SPI_tuptable->tupdesc;
			bool isnull;
			int g = DatumGetInt32(SPI_getbinval(tup, d, 1, &isnull));
			if (isnull || g < 0 || g >= ngroups)
				elog(ERROR, "checksum group %d of table %s out of range", g, cfg->target_display);
			MemoryContext prev = MemoryContextSwitchTo(rowcxt);
			unsigned char digest[32];
			RowDigest(codecs, cfg->ncolumns, tup, d, 1, &row, digest);
			core::Add256(out[g].sum, digest);
			out[g].rows++;
			MemoryContextSwitchTo(prev);
			MemoryContextReset(rowcxt); /* detoasted values, output texts */
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(rowcxt);
	pfree(row.data);
}

Checksum
LegacyFigures(const config::TableConfig *cfg, const char *cond)
{
	Checksum result;
	LegacyGroupedFigures(cfg, cond, nullptr, 1, &result);
	return result;
}

char *
ModernChecksumSql(const config::TableConfig *cfg, ArrayType *from, ArrayType *to)
{
	char **fromv = BoundValues(cfg, from, "from_key");
	char **tov = BoundValues(cfg, to, "to_key");
	return ModernFiguresSql(cfg, RangeCondition(cfg, fromv, tov, true));
}

char *
ModernFiguresSql(const config::TableConfig *cfg, const char *cond)
{
	Relation rel = table_open(cfg->relid, AccessShareLock);
	ColumnCodec *codecs = TableCodecs(rel, cfg);
	table_close(rel, NoLock);
	int n = cfg->ncolumns;
	const char *schema = cfg->target_schema;
	const char *name = cfg->target_name;
	return pg_string([&]() {
		std::vector<core::CanonicalColumn> cols;
		for (int i = 0; i < n; i++)
			cols.push_back({codecs[i].name, codecs[i].kind, codecs[i].is_array});
		return core::TableChecksumSql(cols, core::QuoteIdent(schema) + "." + core::QuoteIdent(name), cond);
	});
}

static int
HexNibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool
ParseFigures(const char *count, const char *hex, Checksum *out)
{
	memset(out, 0, sizeof *out);
	bool ok = strlen(hex) == 64 && strspn(count, "0123456789") == strlen(count) && count[0] != '\0';
	for (int i = 0; ok && i < 32; i++) {
		int hi = HexNibble(hex[2 * i]), lo = HexNibble(hex[2 * i + 1]);
		ok = hi >= 0 && lo >= 0;
		out->sum[i] = static_cast<unsigned char>(hi * 16 + lo);
	}
	if (ok)
		out->rows = strtoll(count, nullptr, 10);
	return ok;
}

PGconn *
ConnectModern(const config::TableConfig *cfg)
{
	PGconn *conn = remote::Connect(cfg->target_server, cfg->deliver_as, 0, false);
	remote::OwnByTransaction(conn);
	return conn;
}

Checksum
RemoteChecksum(const config::TableConfig *cfg, ArrayType *from, ArrayType *to)
{
	char **fromv = BoundValues(cfg, from, "from_key");
	char **tov = BoundValues(cfg, to, "to_key");
	const char *cond = RangeCondition(cfg, fromv, tov, true);
	return RemoteFigures(cfg, ConnectModern(cfg), cond, nullptr);
}

static char *
SendRemoteFigures(const config::TableConfig *cfg, PGconn *conn, const char *cond, int64 *bytes)
{
	char *inner = ModernFiguresSql(cfg, cond);
	char *sql = psprintf("SELECT q.row_count::text, pg_catalog.encode(q.checksum, 'hex') FROM (%s) AS q", inner);
	if (bytes != nullptr)
		*bytes += strlen(sql) + 100; /* the query, and a row of two short values */
	remote::SendCommand(conn, sql);
	return sql;
}

static Checksum
CollectRemoteFigures(const config::TableConfig *cfg, PGconn *conn, const char *sql)
{
	const remote::Shape shape = {psprintf("the checksum of target table %s", cfg->target_display), 2, 1, 1};
	PGresult *res = remote::WaitQueryShaped(conn, sql, shape);
	Checksum result;
	bool ok = ParseFigures(remote::ValueText(conn, res, 0, 0, shape), remote::ValueText(conn, res, 0, 1, shape),
	                       &result);
	PQclear(res);
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
		                errmsg("server \"%s\" returned an unexpected result for %s", cfg->target_server, shape.what)));
	return result;
}

Checksum
RemoteFigures(const config::TableConfig *cfg, PGconn *conn, const char *cond, int64 *bytes)
{
	return CollectRemoteFigures(cfg, conn, SendRemoteFigures(cfg, conn, cond, bytes));
}

} // namespace pgdw::verify

using namespace pgdw;

/* (row_count bigint, checksum bytea) */
static Datum
ChecksumTuple(FunctionCallInfo fcinfo, const verify::Checksum &c)
{
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	bytea *b = static_cast<bytea *>(palloc(VARHDRSZ + 32));
	SET_VARSIZE(b, VARHDRSZ + 32);
	memcpy(VARDATA(b), c.sum, 32);
	Datum values[2] = {Int64GetDatum(c.rows), PointerGetDatum(b)};
	bool nulls[2] = {false, false};
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

#define OPT_ARRAY(n) (PG_NARGS() > (n) && !PG_ARGISNULL(n) ? PG_GETARG_ARRAYTYPE_P(n) : nullptr)

extern "C" {

PG_FUNCTION_INFO_V1(dualwrite_row_checksum);
PG_FUNCTION_INFO_V1(dualwrite_table_checksum);
PG_FUNCTION_INFO_V1(dualwrite_checksum_sql);
PG_FUNCTION_INFO_V1(dualwrite_remote_checksum);

Datum
dualwrite_row_checksum(PG_FUNCTION_ARGS)
{
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(0);
	TupleDesc desc = lookup_rowtype_tupdesc_copy(HeapTupleHeaderGetTypeId(rec), HeapTupleHeaderGetTypMod(rec));
	HeapTupleData tup;
	tup.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = InvalidOid;
	tup.t_data = rec;
	verify::ColumnCodec *codecs = static_cast<verify::ColumnCodec *>(palloc0(sizeof(verify::ColumnCodec) * (desc->natts + 1)));
	int n = 0;
	for (int i = 0; i < desc->natts; i++) {
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped)
			continue;
		verify::PrepareCodec(&codecs[n], NameStr(att->attname), att->atttypid);
		codecs[n].source = i + 1;
		n++;
	}
	verify::SortCodecs(codecs, n);
	StringInfoData row;
	initStringInfo(&row);
	for (int i = 0; i < n; i++) {
		bool isnull;
		Datum v = heap_getattr(&tup, codecs[i].source, desc, &isnull);
		verify::AppendColumn(&row, &codecs[i], v, isnull);
	}
	bytea *b = static_cast<bytea *>(palloc(VARHDRSZ + 32));
	SET_VARSIZE(b, VARHDRSZ + 32);
	verify::Sha256(row.data, row.len, reinterpret_cast<unsigned char *>(VARDATA(b)));
	PG_RETURN_BYTEA_P(b);
}

static void
RequireTable(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("tbl must not be NULL")));
}

Datum
dualwrite_table_checksum(PG_FUNCTION_ARGS)
{
	RequireTable(fcinfo);
	config::TableConfig *cfg = verify::LoadFlaggedTable(PG_GETARG_OID(0));
	verify::Checksum c = verify::LegacyChecksum(cfg, OPT_ARRAY(1), OPT_ARRAY(2));
	return ChecksumTuple(fcinfo, c);
}

Datum
dualwrite_checksum_sql(PG_FUNCTION_ARGS)
{
	RequireTable(fcinfo);
	config::TableConfig *cfg = verify::LoadFlaggedTable(PG_GETARG_OID(0));
	PG_RETURN_TEXT_P(cstring_to_text(verify::ModernChecksumSql(cfg, OPT_ARRAY(1), OPT_ARRAY(2))));
}

Datum
dualwrite_remote_checksum(PG_FUNCTION_ARGS)
{
	RequireTable(fcinfo);
	config::TableConfig *cfg = verify::LoadFlaggedTable(PG_GETARG_OID(0));
	verify::Checksum c = verify::RemoteChecksum(cfg, OPT_ARRAY(1), OPT_ARRAY(2));
	return ChecksumTuple(fcinfo, c);
}

} /* extern "C" */

/*-------------------------------------------------------------------------
 * reconcile.cpp
 *    dualwrite.reconcile(tbl, repair): find the rows in which the modern
 *    table differs from the legacy one, optionally repair them.
 *
 * Algorithm: bisection by KEY RANGES.  The whole table's figures (row
 * count, sum of row digests: checksum.hpp) are compared first; equal
 * tables move one figure each way.  A range whose figures differ is split
 * into kFanout sub-ranges at legacy key quantiles (row_number over the key
 * order, computed locally: no network), each sub-range's figures are
 * compared, and only the differing ones are split again, until a range
 * holds at most kLeafRows legacy rows; then both sides send one digest
 * per column for each row of the range (RowFieldsSql) and the rows are
 * matched by key: missing (legacy only), extra (modern only), different
 * (and which columns).  With d differences this moves
 * O(d * kFanout * log_kFanout n) figures plus O(d * kLeafRows) row digests.
 *
 * Why key ranges and not hash-of-key buckets: the modern side computes a
 * range's figure with an index range scan on its key, and so does legacy;
 * a hash bucket needs a full scan of both tables per level.  Key ranges
 * degrade when keys are clustered in big gaps; choosing the split points
 * at quantiles of the actual legacy keys (not by splitting the key space)
 * avoids that: every sub-range holds about the same number of legacy rows.
 * Extra modern rows outside the legacy keys fall into the unbounded first
 * and last ranges, so nothing is out of reach.
 *
 * Live writes: a difference found at a leaf may be a change not yet
 * delivered.  Every suspect row is re-checked (its figures on both sides,
 * a fresh snapshot each) after dualwrite.wait_for_delivery(), which waits
 * for every change committed before it was called, including those of the
 * suspects; only differences that persist are reported.  A row changed
 * again in between is still in flight and is re-checked the same way once
 * more before it is reported (kRechecks).  Run reconcile in READ COMMITTED:
 * under REPEATABLE READ the legacy side would not see newer rows.
 *
 * Repair (legacy is the source of truth) goes through the normal delivery
 * path, in the caller's transaction: the row's current image (locked FOR
 * UPDATE, so no concurrent change can slip in between) is appended to the
 * outbox as an update (an upsert on the modern side), an extra row as a
 * delete of its key.  The worker delivers them in commit order with every
 * other change.
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/verify/reconcile.cpp
 *-------------------------------------------------------------------------
 */
#include "verify/checksum.hpp"

#include "boundary/boundary.hpp"
#include "core/canonical.hpp"
#include "core/quote.hpp"
#include "outbox/outbox.hpp"
#include "remote/connection.hpp"
#include "remote/result.hpp"
#include "verify/canonical.hpp"

extern "C" {
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "storage/itemptr.h"
#include "utils/json.h"
#include "utils/jsonb.h"
}

namespace pgdw::verify {

constexpr int kFanout = 16;
constexpr int64 kLeafRows = 64;
constexpr int kRechecks = 3;

/* One row at a leaf: its key values (text) and one digest per column. */
struct LeafRow {
	char **key;
	char **digests; /* hex, canonical column order */
};

struct Difference {
	char **key;
	char kind; /* 'm'issing, 'e'xtra, 'd'ifferent */
	char **columns;
	int ncolumns;
};

struct Run {
	const config::TableConfig *cfg;
	ColumnCodec *codecs; /* sorted; source = index in cfg->columns */
	int nkey;
	int *keycols; /* indexes in cfg->columns of the key columns */
	PGconn *conn;
	int64 bytes;
	Difference *diffs;
	int ndiffs, maxdiffs;
};

static void
AddDiff(Run *run, char **key, char kind, char **columns, int ncolumns)
{
	if (run->ndiffs == run->maxdiffs) {
		run->maxdiffs = run->maxdiffs * 2 + 16;
		run->diffs = static_cast<Difference *>(run->diffs ? repalloc(run->diffs, sizeof(Difference) * run->maxdiffs)
		                                                  : palloc(sizeof(Difference) * run->maxdiffs));
	}
	run->diffs[run->ndiffs++] = {key, kind, columns, ncolumns};
}

static int
KeyCompare(const Run *run, char **a, char **b)
{
	for (int k = 0; k < run->nkey; k++) {
		int c = strcmp(a[k], b[k]);
		if (c != 0)
			return c;
	}
	return 0;
}

/* Legacy rows of cond (legacy names), by key text. */
static LeafRow *
LegacyLeaf(Run *run, const char *cond, int *count)
{
	const config::TableConfig *cfg = run->cfg;
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int k = 0; k < run->nkey; k++)
		appendStringInfo(&sql, "%st.%s", k ? ", " : "", quote_identifier(cfg->columns[run->keycols[k]].legacy_name));
	for (int i = 0; i < cfg->ncolumns; i++)
		appendStringInfo(&sql, ", t.%s", quote_identifier(cfg->columns[i].legacy_name));
	appendStringInfo(&sql, " FROM %s AS t WHERE %s",
	                 quote_qualified_identifier(get_namespace_name(get_rel_namespace(cfg->relid)),
	                                            get_rel_name(cfg->relid)),
	                 cond);
	MemoryContext outer = CurrentMemoryContext;
	SPI_connect();
	if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the rows of table %s", cfg->target_display);
	int n = static_cast<int>(SPI_processed);
	MemoryContext spi = MemoryContextSwitchTo(outer);
	LeafRow *rows = static_cast<LeafRow *>(palloc0(sizeof(LeafRow) * (n + 1)));
	StringInfoData buf;
	initStringInfo(&buf);
	for (int r = 0; r < n; r++) {
		HeapTuple tup = SPI_tuptable->vals[r];
		TupleDesc d = SPI_tuptable->tupdesc;
		rows[r].key = static_cast<char **>(palloc(sizeof(char *) * run->nkey));
		for (int k = 0; k < run->nkey; k++)
			rows[r].key[k] = SPI_getvalue(tup, d, k + 1);
		rows[r].digests = static_cast<char **>(palloc(sizeof(char *) * cfg->ncolumns));
		for (int i = 0; i < cfg->ncolumns; i++) {
			bool isnull;
			Datum v = SPI_getbinval(tup, d, run->nkey + run->codecs[i].source + 1, &isnull);
			resetStringInfo(&buf);
			AppendColumn(&buf, &run->codecs[i], v, isnull);
			unsigned char digest[32];
			Sha256(buf.data, buf.len, digest);
			char *hex = static_cast<char *>(palloc(65));
			for (int b = 0; b < 32; b++)
				snprintf(hex + 2 * b, 3, "%02x", digest[b]);
			rows[r].digests[i] = hex;
		}
	}
	MemoryContextSwitchTo(spi);
	SPI_finish();
	*count = n;
	return rows;
}

/* Modern rows of cond (modern names). */
static LeafRow *
ModernLeaf(Run *run, const char *cond, int *count)
{
	const config::TableConfig *cfg = run->cfg;
	const ColumnCodec *codecs = run->codecs;
	int n = cfg->ncolumns;
	const char **keynames = static_cast<const char **>(palloc(sizeof(char *) * (run->nkey + 1)));
	for (int k = 0; k < run->nkey; k++)
		keynames[k] = cfg->columns[run->keycols[k]].modern_name;
	int nkey = run->nkey;
	char *sql = pg_string([&]() {
		std::vector<core::CanonicalColumn> cols;
		for (int i = 0; i < n; i++)
			cols.push_back({codecs[i].name, codecs[i].kind, codecs[i].is_array});
		std::vector<std::string> key(keynames, keynames + nkey);
		return core::RowFieldsSql(cols, key,
		                          core::QuoteIdent(cfg->target_schema) + "." + core::QuoteIdent(cfg->target_name),
		                          cond);
	});
	const remote::Shape shape = {psprintf("the rows of target table %s", cfg->target_display), nkey + n, 0,
	                             remote::kMaxResultRows};
	PGresult *res = remote::QueryShaped(run->conn, sql, shape);
	int rows_n = PQntuples(res);
	run->bytes += strlen(sql);
	LeafRow *rows = static_cast<LeafRow *>(palloc0(sizeof(LeafRow) * (rows_n + 1)));
	for (int r = 0; r < rows_n; r++) {
		rows[r].key = static_cast<char **>(palloc(sizeof(char *) * nkey));
		for (int k = 0; k < nkey; k++) {
			rows[r].key[k] = pstrdup(remote::ValueText(run->conn, res, r, k, shape));
			run->bytes += strlen(rows[r].key[k]);
		}
		rows[r].digests = static_cast<char **>(palloc(sizeof(char *) * n));
		for (int i = 0; i < n; i++) {
			rows[r].digests[i] = pstrdup(remote::ValueText(run->conn, res, r, nkey + i, shape));
			run->bytes += 64;
		}
	}
	PQclear(res);
	*count = rows_n;
	return rows;
}

/* Compare the rows of one key range (or one key) on both sides. */
static void
CompareLeaf(Run *run, char **from, char **to, Run *out)
{
	const char *lcond = RangeCondition(run->cfg, from, to, false);
	const char *mcond = RangeCondition(run->cfg, from, to, true);
	int nl, nm;
	LeafRow *l = LegacyLeaf(run, lcond[0] ? lcond : "true", &nl);
	LeafRow *m = ModernLeaf(run, mcond, &nm);
	/* both small: quadratic matching is fine (nl <= kLeafRows, typically) */
	bool *matched = static_cast<bool *>(palloc0(sizeof(bool) * (nm + 1)));
	for (int i = 0; i < nl; i++) {
		int j = 0;
		while (j < nm && (matched[j] || KeyCompare(run, l[i].key, m[j].key) != 0))
			j++;
		if (j == nm) {
			AddDiff(out, l[i].key, 'm', nullptr, 0);
			continue;
		}
		matched[j] = true;
		char **cols = static_cast<char **>(palloc(sizeof(char *) * (run->cfg->ncolumns + 1)));
		int nc = 0;
		for (int c = 0; c < run->cfg->ncolumns; c++)
			if (strcmp(l[i].digests[c], m[j].digests[c]) != 0)
				cols[nc++] = pstrdup(run->codecs[c].name);
		if (nc > 0)
			AddDiff(out, l[i].key, 'd', cols, nc);
	}
	for (int j = 0; j < nm; j++)
		if (!matched[j])
			AddDiff(out, m[j].key, 'e', nullptr, 0);
}

/* Up to kFanout - 1 split points of [from, to) at legacy key quantiles. */
static char ***
SplitPoints(Run *run, const char *cond, int64 rows, int *count)
{
	const config::TableConfig *cfg = run->cfg;
	StringInfoData keys;
	initStringInfo(&keys);
	for (int k = 0; k < run->nkey; k++)
		appendStringInfo(&keys, "%st.%s", k ? ", " : "", quote_identifier(cfg->columns[run->keycols[k]].legacy_name));
	int64 step = Max(rows / kFanout, 1);
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int k = 0; k < run->nkey; k++)
		appendStringInfo(&sql, "%ss.k%d::text", k ? ", " : "", k);
	appendStringInfoString(&sql, " FROM (SELECT ");
	for (int k = 0; k < run->nkey; k++)
		appendStringInfo(&sql, "t.%s AS k%d, ", quote_identifier(cfg->columns[run->keycols[k]].legacy_name), k);
	appendStringInfo(&sql, "row_number() OVER (ORDER BY %s) AS rn FROM %s AS t%s%s) AS s "
	                       "WHERE s.rn > 1 AND (s.rn - 1) %% " INT64_FORMAT " = 0 ORDER BY s.rn",
	                 keys.data,
	                 quote_qualified_identifier(get_namespace_name(get_rel_namespace(cfg->relid)),
	                                            get_rel_name(cfg->relid)),
	                 cond[0] ? " WHERE " : "", cond, step);
	MemoryContext outer = CurrentMemoryContext;
	SPI_connect();
	if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not split the key range of table %s", cfg->target_display);
	int n = static_cast<int>(SPI_processed);
	MemoryContext spi = MemoryContextSwitchTo(outer);
	char ***points = static_cast<char ***>(palloc(sizeof(char **) * (n + 1)));
	for (int i = 0; i < n; i++) {
		points[i] = static_cast<char **>(palloc(sizeof(char *) * run->nkey));
		for (int k = 0; k < run->nkey; k++)
			points[i][k] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, k + 1);
	}
	MemoryContextSwitchTo(spi);
	SPI_finish();
	*count = n;
	return points;
}

/* Bisect [from, to) whose figures differ (legacy figures given). */
static void
Bisect(Run *run, char **from, char **to, const Checksum &legacy, const Checksum &modern)
{
	CHECK_FOR_INTERRUPTS();
	const char *lcond = RangeCondition(run->cfg, from, to, false);
	if (legacy.rows <= kLeafRows || modern.rows <= 1) {
		CompareLeaf(run, from, to, run);
		return;
	}
	int np;
	char ***points = SplitPoints(run, lcond, legacy.rows, &np);
	for (int i = 0; i <= np; i++) {
		char **lo = i == 0 ? from : points[i - 1];
		char **hi = i == np ? to : points[i];
		if (lo == hi) /* a degenerate split (cannot happen with distinct keys) */
			continue;
		Checksum l = LegacyFigures(run->cfg, RangeCondition(run->cfg, lo, hi, false));
		Checksum m = RemoteFigures(run->cfg, run->conn, RangeCondition(run->cfg, lo, hi, true), &run->bytes);
		if (l.rows == m.rows && memcmp(l.sum, m.sum, 32) == 0)
			continue;
		if (np == 0) { /* no progress possible: compare rows */
			CompareLeaf(run, lo, hi, run);
			continue;
		}
		Bisect(run, lo, hi, l, m);
	}
}

/* Re-check the suspects after their pending changes are delivered. */
static void
Recheck(Run *run)
{
	for (int round = 0; round < kRechecks && run->ndiffs > 0; round++) {
		SPI_connect();
		if (SPI_execute("SELECT dualwrite.wait_for_delivery(interval '60 seconds')", false, 0) != SPI_OK_SELECT ||
		    SPI_processed != 1)
			elog(ERROR, "could not wait for delivery");
		bool isnull;
		bool delivered = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		if (!delivered)
			ereport(WARNING, (errmsg("changes of table %s were not delivered within 60 seconds",
			                         run->cfg->target_display),
			                  errdetail("Differences of rows whose changes are still pending may be reported."),
			                  errhint("See dualwrite.status for the table's lag and last error.")));
		Run next = *run;
		next.diffs = nullptr;
		next.ndiffs = next.maxdiffs = 0;
		for (int i = 0; i < run->ndiffs; i++)
			CompareLeaf(run, run->diffs[i].key, run->diffs[i].key, &next);
		bool same = next.ndiffs == run->ndiffs;
		run->diffs = next.diffs;
		run->ndiffs = next.ndiffs;
		run->maxdiffs = next.maxdiffs;
		if (same)
			break; /* nothing was in flight */
	}
}

/* Append the repair of one difference to the outbox (caller's transaction). */
static void
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

/* The target table exists and has the key columns (a clear error if not). */
static void
CheckTarget(Run *run)
{
	const config::TableConfig *cfg = run->cfg;
	StringInfoData keys;
	initStringInfo(&keys);
	for (int k = 0; k < run->nkey; k++)
		appendStringInfo(&keys, "%s%s", k ? "," : "", quote_literal_cstr(cfg->columns[run->keycols[k]].modern_name));
	char *sql = psprintf("SELECT pg_catalog.to_regclass(%s) IS NOT NULL, "
	                     "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a "
	                     "WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s) AND NOT a.attisdropped "
	                     "AND a.attname OPERATOR(pg_catalog.=) ANY (ARRAY[%s]::name[]))::text",
	                     quote_literal_cstr(quote_qualified_identifier(cfg->target_schema, cfg->target_name)),
	                     quote_literal_cstr(quote_qualified_identifier(cfg->target_schema, cfg->target_name)),
	                     keys.data);
	const remote::Shape shape = {psprintf("the lookup of target table %s", cfg->target_display), 2, 1, 1};
	PGresult *res = remote::QueryShaped(run->conn, sql, shape);
	bool exists = remote::ValueBool(run->conn, res, 0, 0, shape);
	const char *nkeys = remote::ValueText(run->conn, res, 0, 1, shape);
	bool keys_ok = atoi(nkeys) == run->nkey;
	PQclear(res);
	run->bytes += strlen(sql) + 10;
	if (!exists)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
		                errmsg("target table %s of table %s does not exist on server \"%s\"", cfg->target_display,
		                       get_rel_name(cfg->relid), cfg->target_server),
		                errhint("Create it, or fix dualwrite.tables.target_table; nothing was compared.")));
	if (!keys_ok)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
		                errmsg("target table %s on server \"%s\" lacks key columns of table %s", cfg->target_display,
		                       cfg->target_server, get_rel_name(cfg->relid)),
		                errdetail("The key is (%s).", config::KeyColumnList(cfg))));
}

static Jsonb *
KeyJson(const Run *run, char **key)
{
	StringInfoData s;
	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	for (int k = 0; k < run->nkey; k++) {
		if (k)
			appendStringInfoString(&s, ", ");
		escape_json(&s, run->cfg->columns[run->keycols[k]].legacy_name);
		appendStringInfoString(&s, ": ");
		escape_json(&s, key[k]);
	}
	appendStringInfoChar(&s, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

} // namespace pgdw::verify

using namespace pgdw;

extern "C" {

PG_FUNCTION_INFO_V1(dualwrite_reconcile);

Datum
dualwrite_reconcile(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("tbl must not be NULL")));
	bool repair = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	TimestampTz started = GetCurrentTimestamp();

	config::TableConfig *cfg = verify::LoadFlaggedTable(PG_GETARG_OID(0));
	verify::Run run;
	memset(&run, 0, sizeof run);
	run.cfg = cfg;
	Relation rel = table_open(cfg->relid, AccessShareLock);
	run.codecs = verify::TableCodecs(rel, cfg);
	table_close(rel, NoLock);
	run.keycols = static_cast<int *>(palloc(sizeof(int) * (cfg->ncolumns + 1)));
	for (int i = 0; i < cfg->ncolumns; i++)
		if (cfg->columns[i].is_key)
			run.keycols[run.nkey++] = i;
	if (run.nkey == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table %s has no key to reconcile by", cfg->target_display)));

	run.conn = verify::ConnectModern(cfg);
	verify::CheckTarget(&run);
	verify::Checksum l = verify::LegacyFigures(cfg, "");
	verify::Checksum m = verify::RemoteFigures(cfg, run.conn, "", &run.bytes);
	if (l.rows != m.rows || memcmp(l.sum, m.sum, 32) != 0) {
		verify::Bisect(&run, nullptr, nullptr, l, m);
		verify::Recheck(&run);
	}

	int repaired = 0;
	if (repair)
		for (int i = 0; i < run.ndiffs; i++, repaired++)
			verify::Repair(&run, run.diffs[i]);

	/* the record of the run */
	SPI_connect();
	Oid types[7] = {REGCLASSOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID};
	Datum values[7] = {ObjectIdGetDatum(cfg->relid), TimestampTzGetDatum(started), Int64GetDatum(l.rows),
	                   Int64GetDatum(run.ndiffs), Int64GetDatum(repaired), Int64GetDatum(run.bytes),
	                   BoolGetDatum(repair)};
	if (SPI_execute_with_args("INSERT INTO dualwrite.reconcile_runs (tbl, started_at, finished_at, rows_compared, "
	                          "differences, repaired, bytes_transferred, repair) "
	                          "VALUES ($1, $2, pg_catalog.clock_timestamp(), $3, $4, $5, $6, $7)",
	                          7, types, values, nullptr, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the reconcile run");
	SPI_finish();

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < run.ndiffs; i++) {
		const verify::Difference &d = run.diffs[i];
		Datum v[3];
		bool n[3] = {false, false, false};
		v[0] = JsonbPGetDatum(verify::KeyJson(&run, d.key));
		v[1] = CStringGetTextDatum(d.kind == 'm' ? "missing" : d.kind == 'e' ? "extra" : "different");
		if (d.kind == 'd') {
			Datum *cols = static_cast<Datum *>(palloc(sizeof(Datum) * d.ncolumns));
			for (int c = 0; c < d.ncolumns; c++)
				cols[c] = CStringGetTextDatum(d.columns[c]);
			v[2] = PointerGetDatum(construct_array_builtin(cols, d.ncolumns, TEXTOID));
		} else
			n[2] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}

} /* extern "C" */

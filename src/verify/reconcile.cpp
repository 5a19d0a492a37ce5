/*-------------------------------------------------------------------------
 * reconcile.cpp
 *    dualwrite.reconcile(tbl, repair, full): the rows in which the modern
 *    table differs from the legacy one, optionally repaired.
 *
 * A run: check the target; choose full or incremental and post the
 * tracking request (incremental.hpp); find candidates -- full: compare the
 * whole table's figures, computed on both sides at once, and bisect if
 * they differ (bisect.cpp); incremental: compare the keys changed since
 * the last run (incremental.cpp) --; keep only those that persist after
 * delivery (Recheck, leaf.cpp: no false positives under live writes; run
 * it in READ COMMITTED: under REPEATABLE READ legacy would not see newer
 * rows); repair (repair.cpp); record the run (reconcile_runs) and the new
 * baseline.
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/verify/reconcile.cpp
 *-------------------------------------------------------------------------
 */
#include "verify/reconcile.hpp"

#include "boundary/boundary.hpp"
#include "core/quote.hpp"
#include "core/typecompat.hpp"
#include "remote/connection.hpp"
#include "remote/result.hpp"
#include "verify/canonical.hpp"
#include "verify/incremental.hpp"

extern "C" {
#include "access/table.h"
#include "utils/array.h"
#include "utils/json.h"
#include "utils/jsonb.h"
}

namespace pgdw::verify {

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

/* The key columns' base types and effective collations, as one query
 * that runs alike on both sides: (name, type, collation). */
static char *
KeyTypesSql(const Run *run, bool modern)
{
	const config::TableConfig *cfg = run->cfg;
	StringInfoData names;
	initStringInfo(&names);
	for (int k = 0; k < run->nkey; k++) {
		const config::ColumnConfig *c = &cfg->columns[run->keycols[k]];
		appendStringInfo(&names, "%s%s", k ? "," : "", quote_literal_cstr(modern ? c->modern_name : c->legacy_name));
	}
	const char *rel = modern ? quote_qualified_identifier(cfg->target_schema, cfg->target_name)
	                         : quote_qualified_identifier(get_namespace_name(get_rel_namespace(cfg->relid)),
	                                                      get_rel_name(cfg->relid));
	return psprintf(
	    "SELECT a.attname::text, pg_catalog.format_type(CASE WHEN t.typbasetype OPERATOR(pg_catalog.<>) 0 "
	    "THEN t.typbasetype ELSE a.atttypid END, NULL), "
	    "CASE WHEN c.collname OPERATOR(pg_catalog.=) 'default' THEN (SELECT d.datcollate::text FROM "
	    "pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) "
	    "WHEN c.oid IS NULL THEN '' ELSE c.collcollate::text END "
	    "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid "
	    "LEFT JOIN pg_catalog.pg_collation c ON c.oid OPERATOR(pg_catalog.=) a.attcollation "
	    "WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s) AND NOT a.attisdropped "
	    "AND a.attname OPERATOR(pg_catalog.=) ANY (ARRAY[%s]::name[])",
	    quote_literal_cstr(rel), names.data);
}

/* Both sides order and print the key alike (bisect.cpp needs it). */
static void
CheckKeyTypes(Run *run)
{
	const config::TableConfig *cfg = run->cfg;
	char *msql = KeyTypesSql(run, true);
	const remote::Shape shape = {psprintf("the key types of target table %s", cfg->target_display), 3, run->nkey,
	                             run->nkey};
	PGresult *res = remote::QueryShaped(run->conn, msql, shape);
	run->bytes += strlen(msql) + 100;
	SPI_connect();
	if (SPI_execute(KeyTypesSql(run, false), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the key types of table %s", cfg->target_display);
	for (int k = 0; k < run->nkey; k++) {
		const config::ColumnConfig *c = &cfg->columns[run->keycols[k]];
		const char *ltype = nullptr, *lcoll = nullptr;
		for (uint64 r = 0; r < SPI_processed; r++)
			if (strcmp(SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1), c->legacy_name) == 0) {
				ltype = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
				lcoll = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3);
			}
		const char *mtype = nullptr, *mcoll = nullptr;
		for (int r = 0; r < PQntuples(res); r++)
			if (strcmp(remote::ValueText(run->conn, res, r, 0, shape), c->modern_name) == 0) {
				mtype = pstrdup(remote::ValueText(run->conn, res, r, 1, shape));
				mcoll = pstrdup(remote::ValueText(run->conn, res, r, 2, shape));
			}
		if (ltype == nullptr || mtype == nullptr)
			continue; /* CheckTarget reported a missing column */
		bool same_order = pg_entry([&] { return core::KeyOrderCompatible(ltype, mtype); });
		if (!same_order || strcmp(lcoll ? lcoll : "", mcoll) != 0) {
			PQclear(res);
			ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
			                errmsg("key column %s of table %s is %s%s%s on legacy but %s%s%s on server \"%s\"",
			                       quote_identifier(c->legacy_name), cfg->target_display, ltype,
			                       lcoll && lcoll[0] ? " COLLATE " : "", lcoll ? lcoll : "", mtype,
			                       mcoll[0] ? " COLLATE " : "", mcoll, cfg->target_server),
			                errdetail("reconcile compares key ranges and key text on both sides; these keys "
			                          "would order or print differently."),
			                errhint("Give the target key column the same type and collation; nothing was compared.")));
		}
	}
	SPI_finish();
	PQclear(res);
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
	bool full = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
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
	verify::CheckKeyTypes(&run);
	verify::ChooseFigures(&run);

	verify::Tracking tracking = verify::BeginRun(cfg->relid, full);
	if (tracking.reason != nullptr) {
		verify::Bisect(&run);
	} else {
		verify::CompareChangedKeys(&run, tracking);
	}
	verify::Recheck(&run);

	int repaired = 0;
	if (repair)
		for (int i = 0; i < run.ndiffs; i++, repaired++)
			verify::Repair(&run, run.diffs[i]);
	verify::EndRun(&run, tracking, started, repair);

	/* the record of the run */
	SPI_connect();
	Oid types[9] = {REGCLASSOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID, TEXTOID, TEXTOID};
	Datum values[9] = {ObjectIdGetDatum(cfg->relid), TimestampTzGetDatum(started), Int64GetDatum(run.rows_compared),
	                   Int64GetDatum(run.ndiffs), Int64GetDatum(repaired), Int64GetDatum(run.bytes),
	                   BoolGetDatum(repair), CStringGetTextDatum(tracking.reason ? "full" : "incremental"),
	                   tracking.reason ? CStringGetTextDatum(tracking.reason) : (Datum) 0};
	char nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', tracking.reason ? ' ' : 'n'};
	if (SPI_execute_with_args("INSERT INTO dualwrite.reconcile_runs (tbl, started_at, finished_at, rows_compared, "
	                          "differences, repaired, bytes_transferred, repair, mode, full_reason) "
	                          "VALUES ($1, $2, pg_catalog.clock_timestamp(), $3, $4, $5, $6, $7, $8, $9)",
	                          9, types, values, nulls, false, 0) != SPI_OK_INSERT)
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

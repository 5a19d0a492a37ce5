/*-------------------------------------------------------------------------
 * leaf.cpp
 *    Row-by-row comparison of a small set of rows on both sides: a key
 *    range at the bottom of the bisection, the changed keys of an
 *    incremental run, the suspects of a re-check.
 *
 * Both sides send, per row, its key as text and one SHA-256 per column of
 * the canonical field(name) field(value) (legacy in C++, modern by the
 * generated SQL of core::RowFieldsSql); rows are matched by key (both
 * sorted, merged): missing (legacy only), extra (modern only), different
 * (and the columns whose digests differ).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/verify/leaf.cpp
 *-------------------------------------------------------------------------
 */
#include "verify/reconcile.hpp"

#include "boundary/boundary.hpp"
#include "core/canonical.hpp"
#include "core/quote.hpp"
#include "remote/connection.hpp"
#include "remote/result.hpp"
#include "verify/canonical.hpp"

namespace pgdw::verify {

/* Keys per query of a key list (an IN list: index lookups on both sides). */
constexpr int kKeysPerQuery = 1000;
constexpr int kRechecks = 3;

struct LeafRow {
	char **key;
	char **digests; /* hex, canonical column order */
};

void
AddDiff(Run *run, char **key, char kind, char **columns, int ncolumns)
{
	if (run->ndiffs == run->maxdiffs) {
		run->maxdiffs = run->maxdiffs * 2 + 16;
		run->diffs = static_cast<Difference *>(run->diffs ? repalloc(run->diffs, sizeof(Difference) * run->maxdiffs)
		                                                  : palloc(sizeof(Difference) * run->maxdiffs));
	}
	run->diffs[run->ndiffs++] = {key, kind, columns, ncolumns};
}

static int sort_nkey; /* for the qsort comparator */

static int
KeyCompare(char **a, char **b, int nkey)
{
	for (int k = 0; k < nkey; k++) {
		int c = strcmp(a[k], b[k]);
		if (c != 0)
			return c;
	}
	return 0;
}

static int
LeafRowCompare(const void *a, const void *b)
{
	return KeyCompare(static_cast<const LeafRow *>(a)->key, static_cast<const LeafRow *>(b)->key, sort_nkey);
}

/* Legacy rows of cond (legacy names). */
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
	                 cond[0] ? cond : "true");
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

/* Compare the rows selected by lcond (legacy) and mcond (modern). */
static void
CompareRows(Run *run, const char *lcond, const char *mcond, Run *out)
{
	int nl, nm;
	LeafRow *l = LegacyLeaf(run, lcond, &nl);
	LeafRow *m = ModernLeaf(run, mcond, &nm);
	sort_nkey = run->nkey;
	qsort(l, nl, sizeof(LeafRow), LeafRowCompare);
	qsort(m, nm, sizeof(LeafRow), LeafRowCompare);
	int i = 0, j = 0;
	while (i < nl || j < nm) {
		int c = i == nl ? 1 : j == nm ? -1 : KeyCompare(l[i].key, m[j].key, run->nkey);
		if (c < 0) {
			AddDiff(out, l[i++].key, 'm', nullptr, 0);
			continue;
		}
		if (c > 0) {
			AddDiff(out, m[j++].key, 'e', nullptr, 0);
			continue;
		}
		char **cols = static_cast<char **>(palloc(sizeof(char *) * (run->cfg->ncolumns + 1)));
		int nc = 0;
		for (int col = 0; col < run->cfg->ncolumns; col++)
			if (strcmp(l[i].digests[col], m[j].digests[col]) != 0)
				cols[nc++] = pstrdup(run->codecs[col].name);
		if (nc > 0)
			AddDiff(out, l[i].key, 'd', cols, nc);
		i++;
		j++;
	}
}

void
CompareRange(Run *run, char **from, char **to, Run *out)
{
	CompareRows(run, RangeCondition(run->cfg, from, to, false), RangeCondition(run->cfg, from, to, true), out);
}

/* ROW(k1, k2) IN (ROW('a', 'b'), ...) over alias t; one key column: k IN (...). */
static char *
KeysCondition(const Run *run, char ***keys, int nkeys, bool modern)
{
	StringInfoData out;
	initStringInfo(&out);
	bool single = run->nkey == 1;
	appendStringInfoString(&out, single ? "" : "ROW(");
	for (int k = 0; k < run->nkey; k++) {
		const config::ColumnConfig *c = &run->cfg->columns[run->keycols[k]];
		appendStringInfo(&out, "%st.%s", k ? ", " : "", quote_identifier(modern ? c->modern_name : c->legacy_name));
	}
	appendStringInfoString(&out, single ? " IN (" : ") IN (");
	for (int i = 0; i < nkeys; i++) {
		appendStringInfoString(&out, i ? ", " : "");
		appendStringInfoString(&out, single ? "" : "ROW(");
		for (int k = 0; k < run->nkey; k++)
			appendStringInfo(&out, "%s%s", k ? ", " : "", quote_literal_cstr(keys[i][k]));
		appendStringInfoString(&out, single ? "" : ")");
	}
	appendStringInfoChar(&out, ')');
	return out.data;
}

void
CompareKeys(Run *run, char ***keys, int nkeys, Run *out)
{
	for (int i = 0; i < nkeys; i += kKeysPerQuery) {
		CHECK_FOR_INTERRUPTS();
		int n = Min(kKeysPerQuery, nkeys - i);
		CompareRows(run, KeysCondition(run, keys + i, n, false), KeysCondition(run, keys + i, n, true), out);
	}
}

void
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
		char ***keys = static_cast<char ***>(palloc(sizeof(char **) * run->ndiffs));
		for (int i = 0; i < run->ndiffs; i++)
			keys[i] = run->diffs[i].key;
		CompareKeys(run, keys, run->ndiffs, &next);
		bool same = next.ndiffs == run->ndiffs;
		run->diffs = next.diffs;
		run->ndiffs = next.ndiffs;
		run->maxdiffs = next.maxdiffs;
		if (same)
			break; /* nothing was in flight */
	}
}

} // namespace pgdw::verify

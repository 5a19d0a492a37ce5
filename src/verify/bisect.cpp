/*-------------------------------------------------------------------------
 * bisect.cpp
 *    The full run of reconcile: find the rows in which the two tables may
 *    differ by bisecting KEY RANGES, level by level.
 *
 * The whole table's figures (row count, sum of row digests: checksum.hpp)
 * are compared first (reconcile.cpp); equal tables move one figure each
 * way.  Each level then takes every range whose figures differ and, per
 * range:
 *  - legacy reads the range once in key order (an index range scan) and
 *    cuts it into kFanout buckets of equal row count at the keys where
 *    they start (quantiles of the actual keys, so big key gaps do not
 *    matter), summing each bucket's figures as it goes;
 *  - modern computes the same buckets' figures in ONE grouped query (a
 *    CASE over the split keys, GROUP BY bucket: core::GroupedChecksumSql),
 *    sent before legacy reads the next range, so both sides work at once;
 *  - buckets whose figures differ go to the next level; a range of at most
 *    kLeafRows legacy rows is compared row by row (leaf.cpp).
 * With d differences this moves O(d * kFanout * log_kFanout n) figures
 * and O(d * kLeafRows) row digests; each level reads each differing range
 * once on each side.
 *
 * Why key ranges and not hash-of-key buckets: a range is an index range
 * scan on both sides, so deeper levels read only the differing ranges; a
 * hash bucket is spread over the whole key space and needs a full scan of
 * both tables per level.  Key ranges degrade with big key gaps only if
 * split by key value; splitting at legacy row quantiles avoids that.
 * Extra modern rows outside the legacy keys fall into the unbounded first
 * and last ranges, so nothing is out of reach.  The price: both sides
 * must order keys alike, so reconcile refuses key columns whose types
 * order differently (reconcile.cpp).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/verify/bisect.cpp
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

constexpr int kFanout = 16;
constexpr int64 kLeafRows = 64;

struct Range {
	char **from, **to; /* NULL: unbounded */
	Checksum l, m;
};

/* One range cut into buckets on legacy. */
struct Buckets {
	int n;                    /* buckets with rows */
	char **start[kFanout];    /* key where bucket j >= 1 starts */
	Checksum fig[kFanout];    /* legacy figures */
	Checksum mfig[kFanout];   /* modern figures */
	char *modern_sql;         /* the grouped query in flight */
};

static void
LegacyBuckets(Run *run, const Range &r, Buckets *b)
{
	const config::TableConfig *cfg = run->cfg;
	StringInfoData keys, sql;
	initStringInfo(&keys);
	initStringInfo(&sql);
	for (int k = 0; k < run->nkey; k++)
		appendStringInfo(&keys, "%st.%s", k ? ", " : "", quote_identifier(cfg->columns[run->keycols[k]].legacy_name));
	appendStringInfo(&sql, "SELECT %s", keys.data);
	for (int i = 0; i < cfg->ncolumns; i++)
		appendStringInfo(&sql, ", t.%s", quote_identifier(cfg->columns[i].legacy_name));
	const char *cond = RangeCondition(cfg, r.from, r.to, false);
	appendStringInfo(&sql, " FROM %s AS t%s%s ORDER BY %s",
	                 quote_qualified_identifier(get_namespace_name(get_rel_namespace(cfg->relid)),
	                                            get_rel_name(cfg->relid)),
	                 cond[0] ? " WHERE " : "", cond, keys.data);

	memset(b, 0, sizeof *b);
	int64 expected = Max(r.l.rows, 1);
	int64 idx = 0;
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext rowcxt = AllocSetContextCreate(outer, "dualwrite bucket rows", ALLOCSET_DEFAULT_SIZES);
	StringInfoData row;
	initStringInfo(&row);
	SPI_connect();
	SPIPlanPtr plan = SPI_prepare(sql.data, 0, nullptr);
	if (plan == nullptr)
		elog(ERROR, "could not prepare the bucket query of table %s: %s", cfg->target_display,
		     SPI_result_code_string(SPI_result));
	Portal portal = SPI_cursor_open(nullptr, plan, nullptr, nullptr, false);
	for (;;) {
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++, idx++) {
			CHECK_FOR_INTERRUPTS();
			HeapTuple tup = SPI_tuptable->vals[i];
			TupleDesc d = SPI_tuptable->tupdesc;
			/* rows may have been added since the parent's figures: the last bucket takes them */
			int j = static_cast<int>(Min(idx * kFanout / expected, static_cast<int64>(kFanout - 1)));
			if (j >= b->n) {
				b->n = j + 1;
				if (j > 0) {
					MemoryContext prev = MemoryContextSwitchTo(outer);
					b->start[j] = static_cast<char **>(palloc(sizeof(char *) * run->nkey));
					for (int k = 0; k < run->nkey; k++)
						b->start[j][k] = SPI_getvalue(tup, d, k + 1);
					MemoryContextSwitchTo(prev);
				}
			}
			MemoryContext prev = MemoryContextSwitchTo(rowcxt);
			unsigned char digest[32];
			RowDigest(run->codecs, cfg->ncolumns, tup, d, run->nkey, &row, digest);
			core::Add256(b->fig[j].sum, digest);
			b->fig[j].rows++;
			MemoryContextSwitchTo(prev);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(rowcxt);
	pfree(row.data);
}

/* Send the modern side's figures of the same buckets (one grouped query). */
static void
SendModernBuckets(Run *run, const Range &r, Buckets *b)
{
	const config::TableConfig *cfg = run->cfg;
	StringInfoData group;
	initStringInfo(&group);
	appendStringInfoString(&group, "CASE");
	for (int j = 1; j < b->n; j++)
		appendStringInfo(&group, " WHEN %s THEN %d", RangeCondition(cfg, nullptr, b->start[j], true), j - 1);
	appendStringInfo(&group, " ELSE %d END", b->n - 1);
	const char *cond = RangeCondition(cfg, r.from, r.to, true);
	const ColumnCodec *codecs = run->codecs;
	int n = cfg->ncolumns;
	const char *groupsql = group.data;
	char *inner = pg_string([&]() {
		std::vector<core::CanonicalColumn> cols;
		for (int i = 0; i < n; i++)
			cols.push_back({codecs[i].name, codecs[i].kind, codecs[i].is_array});
		return core::GroupedChecksumSql(
		    cols, core::QuoteIdent(cfg->target_schema) + "." + core::QuoteIdent(cfg->target_name), cond, groupsql);
	});
	b->modern_sql =
	    psprintf("SELECT q.g::text, q.row_count::text, pg_catalog.encode(q.checksum, 'hex') FROM (%s) AS q", inner);
	run->bytes += strlen(b->modern_sql);
	remote::SendCommand(run->conn, b->modern_sql);
}

static void
CollectModernBuckets(Run *run, Buckets *b)
{
	const config::TableConfig *cfg = run->cfg;
	const remote::Shape shape = {psprintf("the bucket checksums of target table %s", cfg->target_display), 3, 0,
	                             kFanout};
	PGresult *res = remote::WaitQueryShaped(run->conn, b->modern_sql, shape);
	bool ok = true;
	for (int i = 0; ok && i < PQntuples(res); i++) {
		int g = atoi(remote::ValueText(run->conn, res, i, 0, shape));
		Checksum c;
		ok = g >= 0 && g < b->n &&
		     ParseFigures(remote::ValueText(run->conn, res, i, 1, shape), remote::ValueText(run->conn, res, i, 2, shape),
		                  &c);
		if (ok)
			b->mfig[g] = c;
		run->bytes += 80;
	}
	PQclear(res);
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
		                errmsg("server \"%s\" returned an unexpected result for %s", cfg->target_server, shape.what)));
}

static void
Push(Range **ranges, int *n, int *max, const Range &r)
{
	if (*n == *max) {
		*max = *max * 2 + 16;
		*ranges = static_cast<Range *>(*ranges ? repalloc(*ranges, sizeof(Range) * *max)
		                                       : palloc(sizeof(Range) * *max));
	}
	(*ranges)[(*n)++] = r;
}

void
Bisect(Run *run, const Checksum &legacy, const Checksum &modern)
{
	Range *level = nullptr;
	int nlevel = 0, maxlevel = 0;
	Push(&level, &nlevel, &maxlevel, Range{nullptr, nullptr, legacy, modern});
	while (nlevel > 0) {
		Range *next = nullptr, *leaves = nullptr;
		int nnext = 0, maxnext = 0, nleaves = 0, maxleaves = 0;
		Buckets *buckets = static_cast<Buckets *>(palloc(sizeof(Buckets) * nlevel));
		int pending = -1; /* the range whose modern query is in flight */
		for (int i = 0; i < nlevel; i++) {
			const Range &r = level[i];
			if (r.l.rows <= kLeafRows || r.m.rows <= 1) {
				buckets[i].n = 0;
				Push(&leaves, &nleaves, &maxleaves, r);
				continue;
			}
			LegacyBuckets(run, r, &buckets[i]); /* while modern computes range `pending` */
			if (pending >= 0)
				CollectModernBuckets(run, &buckets[pending]);
			pending = -1;
			if (buckets[i].n <= 1) { /* no split possible: compare rows */
				buckets[i].n = 0;
				Push(&leaves, &nleaves, &maxleaves, r);
				continue;
			}
			SendModernBuckets(run, r, &buckets[i]);
			pending = i;
		}
		if (pending >= 0)
			CollectModernBuckets(run, &buckets[pending]);
		for (int i = 0; i < nlevel; i++) {
			const Buckets &b = buckets[i];
			for (int j = 0; j < b.n; j++) {
				if (b.fig[j].rows == b.mfig[j].rows && memcmp(b.fig[j].sum, b.mfig[j].sum, 32) == 0)
					continue;
				char **lo = j == 0 ? level[i].from : b.start[j];
				char **hi = j == b.n - 1 ? level[i].to : b.start[j + 1];
				Push(&next, &nnext, &maxnext, Range{lo, hi, b.fig[j], b.mfig[j]});
			}
		}
		for (int i = 0; i < nleaves; i++) {
			CHECK_FOR_INTERRUPTS();
			CompareRange(run, leaves[i].from, leaves[i].to, run);
		}
		level = next;
		nlevel = nnext;
	}
}

} // namespace pgdw::verify

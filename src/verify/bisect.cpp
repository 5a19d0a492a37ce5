/*-------------------------------------------------------------------------
 * bisect.cpp
 *    The full run of reconcile: find the rows in which the two tables may
 *    differ by bisecting KEY RANGES, level by level.
 *
 * The figures of a range: (row count, sum of row fingerprints:
 * core/fingerprint.hpp), or with dualwrite.reconcile_figures = sha256 (or a
 * modern server before 14) the SHA-256 figures of checksum.hpp.  With
 * fingerprints the whole table's figures come first (one pass of each
 * side); then, level by level, for every range whose figures differ:
 *  - legacy reads the range's keys once in key order (an index scan) and
 *    takes the keys where kFanout tiles of equal row count start
 *    (quantiles of the actual keys, so big key gaps do not matter);
 *  - both sides then compute the figures of those buckets at the same
 *    time: modern in ONE grouped query (a CASE over the split keys, GROUP
 *    BY bucket: core::GroupedChecksumSql) sent first, legacy in one pass
 *    meanwhile (the same CASE, digests in C++);
 *  - buckets whose figures differ go to the next level; a range of at most
 *    kLeafRows legacy rows is compared row by row (leaf.cpp).
 * Equal tables cost one pass of each side (with SHA-256 figures: the
 * root's buckets, and kFanout figures each way).
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
	bool root;         /* the whole table: figures not known yet */
};

/* One range cut into buckets. */
struct Buckets {
	int n;                    /* buckets */
	char **start[kFanout];    /* key where bucket j >= 1 starts */
	Checksum fig[kFanout];    /* legacy figures */
	Checksum mfig[kFanout];   /* modern figures */
	char *modern_sql;         /* the grouped query in flight */
};

/* Split keys of range r: the first key of each of kFanout tiles of equal
 * legacy row count (quantiles of the actual keys: gaps do not matter).
 * Reads only the key (an index scan). */
static void
SplitPoints(Run *run, const Range &r, Buckets *b)
{
	const config::TableConfig *cfg = run->cfg;
	StringInfoData keys, outk, sql;
	initStringInfo(&keys);
	initStringInfo(&outk);
	initStringInfo(&sql);
	for (int k = 0; k < run->nkey; k++) {
		appendStringInfo(&keys, "%st.%s", k ? ", " : "", quote_identifier(cfg->columns[run->keycols[k]].legacy_name));
		appendStringInfo(&outk, "%ss.k%d", k ? ", " : "", k);
	}
	const char *cond = RangeCondition(cfg, r.from, r.to, false);
	appendStringInfoString(&sql, "SELECT DISTINCT ON (s.tile) ");
	appendStringInfoString(&sql, outk.data);
	appendStringInfoString(&sql, " FROM (SELECT ");
	for (int k = 0; k < run->nkey; k++)
		appendStringInfo(&sql, "t.%s AS k%d, ", quote_identifier(cfg->columns[run->keycols[k]].legacy_name), k);
	appendStringInfo(&sql, "pg_catalog.ntile(%d) OVER (ORDER BY %s) AS tile FROM %s AS t%s%s) AS s "
	                       "ORDER BY s.tile, %s",
	                 kFanout, keys.data,
	                 quote_qualified_identifier(get_namespace_name(get_rel_namespace(cfg->relid)),
	                                            get_rel_name(cfg->relid)),
	                 cond[0] ? " WHERE " : "", cond, outk.data);
	memset(b, 0, sizeof *b);
	MemoryContext outer = CurrentMemoryContext;
	SPI_connect();
	if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not split the key range of table %s", cfg->target_display);
	MemoryContext spi = MemoryContextSwitchTo(outer);
	b->n = Max(static_cast<int>(SPI_processed), 1);
	for (uint64 i = 1; i < SPI_processed && i < static_cast<uint64>(kFanout); i++) {
		b->start[i] = static_cast<char **>(palloc(sizeof(char *) * run->nkey));
		for (int k = 0; k < run->nkey; k++)
			b->start[i][k] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, k + 1);
	}
	MemoryContextSwitchTo(spi);
	SPI_finish();
}

/* CASE WHEN <key> < start1 THEN 0 ... ELSE n-1 END, legacy or modern names. */
static char *
BucketExpr(const Run *run, const Buckets *b, bool modern)
{
	if (b->n <= 1)
		return pstrdup("0");
	StringInfoData group;
	initStringInfo(&group);
	appendStringInfoString(&group, "CASE");
	for (int j = 1; j < b->n; j++)
		appendStringInfo(&group, " WHEN %s THEN %d", RangeCondition(run->cfg, nullptr, b->start[j], modern), j - 1);
	appendStringInfo(&group, " ELSE %d END", b->n - 1);
	return group.data;
}

/* The legacy figures of the buckets: one pass over the range (any order). */
static void
LegacyBuckets(Run *run, const Range &r, Buckets *b)
{
	const char *cond = RangeCondition(run->cfg, r.from, r.to, false);
	if (run->fingerprints)
		LegacyFingerprints(run, cond, b->n > 1 ? BucketExpr(run, b, false) : nullptr, b->n, b->fig);
	else
		LegacyGroupedFigures(run->cfg, cond, BucketExpr(run, b, false), b->n, b->fig);
}

/* Send the modern side's figures of the same buckets (one grouped query). */
static void
SendModernBuckets(Run *run, const Range &r, Buckets *b)
{
	const config::TableConfig *cfg = run->cfg;
	const char *cond = RangeCondition(cfg, r.from, r.to, true);
	const char *groupsql = BucketExpr(run, b, true);
	if (run->fingerprints) {
		b->modern_sql = FingerprintQuery(run, true, cond, b->n > 1 ? groupsql : nullptr);
	} else {
		const ColumnCodec *codecs = run->codecs;
		int n = cfg->ncolumns;
		char *inner = pg_string([&]() {
			std::vector<core::CanonicalColumn> cols;
			for (int i = 0; i < n; i++)
				cols.push_back({codecs[i].name, codecs[i].kind, codecs[i].is_array});
			return core::GroupedChecksumSql(
			    cols, core::QuoteIdent(cfg->target_schema) + "." + core::QuoteIdent(cfg->target_name), cond, groupsql);
		});
		b->modern_sql = psprintf(
		    "SELECT q.g::text, q.row_count::text, pg_catalog.encode(q.checksum, 'hex') FROM (%s) AS q", inner);
	}
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
		const char *count = remote::ValueText(run->conn, res, i, 1, shape);
		const char *figure = remote::ValueText(run->conn, res, i, 2, shape);
		ok = g >= 0 && g < b->n &&
		     (run->fingerprints ? ParseFingerprint(count, figure, &c) : ParseFigures(count, figure, &c));
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
Bisect(Run *run)
{
	Range *level = nullptr;
	int nlevel = 0, maxlevel = 0;
	Range root;
	memset(&root, 0, sizeof root);
	root.root = true;
	if (run->fingerprints) {
		/* The whole table's fingerprints first (one pass of each side, at
		 * the same time): equal tables end here, without SplitPoints()'s
		 * pass over the keys.  A table that differs pays this pass once
		 * more than the SHA-256 figures' path, which splits at once because
		 * its pass is the costly part anyway. */
		Buckets b;
		memset(&b, 0, sizeof b);
		b.n = 1;
		SendModernBuckets(run, root, &b);
		LegacyBuckets(run, root, &b);
		CollectModernBuckets(run, &b);
		run->rows_compared += b.fig[0].rows;
		if (b.fig[0].rows == b.mfig[0].rows && memcmp(b.fig[0].sum, b.mfig[0].sum, 32) == 0)
			return;
		root = Range{nullptr, nullptr, b.fig[0], b.mfig[0], false};
	}
	Push(&level, &nlevel, &maxlevel, root);
	while (nlevel > 0) {
		Range *next = nullptr;
		int nnext = 0, maxnext = 0;
		for (int i = 0; i < nlevel; i++) {
			CHECK_FOR_INTERRUPTS();
			const Range &r = level[i];
			if (!r.root && (r.l.rows <= kLeafRows || r.m.rows <= 1)) {
				CompareRange(run, r.from, r.to, run);
				continue;
			}
			Buckets b;
			SplitPoints(run, r, &b);
			SendModernBuckets(run, r, &b);
			LegacyBuckets(run, r, &b); /* while the modern side computes its figures */
			CollectModernBuckets(run, &b);
			bool split = b.n > 1;
			for (int j = 0; j < b.n; j++) {
				if (r.root)
					run->rows_compared += b.fig[j].rows;
				if (b.fig[j].rows == b.mfig[j].rows && memcmp(b.fig[j].sum, b.mfig[j].sum, 32) == 0)
					continue;
				char **lo = j == 0 ? r.from : b.start[j];
				char **hi = j == b.n - 1 ? r.to : b.start[j + 1];
				if (!split) /* one bucket (at most one legacy row): compare rows */
					CompareRange(run, lo, hi, run);
				else
					Push(&next, &nnext, &maxnext, Range{lo, hi, b.fig[j], b.mfig[j], false});
			}
		}
		level = next;
		nlevel = nnext;
	}
}

} // namespace pgdw::verify

/*-------------------------------------------------------------------------
 * fingerprint.cpp
 *    The fast bucket figures of reconcile (core/fingerprint.hpp says what
 *    they are and why they are right): which figures a run uses, the
 *    query for either side, the legacy side's figures, a modern result.
 *
 * Both sides run the same generated query, so agreement needs no second
 * implementation; the legacy side runs it through SPI while the modern
 * side runs its copy (bisect.cpp sends the modern query first).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/verify/fingerprint.cpp
 *-------------------------------------------------------------------------
 */
#include "verify/reconcile.hpp"

#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "core/fingerprint.hpp"
#include "core/quote.hpp"
#include "remote/connection.hpp"
#include "remote/result.hpp"
#include "verify/canonical.hpp"

namespace pgdw::verify {

/* PostgreSQL 14 added hash_record_extended(). */
constexpr int kFingerprintMinServer = 140000;

static bool
PlainTextType(Oid typid)
{
	Oid base = getBaseType(typid);
	return base == TEXTOID || base == VARCHAROID;
}

void
ChooseFigures(Run *run)
{
	const config::TableConfig *cfg = run->cfg;
	run->fingerprints = guc::reconcile_figures == guc::kFiguresFingerprint &&
	                    PQserverVersion(run->conn) >= kFingerprintMinServer;
	if (!run->fingerprints)
		return;
	/* which modern columns are text or varchar (their ::text is the output
	 * text, cheaper than format(): core/fingerprint.hpp) */
	char *sql = psprintf(
	    "SELECT a.attname::text, (CASE WHEN t.typbasetype OPERATOR(pg_catalog.<>) 0 THEN t.typbasetype "
	    "ELSE a.atttypid END) OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.text'::pg_catalog.regtype, "
	    "'pg_catalog.varchar'::pg_catalog.regtype]::pg_catalog.oid[]) "
	    "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid "
	    "WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s) AND a.attnum OPERATOR(pg_catalog.>) 0 "
	    "AND NOT a.attisdropped",
	    quote_literal_cstr(quote_qualified_identifier(cfg->target_schema, cfg->target_name)));
	const remote::Shape shape = {psprintf("the column types of target table %s", cfg->target_display), 2, 0,
	                             remote::kMaxResultRows};
	PGresult *res = remote::QueryShaped(run->conn, sql, shape);
	run->bytes += strlen(sql) + 40 * PQntuples(res);
	run->modern_plain_text = static_cast<bool *>(palloc0(sizeof(bool) * (cfg->ncolumns + 1)));
	for (int i = 0; i < cfg->ncolumns; i++)
		for (int r = 0; r < PQntuples(res); r++)
			if (strcmp(remote::ValueText(run->conn, res, r, 0, shape), run->codecs[i].name) == 0)
				run->modern_plain_text[i] = remote::ValueBool(run->conn, res, r, 1, shape);
	PQclear(res);
}

char *
FingerprintQuery(const Run *run, bool modern, const char *cond, const char *group)
{
	const config::TableConfig *cfg = run->cfg;
	const ColumnCodec *codecs = run->codecs;
	const bool *mtext = run->modern_plain_text;
	int n = cfg->ncolumns;
	const char *relation =
	    modern ? quote_qualified_identifier(cfg->target_schema, cfg->target_name)
	           : quote_qualified_identifier(get_namespace_name(get_rel_namespace(cfg->relid)), get_rel_name(cfg->relid));
	bool *ltext = static_cast<bool *>(palloc0(sizeof(bool) * (n + 1)));
	for (int i = 0; i < n; i++)
		ltext[i] = !codecs[i].is_array && PlainTextType(codecs[i].typid);
	return pg_string([&]() {
		std::vector<core::FingerprintColumn> cols;
		for (int i = 0; i < n; i++)
			cols.push_back({codecs[i].name, modern ? codecs[i].name : cfg->columns[codecs[i].source].legacy_name,
			                codecs[i].kind, codecs[i].is_array, modern ? mtext[i] : ltext[i]});
		return core::FingerprintSql(cols, relation, cond, group ? group : "");
	});
}

bool
ParseFingerprint(const char *count, const char *figure, Checksum *out)
{
	memset(out, 0, sizeof *out);
	if (count[0] == '\0' || strspn(count, "0123456789") != strlen(count))
		return false;
	out->rows = strtoll(count, nullptr, 10);
	return core::ParseFigure128(figure, out->sum);
}

void
LegacyFingerprints(const Run *run, const char *cond, const char *group, int ngroups, Checksum *out)
{
	const config::TableConfig *cfg = run->cfg;
	char *sql = FingerprintQuery(run, false, cond, group);
	memset(out, 0, sizeof(Checksum) * ngroups);
	SPI_connect();
	/* not read-only: a fresh snapshot per call, as LegacyGroupedFigures */
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not compute the fingerprints of table %s", cfg->target_display);
	for (uint64 r = 0; r < SPI_processed; r++) {
		HeapTuple tup = SPI_tuptable->vals[r];
		TupleDesc d = SPI_tuptable->tupdesc;
		int g = atoi(SPI_getvalue(tup, d, 1));
		Checksum c;
		if (g < 0 || g >= ngroups || !ParseFingerprint(SPI_getvalue(tup, d, 2), SPI_getvalue(tup, d, 3), &c))
			elog(ERROR, "fingerprint group %d of table %s out of range", g, cfg->target_display);
		out[g] = c;
	}
	SPI_finish();
}

} // namespace pgdw::verify

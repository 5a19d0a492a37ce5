/*-------------------------------------------------------------------------
 * apply_sql.cpp
 *    SQL generation for the set-based apply (see apply_sql.hpp).
 *
 * IDENTIFICATION  src/core/apply_sql.cpp
 *-------------------------------------------------------------------------
 */
#include "core/apply_sql.hpp"

#include "core/quote.hpp"

namespace pgdw::core {

std::string
QualifiedTarget(const TargetShape &t)
{
	return QuoteIdent(t.schema) + "." + QuoteIdent(t.table);
}

static std::string
StageName(const TargetShape &t)
{
	return "pg_temp." + QuoteIdent(t.stage);
}

static std::string
ColumnList(const TargetShape &t, const char *prefix)
{
	std::string out;
	for (size_t i = 0; i < t.columns.size(); i++) {
		if (i > 0)
			out += ", ";
		out += prefix;
		out += QuoteIdent(t.columns[i]);
	}
	return out;
}

static std::string
KeyList(const TargetShape &t, const char *prefix)
{
	std::string out;
	for (size_t i = 0; i < t.key.size(); i++) {
		if (i > 0)
			out += ", ";
		out += prefix;
		out += QuoteIdent(t.columns[t.key[i]]);
	}
	return out;
}

/* The newest staged change per key. */
static std::string
NewestPerKey(const TargetShape &t)
{
	return "(SELECT DISTINCT ON (" + KeyList(t, "") + ") * FROM " + StageName(t) + " ORDER BY " + KeyList(t, "") +
	       ", " + QuoteIdent(kOrdColumn) + " DESC)";
}

std::string
StageCreateSql(const TargetShape &t)
{
	/* CREATE TABLE AS ... WITH NO DATA copies the column types (and typmods)
	 * but none of the target's constraints: a staged delete carries only
	 * its key, the other columns are NULL. */
	return "CREATE TEMP TABLE IF NOT EXISTS " + QuoteIdent(t.stage) + " ON COMMIT DELETE ROWS AS SELECT 0::pg_catalog.int8 AS " +
	       QuoteIdent(kOrdColumn) + ", ''::pg_catalog.\"char\" AS " + QuoteIdent(kOpColumn) + ", " + ColumnList(t, "") +
	       " FROM " + QualifiedTarget(t) + " WITH NO DATA";
}

std::string
StageCopySql(const TargetShape &t)
{
	return "COPY " + StageName(t) + " (" + QuoteIdent(kOrdColumn) + ", " + QuoteIdent(kOpColumn) + ", " +
	       ColumnList(t, "") + ") FROM STDIN";
}

std::string
DirectCopySql(const TargetShape &t)
{
	return "COPY " + QualifiedTarget(t) + " (" + ColumnList(t, "") + ") FROM STDIN";
}

std::string
ApplyDeleteSql(const TargetShape &t)
{
	std::string cond;
	for (size_t i = 0; i < t.key.size(); i++) {
		const std::string col = QuoteIdent(t.columns[t.key[i]]);
		cond += " AND t." + col + " OPERATOR(pg_catalog.=) s." + col;
	}
	return "DELETE FROM " + QualifiedTarget(t) + " AS t USING " + NewestPerKey(t) + " AS s WHERE s." +
	       QuoteIdent(kOpColumn) + " OPERATOR(pg_catalog.=) 'D'" + cond;
}

std::string
ApplyUpsertSql(const TargetShape &t)
{
	std::string sql = "INSERT INTO " + QualifiedTarget(t) + " AS t (" + ColumnList(t, "") + ") SELECT " +
	                  ColumnList(t, "s.") + " FROM " + NewestPerKey(t) + " AS s WHERE s." + QuoteIdent(kOpColumn) +
	                  " OPERATOR(pg_catalog.<>) 'D' ON CONFLICT (" + KeyList(t, "") + ") DO ";
	std::string set;
	for (size_t i = 0; i < t.columns.size(); i++) {
		bool is_key = false;
		for (size_t k : t.key)
			is_key = is_key || (k == i);
		if (is_key)
			continue;
		if (!set.empty())
			set += ", ";
		const std::string col = QuoteIdent(t.columns[i]);
		set += col + " = EXCLUDED." + col;
	}
	return sql + (set.empty() ? std::string("NOTHING") : "UPDATE SET " + set);
}

std::string
ApplyTruncateSql(const TargetShape &t)
{
	return "TRUNCATE " + QualifiedTarget(t);
}

std::string
ProgressBootstrapSql()
{
	/* Text columns: the modern side may be any PostgreSQL-protocol server. */
	return "CREATE SCHEMA IF NOT EXISTS _dualwrite; "
	       "CREATE TABLE IF NOT EXISTS _dualwrite.applied ("
	       "origin text PRIMARY KEY, done_snapshot text NOT NULL, cur_snapshot text, "
	       "pos_lsn text, pos_txid text, pos_seq integer, "
	       "applied_at timestamptz NOT NULL DEFAULT pg_catalog.now())";
}

std::string
ProgressSelectSql(const std::string &origin)
{
	return "SELECT done_snapshot, cur_snapshot, pos_lsn, pos_txid, pos_seq FROM _dualwrite.applied WHERE origin = " +
	       QuoteLiteral(origin);
}

std::string
ProgressUpsertSql(const std::string &origin, const std::string &done_snapshot, const std::string &cur_snapshot,
                  const std::string &pos_lsn, const std::string &pos_txid, int pos_seq)
{
	return "INSERT INTO _dualwrite.applied AS a (origin, done_snapshot, cur_snapshot, pos_lsn, pos_txid, pos_seq) "
	       "VALUES (" +
	       QuoteLiteral(origin) + ", " + QuoteLiteral(done_snapshot) + ", " + QuoteLiteral(cur_snapshot) + ", " +
	       QuoteLiteral(pos_lsn) + ", " + QuoteLiteral(pos_txid) + ", " + std::to_string(pos_seq) +
	       ") ON CONFLICT (origin) DO UPDATE SET done_snapshot = EXCLUDED.done_snapshot, "
	       "cur_snapshot = EXCLUDED.cur_snapshot, pos_lsn = EXCLUDED.pos_lsn, pos_txid = EXCLUDED.pos_txid, "
	       "pos_seq = EXCLUDED.pos_seq, applied_at = pg_catalog.now()";
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

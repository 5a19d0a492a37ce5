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

/* " = EXCLUDED." assignments of the non-key columns (empty: all are key). */
static std::string
ExcludedSet(const TargetShape &t)
{
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
	return set.empty() ? std::string("NOTHING") : "UPDATE SET " + set;
}

std::string
ApplyUpsertSql(const TargetShape &t)
{
	return "INSERT INTO " + QualifiedTarget(t) + " AS t (" + ColumnList(t, "") + ") SELECT " + ColumnList(t, "s.") +
	       " FROM " + NewestPerKey(t) + " AS s WHERE s." + QuoteIdent(kOpColumn) +
	       " OPERATOR(pg_catalog.<>) 'D' ON CONFLICT (" + KeyList(t, "") + ") DO " + ExcludedSet(t);
}

std::string
RowUpsertSql(const TargetShape &t)
{
	std::string params;
	for (size_t i = 0; i < t.columns.size(); i++)
		params += (i > 0 ? ", $" : "$") + std::to_string(i + 1);
	return "INSERT INTO " + QualifiedTarget(t) + " AS t (" + ColumnList(t, "") + ") VALUES (" + params +
	       ") ON CONFLICT (" + KeyList(t, "") + ") DO " + ExcludedSet(t);
}

std::string
RowDeleteSql(const TargetShape &t)
{
	std::string where;
	for (size_t k = 0; k < t.key.size(); k++)
		where += (k > 0 ? " AND " : "") + QuoteIdent(t.columns[t.key[k]]) + " OPERATOR(pg_catalog.=) $" +
		         std::to_string(k + 1);
	return "DELETE FROM " + QualifiedTarget(t) + " WHERE " + where;
}

std::string
ApplyTruncateSql(const TargetShape &t)
{
	return "TRUNCATE " + QualifiedTarget(t);
}

std::string
ApplyTruncateSql(const std::vector<const TargetShape *> &targets)
{
	std::string sql = "TRUNCATE ";
	for (size_t i = 0; i < targets.size(); i++)
		sql += (i > 0 ? ", " : "") + QualifiedTarget(*targets[i]);
	return sql;
}

std::string
ProgressSchemaSql()
{
	/* Text columns: the modern side may be any PostgreSQL-protocol server. */
	return "CREATE SCHEMA IF NOT EXISTS _dualwrite; "
	       "CREATE TABLE IF NOT EXISTS _dualwrite.applied ("
	       "origin text PRIMARY KEY, done_snapshot text NOT NULL, cur_snapshot text, "
	       "pos_lsn text, pos_txid text, pos_seq integer, version bigint NOT NULL DEFAULT 0, "
	       "applied_at timestamptz NOT NULL DEFAULT pg_catalog.now())";
}

std::string
ProgressUpgradeSql()
{
	/* a progress table made by an earlier build has no version yet */
	return "ALTER TABLE _dualwrite.applied ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0";
}

std::string
ProgressOwnerCheckSql()
{
	return "SELECT pg_catalog.pg_get_userbyid(n.nspowner), pg_catalog.pg_get_userbyid(c.relowner), "
	       "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid), "
	       "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid), "
	       "c.relkind::text, current_user "
	       "FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid "
	       "WHERE n.nspname = '_dualwrite' AND c.relname = 'applied'";
}

std::string
ProgressRowSql(const std::string &origin)
{
	return "INSERT INTO _dualwrite.applied (origin, done_snapshot) VALUES (" + QuoteLiteral(origin) +
	       ", '3:3:') ON CONFLICT (origin) DO NOTHING";
}

std::string
ProgressRowSql(const std::string &origin, const std::string &done_snapshot, const std::string &cur_snapshot,
               const std::string &pos_lsn, const std::string &pos_txid, int pos_seq)
{
	bool open_range = !cur_snapshot.empty();
	return "INSERT INTO _dualwrite.applied (origin, done_snapshot, cur_snapshot, pos_lsn, pos_txid, pos_seq) "
	       "VALUES (" +
	       QuoteLiteral(origin) + ", " + QuoteLiteral(done_snapshot) + ", " +
	       (open_range ? QuoteLiteral(cur_snapshot) + ", " + QuoteLiteral(pos_lsn) + ", " + QuoteLiteral(pos_txid) +
	                         ", " + std::to_string(pos_seq)
	                   : std::string("NULL, NULL, NULL, NULL")) +
	       ") ON CONFLICT (origin) DO NOTHING";
}

std::string
ProgressBootstrapSql(const std::string &origin)
{
	return ProgressSchemaSql() + "; " + ProgressUpgradeSql() + "; " + ProgressRowSql(origin);
}

std::string
ProgressBootstrapSql(const std::string &origin, const std::string &done_snapshot, const std::string &cur_snapshot,
                     const std::string &pos_lsn, const std::string &pos_txid, int pos_seq)
{
	return ProgressSchemaSql() + "; " + ProgressUpgradeSql() + "; " +
	       ProgressRowSql(origin, done_snapshot, cur_snapshot, pos_lsn, pos_txid, pos_seq);
}

std::string
ProgressSelectSql(const std::string &origin)
{
	return "SELECT done_snapshot, cur_snapshot, pos_lsn, pos_txid, pos_seq, version FROM _dualwrite.applied "
	       "WHERE origin = " +
	       QuoteLiteral(origin);
}

std::string
ProgressCheckSql(const std::string &origin, long long version)
{
	/* A failed check is an error (an impossible cast), so the statements
	 * sent after it in the same string are not run. */
	return "SELECT CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 1 THEN 1 ELSE "
	       "('pg_dualwrite: the progress of ' || " +
	       QuoteLiteral(origin) +
	       " || ' moved on since it was read; batch not applied (' || pg_catalog.count(*) || ')')::integer END "
	       "FROM (SELECT 1 FROM _dualwrite.applied WHERE origin = " +
	       QuoteLiteral(origin) + " AND version = " + std::to_string(version) + " FOR UPDATE) AS c";
}

std::string
ProgressUpdateSql(const std::string &origin, const std::string &done_snapshot, const std::string &cur_snapshot,
                  const std::string &pos_lsn, const std::string &pos_txid, int pos_seq)
{
	return "UPDATE _dualwrite.applied SET done_snapshot = " + QuoteLiteral(done_snapshot) +
	       ", cur_snapshot = " + QuoteLiteral(cur_snapshot) + ", pos_lsn = " + QuoteLiteral(pos_lsn) +
	       ", pos_txid = " + QuoteLiteral(pos_txid) + ", pos_seq = " + std::to_string(pos_seq) +
	       ", version = version + 1, applied_at = pg_catalog.now() WHERE origin = " + QuoteLiteral(origin);
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

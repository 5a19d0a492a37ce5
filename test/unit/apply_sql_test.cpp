/*
 * apply_sql_test.cpp
 *    Unit tests for src/core/apply_sql.hpp: the SQL the worker sends to the
 *    modern database.  Exact strings, so any change to the generated SQL is
 *    a deliberate, reviewed change.
 */
#include "core/apply_sql.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pgdw::core {
namespace {

/* Table public.order_lines (order_id, line_no, qty, note), key (order_id, line_no). */
static TargetShape
TwoColumnKey()
{
	TargetShape t;
	t.schema = "public";
	t.table = "order_lines";
	t.columns = {"order_id", "line_no", "qty", "note"};
	t.key = {0, 1};
	t.stage = "_dw_stage_1";
	return t;
}

/* Key in the middle and listed out of column order. */
static TargetShape
KeyNotFirst()
{
	TargetShape t;
	t.schema = "s";
	t.table = "t";
	t.columns = {"a", "k2", "b", "k1"};
	t.key = {3, 1};
	t.stage = "st";
	return t;
}

/* Every column is part of the key (a pure link table). */
static TargetShape
AllKey()
{
	TargetShape t;
	t.schema = "public";
	t.table = "tags";
	t.columns = {"item_id", "tag"};
	t.key = {0, 1};
	t.stage = "st";
	return t;
}

/* Names that are only correct when quoted. */
static TargetShape
NeedsQuoting()
{
	TargetShape t;
	t.schema = "My Schema";
	t.table = "Order\"Lines";
	t.columns = {"ID", "select", "a.b", u8"Größe"};
	t.key = {0};
	t.stage = "Stage\"1";
	return t;
}

static size_t
Count(const std::string &hay, const std::string &needle)
{
	size_t n = 0;
	for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
		n++;
	return n;
}

/* ------------------------------------------------------------ exact strings */

TEST(ApplySql, QualifiedTarget)
{
	EXPECT_EQ(QualifiedTarget(TwoColumnKey()), "\"public\".\"order_lines\"");
	EXPECT_EQ(QualifiedTarget(NeedsQuoting()), "\"My Schema\".\"Order\"\"Lines\"");
}

TEST(ApplySql, StageCreateTwoColumnKey)
{
	EXPECT_EQ(StageCreateSql(TwoColumnKey()),
	          "CREATE TEMP TABLE IF NOT EXISTS \"_dw_stage_1\" ON COMMIT DELETE ROWS AS SELECT "
	          "0::pg_catalog.int8 AS \"_dw_ord\", ''::pg_catalog.\"char\" AS \"_dw_op\", "
	          "\"order_id\", \"line_no\", \"qty\", \"note\" "
	          "FROM \"public\".\"order_lines\" WITH NO DATA");
}

TEST(ApplySql, StageCopyTwoColumnKey)
{
	EXPECT_EQ(StageCopySql(TwoColumnKey()),
	          "COPY pg_temp.\"_dw_stage_1\" (\"_dw_ord\", \"_dw_op\", \"order_id\", \"line_no\", \"qty\", \"note\") "
	          "FROM STDIN");
}

TEST(ApplySql, DeleteTwoColumnKey)
{
	EXPECT_EQ(ApplyDeleteSql(TwoColumnKey()),
	          "DELETE FROM \"public\".\"order_lines\" AS t USING "
	          "(SELECT DISTINCT ON (\"order_id\", \"line_no\") * FROM pg_temp.\"_dw_stage_1\" "
	          "ORDER BY \"order_id\", \"line_no\", \"_dw_ord\" DESC) AS s "
	          "WHERE s.\"_dw_op\" OPERATOR(pg_catalog.=) 'D'"
	          " AND t.\"order_id\" OPERATOR(pg_catalog.=) s.\"order_id\""
	          " AND t.\"line_no\" OPERATOR(pg_catalog.=) s.\"line_no\"");
}

TEST(ApplySql, UpsertTwoColumnKey)
{
	EXPECT_EQ(ApplyUpsertSql(TwoColumnKey()),
	          "INSERT INTO \"public\".\"order_lines\" AS t (\"order_id\", \"line_no\", \"qty\", \"note\") "
	          "SELECT s.\"order_id\", s.\"line_no\", s.\"qty\", s.\"note\" FROM "
	          "(SELECT DISTINCT ON (\"order_id\", \"line_no\") * FROM pg_temp.\"_dw_stage_1\" "
	          "ORDER BY \"order_id\", \"line_no\", \"_dw_ord\" DESC) AS s "
	          "WHERE s.\"_dw_op\" OPERATOR(pg_catalog.<>) 'D' "
	          "ON CONFLICT (\"order_id\", \"line_no\") DO UPDATE SET "
	          "\"qty\" = EXCLUDED.\"qty\", \"note\" = EXCLUDED.\"note\"");
}

TEST(ApplySql, Truncate)
{
	EXPECT_EQ(ApplyTruncateSql(TwoColumnKey()), "TRUNCATE \"public\".\"order_lines\"");
	EXPECT_EQ(ApplyTruncateSql(NeedsQuoting()), "TRUNCATE \"My Schema\".\"Order\"\"Lines\"");
}

TEST(ApplySql, TruncateOfOneStatementIsOneCommand)
{
	TargetShape a = TwoColumnKey(), b = NeedsQuoting();
	EXPECT_EQ(ApplyTruncateSql(std::vector<const TargetShape *>{&a, &b}),
	          "TRUNCATE \"public\".\"order_lines\", \"My Schema\".\"Order\"\"Lines\"");
	EXPECT_EQ(ApplyTruncateSql(std::vector<const TargetShape *>{&a}), ApplyTruncateSql(a));
}

/* ------------------------------------------------------------ key handling */

TEST(ApplySql, KeysAreNotInUpdateSetList)
{
	const std::string sql = ApplyUpsertSql(TwoColumnKey());
	const size_t set = sql.find(" DO UPDATE SET ");
	ASSERT_NE(set, std::string::npos);
	const std::string set_list = sql.substr(set);
	EXPECT_EQ(set_list.find("\"order_id\""), std::string::npos);
	EXPECT_EQ(set_list.find("\"line_no\""), std::string::npos);
	EXPECT_NE(set_list.find("\"qty\" = EXCLUDED.\"qty\""), std::string::npos);
	EXPECT_NE(set_list.find("\"note\" = EXCLUDED.\"note\""), std::string::npos);
}

TEST(ApplySql, KeyOrderFollowsKeyVectorNotColumnOrder)
{
	const TargetShape t = KeyNotFirst();
	EXPECT_EQ(ApplyUpsertSql(t),
	          "INSERT INTO \"s\".\"t\" AS t (\"a\", \"k2\", \"b\", \"k1\") "
	          "SELECT s.\"a\", s.\"k2\", s.\"b\", s.\"k1\" FROM "
	          "(SELECT DISTINCT ON (\"k1\", \"k2\") * FROM pg_temp.\"st\" "
	          "ORDER BY \"k1\", \"k2\", \"_dw_ord\" DESC) AS s "
	          "WHERE s.\"_dw_op\" OPERATOR(pg_catalog.<>) 'D' "
	          "ON CONFLICT (\"k1\", \"k2\") DO UPDATE SET \"a\" = EXCLUDED.\"a\", \"b\" = EXCLUDED.\"b\"");
	EXPECT_EQ(ApplyDeleteSql(t),
	          "DELETE FROM \"s\".\"t\" AS t USING "
	          "(SELECT DISTINCT ON (\"k1\", \"k2\") * FROM pg_temp.\"st\" "
	          "ORDER BY \"k1\", \"k2\", \"_dw_ord\" DESC) AS s "
	          "WHERE s.\"_dw_op\" OPERATOR(pg_catalog.=) 'D'"
	          " AND t.\"k1\" OPERATOR(pg_catalog.=) s.\"k1\""
	          " AND t.\"k2\" OPERATOR(pg_catalog.=) s.\"k2\"");
}

TEST(ApplySql, AllKeyTableDoesNothingOnConflict)
{
	const std::string sql = ApplyUpsertSql(AllKey());
	EXPECT_EQ(sql,
	          "INSERT INTO \"public\".\"tags\" AS t (\"item_id\", \"tag\") "
	          "SELECT s.\"item_id\", s.\"tag\" FROM "
	          "(SELECT DISTINCT ON (\"item_id\", \"tag\") * FROM pg_temp.\"st\" "
	          "ORDER BY \"item_id\", \"tag\", \"_dw_ord\" DESC) AS s "
	          "WHERE s.\"_dw_op\" OPERATOR(pg_catalog.<>) 'D' "
	          "ON CONFLICT (\"item_id\", \"tag\") DO NOTHING");
	EXPECT_EQ(sql.find("UPDATE"), std::string::npos);
	EXPECT_EQ(sql.find("EXCLUDED"), std::string::npos);
}

TEST(ApplySql, SingleColumnTableThatIsItsKey)
{
	TargetShape t;
	t.schema = "public";
	t.table = "ids";
	t.columns = {"id"};
	t.key = {0};
	t.stage = "st";
	const std::string sql = ApplyUpsertSql(t);
	EXPECT_NE(sql.find("ON CONFLICT (\"id\") DO NOTHING"), std::string::npos) << sql;
	EXPECT_EQ(sql.substr(sql.size() - 10), "DO NOTHING");
}

TEST(ApplySql, SingleKeyNoExtraConditions)
{
	TargetShape t = AllKey();
	t.columns = {"id", "v"};
	t.key = {0};
	EXPECT_EQ(ApplyDeleteSql(t),
	          "DELETE FROM \"public\".\"tags\" AS t USING "
	          "(SELECT DISTINCT ON (\"id\") * FROM pg_temp.\"st\" ORDER BY \"id\", \"_dw_ord\" DESC) AS s "
	          "WHERE s.\"_dw_op\" OPERATOR(pg_catalog.=) 'D' AND t.\"id\" OPERATOR(pg_catalog.=) s.\"id\"");
	EXPECT_EQ(Count(ApplyUpsertSql(t), "EXCLUDED."), 1u);
}

TEST(ApplySql, NewestChangeWinsOrdering)
{
	/* DISTINCT ON keeps the first row per key: _dw_ord must sort DESC, after the key. */
	for (const TargetShape &t : {TwoColumnKey(), KeyNotFirst(), AllKey()}) {
		for (const std::string &sql : {ApplyDeleteSql(t), ApplyUpsertSql(t)}) {
			EXPECT_NE(sql.find(", \"_dw_ord\" DESC)"), std::string::npos) << sql;
			EXPECT_EQ(Count(sql, "DISTINCT ON"), 1u) << sql;
		}
	}
}

TEST(ApplySql, DeleteAndUpsertArePartitionedByOp)
{
	for (const TargetShape &t : {TwoColumnKey(), KeyNotFirst(), AllKey(), NeedsQuoting()}) {
		EXPECT_NE(ApplyDeleteSql(t).find("s.\"_dw_op\" OPERATOR(pg_catalog.=) 'D'"), std::string::npos);
		EXPECT_NE(ApplyUpsertSql(t).find("s.\"_dw_op\" OPERATOR(pg_catalog.<>) 'D'"), std::string::npos);
	}
}

/* ---------------------------------------------------------------- quoting */

TEST(ApplySql, NamesNeedingQuotesAreQuoted)
{
	const TargetShape t = NeedsQuoting();
	const std::string g = u8"\"Größe\"";
	EXPECT_EQ(StageCreateSql(t),
	          "CREATE TEMP TABLE IF NOT EXISTS \"Stage\"\"1\" ON COMMIT DELETE ROWS AS SELECT "
	          "0::pg_catalog.int8 AS \"_dw_ord\", ''::pg_catalog.\"char\" AS \"_dw_op\", "
	          "\"ID\", \"select\", \"a.b\", " + g + " FROM \"My Schema\".\"Order\"\"Lines\" WITH NO DATA");
	EXPECT_EQ(StageCopySql(t),
	          "COPY pg_temp.\"Stage\"\"1\" (\"_dw_ord\", \"_dw_op\", \"ID\", \"select\", \"a.b\", " + g +
	              ") FROM STDIN");
	EXPECT_EQ(ApplyUpsertSql(t),
	          "INSERT INTO \"My Schema\".\"Order\"\"Lines\" AS t (\"ID\", \"select\", \"a.b\", " + g +
	              ") SELECT s.\"ID\", s.\"select\", s.\"a.b\", s." + g +
	              " FROM (SELECT DISTINCT ON (\"ID\") * FROM pg_temp.\"Stage\"\"1\" "
	              "ORDER BY \"ID\", \"_dw_ord\" DESC) AS s WHERE s.\"_dw_op\" OPERATOR(pg_catalog.<>) 'D' "
	              "ON CONFLICT (\"ID\") DO UPDATE SET \"select\" = EXCLUDED.\"select\", "
	              "\"a.b\" = EXCLUDED.\"a.b\", " + g + " = EXCLUDED." + g);
	EXPECT_EQ(ApplyDeleteSql(t),
	          "DELETE FROM \"My Schema\".\"Order\"\"Lines\" AS t USING "
	          "(SELECT DISTINCT ON (\"ID\") * FROM pg_temp.\"Stage\"\"1\" ORDER BY \"ID\", \"_dw_ord\" DESC) AS s "
	          "WHERE s.\"_dw_op\" OPERATOR(pg_catalog.=) 'D' AND t.\"ID\" OPERATOR(pg_catalog.=) s.\"ID\"");
}

TEST(ApplySql, EveryColumnMentionIsQuoted)
{
	/* No column name ever appears bare: each occurrence is inside "...". */
	const TargetShape t = TwoColumnKey();
	for (const std::string &sql : {StageCreateSql(t), StageCopySql(t), ApplyDeleteSql(t), ApplyUpsertSql(t)}) {
		for (const std::string &col : t.columns)
			EXPECT_EQ(Count(sql, col), Count(sql, "\"" + col + "\"")) << col << " in " << sql;
	}
}

/* --------------------------------------------------------------- progress */

TEST(ApplySql, ProgressSchemaRowAndOwnerCheckCompose)
{
	EXPECT_EQ(ProgressBootstrapSql("o'1"), ProgressSchemaSql() + "; " + ProgressUpgradeSql() + "; " + ProgressRowSql("o'1"));
	std::string check = ProgressOwnerCheckSql();
	EXPECT_NE(check.find("n.nspname = '_dualwrite' AND c.relname = 'applied'"), std::string::npos);
	EXPECT_NE(check.find("pg_catalog.pg_trigger"), std::string::npos);
	EXPECT_NE(check.find("pg_catalog.pg_rewrite"), std::string::npos);
}

TEST(ApplySql, ProgressBootstrapWithAFirstPosition)
{
	std::string closed = ProgressBootstrapSql("o:1", "10:12:11", "", "", "", 0);
	EXPECT_NE(closed.find("CREATE TABLE IF NOT EXISTS _dualwrite.applied"), std::string::npos);
	EXPECT_NE(closed.find("VALUES ('o:1', '10:12:11', NULL, NULL, NULL, NULL) ON CONFLICT (origin) DO NOTHING"),
	          std::string::npos);
	EXPECT_EQ(closed.find("'3:3:'"), std::string::npos);
	std::string open = ProgressBootstrapSql("o:1", "10:12:11", "10:20:", "0/16B3748", "15", 3);
	EXPECT_NE(open.find("VALUES ('o:1', '10:12:11', '10:20:', '0/16B3748', '15', 3) ON CONFLICT"), std::string::npos);
}

TEST(ApplySql, ProgressBootstrapCreatesTableAndOriginRow)
{
	EXPECT_EQ(ProgressBootstrapSql("o'1"),
	          "CREATE SCHEMA IF NOT EXISTS _dualwrite; "
	          "CREATE TABLE IF NOT EXISTS _dualwrite.applied ("
	          "origin text PRIMARY KEY, done_snapshot text NOT NULL, cur_snapshot text, "
	          "pos_lsn text, pos_txid text, pos_seq integer, version bigint NOT NULL DEFAULT 0, "
	          "applied_at timestamptz NOT NULL DEFAULT pg_catalog.now()); "
	          "ALTER TABLE _dualwrite.applied ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0; "
	          "INSERT INTO _dualwrite.applied (origin, done_snapshot) VALUES ('o''1', '3:3:') "
	          "ON CONFLICT (origin) DO NOTHING");
}

TEST(ApplySql, ProgressSelectQuotesOrigin)
{
	EXPECT_EQ(ProgressSelectSql("legacy-db"),
	          "SELECT done_snapshot, cur_snapshot, pos_lsn, pos_txid, pos_seq, version FROM _dualwrite.applied "
	          "WHERE origin = 'legacy-db'");
	EXPECT_EQ(ProgressSelectSql("o'brien\\x"),
	          "SELECT done_snapshot, cur_snapshot, pos_lsn, pos_txid, pos_seq, version FROM _dualwrite.applied "
	          "WHERE origin = E'o''brien\\\\x'");
}

TEST(ApplySql, ProgressCheckLocksTheRowAtTheExpectedVersion)
{
	const std::string sql = ProgressCheckSql("legacy", 41);
	EXPECT_NE(sql.find("WHERE origin = 'legacy' AND version = 41 FOR UPDATE"), std::string::npos) << sql;
	/* A mismatch must be an error, not an empty result the worker might ignore. */
	EXPECT_NE(sql.find(")::integer END"), std::string::npos) << sql;
	EXPECT_EQ(sql.find("pg_catalog.count(*) OPERATOR(pg_catalog.=) 1 THEN 1"), sql.find("pg_catalog.count(*)"))
	    << sql;
}

TEST(ApplySql, ProgressUpdateBumpsVersion)
{
	EXPECT_EQ(ProgressUpdateSql("legacy", "100:105:101,103", "105:105:", "0/16B3748", "104", 7),
	          "UPDATE _dualwrite.applied SET done_snapshot = '100:105:101,103', cur_snapshot = '105:105:', "
	          "pos_lsn = '0/16B3748', pos_txid = '104', pos_seq = 7, version = version + 1, "
	          "applied_at = pg_catalog.now() WHERE origin = 'legacy'");
}

TEST(ApplySql, ProgressUpdateQuotesEveryTextValue)
{
	const std::string sql = ProgressUpdateSql("it's", "a\\b", "", "x'y", "z", -1);
	EXPECT_NE(sql.find("done_snapshot = E'a\\\\b', cur_snapshot = '', pos_lsn = 'x''y', pos_txid = 'z', pos_seq = -1"),
	          std::string::npos)
	    << sql;
	EXPECT_NE(sql.find("WHERE origin = 'it''s'"), std::string::npos) << sql;
}

/* Sync mode: one prepared statement per operation, parameters in column order. */
TEST(ApplySql, RowUpsertTwoColumnKey)
{
	EXPECT_EQ(RowUpsertSql(TwoColumnKey()),
	          "INSERT INTO \"public\".\"order_lines\" AS t (\"order_id\", \"line_no\", \"qty\", \"note\") "
	          "VALUES ($1, $2, $3, $4) ON CONFLICT (\"order_id\", \"line_no\") DO UPDATE SET \"qty\" = "
	          "EXCLUDED.\"qty\", \"note\" = EXCLUDED.\"note\"");
}

TEST(ApplySql, RowUpsertAllKeyDoesNothing)
{
	EXPECT_EQ(RowUpsertSql(AllKey()), "INSERT INTO \"public\".\"tags\" AS t (\"item_id\", \"tag\") VALUES ($1, $2) "
	                                  "ON CONFLICT (\"item_id\", \"tag\") DO NOTHING");
}

/* Delete parameters follow the key vector ($1 = first key column listed). */
TEST(ApplySql, RowDeleteParamsInKeyOrder)
{
	EXPECT_EQ(RowDeleteSql(KeyNotFirst()), "DELETE FROM \"s\".\"t\" WHERE \"k1\" OPERATOR(pg_catalog.=) $1 AND "
	                                       "\"k2\" OPERATOR(pg_catalog.=) $2");
}

} // namespace
} // namespace pgdw::core

/*
 * fingerprint_test.cpp
 *    Unit tests for src/core/fingerprint.hpp: the bucket fingerprint query
 *    and the parsing of its figure.
 */
#include "core/fingerprint.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace pgdw::core {
namespace {

std::string
Hex(const unsigned char *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < n; i++) {
		s += d[p[i] >> 4];
		s += d[p[i] & 0xf];
	}
	return s;
}

TEST(ParseFigure128, PositiveNegativeAndLarge)
{
	unsigned char out[16];
	ASSERT_TRUE(ParseFigure128("0", out));
	EXPECT_EQ(Hex(out, 16), std::string(32, '0'));
	ASSERT_TRUE(ParseFigure128("258", out));
	EXPECT_EQ(Hex(out, 16), "00000000000000000000000000000102");
	ASSERT_TRUE(ParseFigure128("-1", out));
	EXPECT_EQ(Hex(out, 16), std::string(32, 'f'));
	/* 2^63 * 2^31: a sum of 2^31 maximal fingerprints */
	ASSERT_TRUE(ParseFigure128("19807040628566084398385987584", out));
	EXPECT_EQ(Hex(out, 16), "00000000400000000000000000000000");
}

TEST(ParseFigure128, RejectsMalformed)
{
	unsigned char out[16];
	EXPECT_FALSE(ParseFigure128("", out));
	EXPECT_FALSE(ParseFigure128("-", out));
	EXPECT_FALSE(ParseFigure128("12a", out));
	EXPECT_FALSE(ParseFigure128("1.5", out));
	EXPECT_FALSE(ParseFigure128("123456789012345678901234567890123456789", out));
}

std::vector<FingerprintColumn>
Columns()
{
	return {{"zeta", "z_legacy", ValueKind::Float, false, false},
	        {"alpha", "a", ValueKind::Text, false, true},
	        {"mid", "m", ValueKind::Text, false, false}};
}

TEST(FingerprintSql, CanonicalOrderAndSideNames)
{
	std::string sql = FingerprintSql(Columns(), "\"s\".\"t\"", "", "");
	/* modern-name order (alpha, mid, zeta), each side's own column names */
	size_t a = sql.find("t.\"a\")"), m = sql.find("t.\"m\")"), z = sql.find("t.\"z_legacy\")");
	ASSERT_NE(a, std::string::npos);
	ASSERT_NE(m, std::string::npos);
	ASSERT_NE(z, std::string::npos);
	EXPECT_LT(a, m);
	EXPECT_LT(m, z);
	EXPECT_EQ(sql.find("GROUP BY"), std::string::npos);
	EXPECT_NE(sql.find("SELECT '0' AS g"), std::string::npos);
	EXPECT_NE(sql.find("FROM \"s\".\"t\" AS t"), std::string::npos);
}

TEST(FingerprintSql, TextIsComparedByBytesAndFloatZeroBySign)
{
	std::string sql = FingerprintSql(Columns(), "t", "", "");
	/* plain text: a cast; other text kinds: the output function; both C */
	EXPECT_NE(sql.find("((t.\"a\")::pg_catalog.text COLLATE pg_catalog.\"C\")"), std::string::npos);
	EXPECT_NE(sql.find("(pg_catalog.format('%s', (t.\"m\")) COLLATE pg_catalog.\"C\")"), std::string::npos);
	EXPECT_NE(sql.find("pg_catalog.atan2((t.\"z_legacy\")::pg_catalog.float8, -1)"), std::string::npos);
}

TEST(FingerprintSql, GroupedWithCondition)
{
	std::string sql = FingerprintSql(Columns(), "t", "t.id >= 5", "CASE WHEN t.id < 9 THEN 0 ELSE 1 END");
	EXPECT_NE(sql.find("SELECT (CASE WHEN t.id < 9 THEN 0 ELSE 1 END)::pg_catalog.text AS g"), std::string::npos);
	EXPECT_NE(sql.find(" WHERE t.id >= 5 GROUP BY 1"), std::string::npos);
}

TEST(FingerprintSql, IntervalAndArraysUseCanonicalFields)
{
	std::vector<FingerprintColumn> cols = {{"iv", "iv", ValueKind::Interval, false, false},
	                                       {"arr", "arr", ValueKind::Int, true, false}};
	std::string sql = FingerprintSql(cols, "t", "", "");
	EXPECT_EQ(sql, FingerprintSql(cols, "t", "", "")); /* deterministic */
	EXPECT_NE(sql.find("array_dims((t.\"arr\"))"), std::string::npos);
	EXPECT_NE(sql.find("extract(month FROM"), std::string::npos);
	EXPECT_EQ(sql.find("(t.\"iv\")::pg_catalog.interval"), std::string::npos);
}

} // namespace
} // namespace pgdw::core

/*
 * typecompat_test.cpp
 *    Unit tests for src/core/typecompat.hpp: which legacy column types may
 *    be delivered (as text) into which modern column types.
 */
#include "core/typecompat.hpp"

#include <gtest/gtest.h>

namespace pgdw::core {
namespace {

/* pg_type.typname / typcategory pairs as in PostgreSQL 15's catalog. */
const ColumnType kInt2{"int2", 'N'};
const ColumnType kInt4{"int4", 'N'};
const ColumnType kInt8{"int8", 'N'};
const ColumnType kNumeric{"numeric", 'N'};
const ColumnType kFloat8{"float8", 'N'};
const ColumnType kText{"text", 'S'};
const ColumnType kVarchar{"varchar", 'S'};
const ColumnType kBpchar{"bpchar", 'S'};
const ColumnType kName{"name", 'S'};
const ColumnType kBool{"bool", 'B'};
const ColumnType kTimestamp{"timestamp", 'D'};
const ColumnType kTimestamptz{"timestamptz", 'D'};
const ColumnType kDate{"date", 'D'};
const ColumnType kUuid{"uuid", 'U'};
const ColumnType kJson{"json", 'U'};
const ColumnType kJsonb{"jsonb", 'U'};
const ColumnType kBytea{"bytea", 'U'};
const ColumnType kInt4Array{"_int4", 'A'};
const ColumnType kTextArray{"_text", 'A'};
const ColumnType kMoodEnum{"mood", 'E'};
const ColumnType kOtherEnum{"color", 'E'};

TEST(TypesCompatible, SameTypeNameIsCompatible)
{
	for (const ColumnType &t : {kInt4, kText, kBool, kTimestamptz, kUuid, kJsonb, kInt4Array, kMoodEnum})
		EXPECT_TRUE(TypesCompatible(t, t)) << t.name;
}

TEST(TypesCompatible, SameNameWinsEvenIfCategoryReportedDifferently)
{
	/* e.g. a user type whose category differs between the two servers */
	EXPECT_TRUE(TypesCompatible(ColumnType{"mytype", 'U'}, ColumnType{"mytype", 'X'}));
}

TEST(TypesCompatible, AnythingIntoStringColumn)
{
	for (const ColumnType &legacy : {kInt4, kNumeric, kBool, kTimestamptz, kUuid, kJsonb, kBytea, kInt4Array,
	                                 kMoodEnum, kVarchar, kName}) {
		EXPECT_TRUE(TypesCompatible(legacy, kText)) << legacy.name << " -> text";
		EXPECT_TRUE(TypesCompatible(legacy, kVarchar)) << legacy.name << " -> varchar";
		EXPECT_TRUE(TypesCompatible(legacy, kBpchar)) << legacy.name << " -> bpchar";
	}
}

TEST(TypesCompatible, NumericIntoNumericBothWays)
{
	EXPECT_TRUE(TypesCompatible(kInt4, kInt8));
	EXPECT_TRUE(TypesCompatible(kInt8, kInt4)); /* out of range fails visibly at apply */
	EXPECT_TRUE(TypesCompatible(kInt2, kNumeric));
	EXPECT_TRUE(TypesCompatible(kNumeric, kFloat8));
	EXPECT_TRUE(TypesCompatible(kFloat8, kInt4));
}

TEST(TypesCompatible, StringIntoNonStringIsIncompatible)
{
	EXPECT_FALSE(TypesCompatible(kText, kInt4));
	EXPECT_FALSE(TypesCompatible(kVarchar, kNumeric));
	EXPECT_FALSE(TypesCompatible(kText, kBool));
	EXPECT_FALSE(TypesCompatible(kText, kUuid));
	EXPECT_FALSE(TypesCompatible(kText, kJsonb));
	EXPECT_FALSE(TypesCompatible(kText, kMoodEnum));
}

TEST(TypesCompatible, TimestamptzIntoTimestampIsIncompatible)
{
	/* would silently drop the offset */
	EXPECT_FALSE(TypesCompatible(kTimestamptz, kTimestamp));
	EXPECT_FALSE(TypesCompatible(kTimestamp, kTimestamptz));
	EXPECT_FALSE(TypesCompatible(kDate, kTimestamp));
}

TEST(TypesCompatible, CrossCategoryIsIncompatible)
{
	EXPECT_FALSE(TypesCompatible(kInt4, kBool));
	EXPECT_FALSE(TypesCompatible(kBool, kInt4));
	EXPECT_FALSE(TypesCompatible(kInt8, kTimestamp));
	EXPECT_FALSE(TypesCompatible(kUuid, kBytea));
	EXPECT_FALSE(TypesCompatible(kJson, kJsonb)); /* same category U, different type */
	EXPECT_FALSE(TypesCompatible(kInt4Array, kTextArray));
	EXPECT_FALSE(TypesCompatible(kMoodEnum, kOtherEnum));
	EXPECT_FALSE(TypesCompatible(kInt4, kInt4Array));
}

TEST(TypesCompatible, DirectionMatters)
{
	EXPECT_TRUE(TypesCompatible(kInt4, kText));
	EXPECT_FALSE(TypesCompatible(kText, kInt4));
	EXPECT_TRUE(TypesCompatible(kJsonb, kText));
	EXPECT_FALSE(TypesCompatible(kText, kJsonb));
}

} // namespace
} // namespace pgdw::core

TEST(KeyOrderCompatible, SameOrderAndText)
{
	using pgdw::core::KeyOrderCompatible;
	EXPECT_TRUE(KeyOrderCompatible("integer", "integer"));
	EXPECT_TRUE(KeyOrderCompatible("integer", "bigint"));
	EXPECT_TRUE(KeyOrderCompatible("text", "character varying"));
	EXPECT_TRUE(KeyOrderCompatible("uuid", "uuid"));
	EXPECT_FALSE(KeyOrderCompatible("integer", "text"));  /* '10' < '9' as text */
	EXPECT_FALSE(KeyOrderCompatible("integer", "numeric")); /* prints 5 vs 5.00 */
	EXPECT_FALSE(KeyOrderCompatible("timestamp with time zone", "timestamp without time zone"));
}

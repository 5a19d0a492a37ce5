/*
 * failure_kind_test.cpp
 *    Unit tests for src/core/failure_kind.hpp: which delivery errors hold a
 *    table and which are retried as they are.
 */
#include "core/failure_kind.hpp"

#include <gtest/gtest.h>

namespace pgdw::core {
namespace {

TEST(FailureKind, ConnectionAndRollbackClassesAreTransient)
{
	EXPECT_TRUE(IsTransientSqlState("08006")); /* connection_failure */
	EXPECT_TRUE(IsTransientSqlState("08001")); /* sqlclient_unable_to_establish_sqlconnection */
	EXPECT_TRUE(IsTransientSqlState("40001")); /* serialization_failure */
	EXPECT_TRUE(IsTransientSqlState("40P01")); /* deadlock_detected */
	EXPECT_TRUE(IsTransientSqlState("53100")); /* disk_full */
	EXPECT_TRUE(IsTransientSqlState("57014")); /* query_canceled */
	EXPECT_TRUE(IsTransientSqlState("57P01")); /* admin_shutdown */
	EXPECT_TRUE(IsTransientSqlState("55P03")); /* lock_not_available */
	EXPECT_TRUE(IsTransientSqlState("XX000")); /* internal_error */
}

TEST(FailureKind, OneTablesProblemsAreNotTransient)
{
	EXPECT_FALSE(IsTransientSqlState("23505")); /* unique_violation */
	EXPECT_FALSE(IsTransientSqlState("23503")); /* foreign_key_violation */
	EXPECT_FALSE(IsTransientSqlState("23514")); /* check_violation */
	EXPECT_FALSE(IsTransientSqlState("42501")); /* insufficient_privilege */
	EXPECT_FALSE(IsTransientSqlState("42P01")); /* undefined_table */
	EXPECT_FALSE(IsTransientSqlState("42703")); /* undefined_column */
	EXPECT_FALSE(IsTransientSqlState("22P02")); /* invalid_text_representation */
	EXPECT_FALSE(IsTransientSqlState("0A000")); /* feature_not_supported (TRUNCATE of a referenced table) */
	EXPECT_FALSE(IsTransientSqlState("55000")); /* object_not_in_prerequisite_state (image layout) */
}

TEST(FailureKind, MalformedStatesAreTreatedAsTransient)
{
	EXPECT_TRUE(IsTransientSqlState(nullptr));
	EXPECT_TRUE(IsTransientSqlState(""));
	EXPECT_TRUE(IsTransientSqlState("2350"));
	EXPECT_TRUE(IsTransientSqlState("235050"));
}

} // namespace
} // namespace pgdw::core

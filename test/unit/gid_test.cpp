#include "core/gid.hpp"

#include <gtest/gtest.h>

using pgdw::core::FormatGid;
using pgdw::core::GidParts;
using pgdw::core::GidPrefix;
using pgdw::core::ParseGid;

TEST(Gid, RoundTripsFullRange)
{
	for (GidParts g : {GidParts{7345678901234567890ull, 16384, 745, 16390}, GidParts{1, 1, 0, 0},
	                   GidParts{UINT64_MAX, UINT32_MAX, UINT64_MAX, UINT32_MAX}, GidParts{42, 5, (3ull << 32) | 17, 9}}) {
		auto back = ParseGid(FormatGid(g));
		ASSERT_TRUE(back.has_value()) << FormatGid(g);
		EXPECT_EQ(back->system_id, g.system_id);
		EXPECT_EQ(back->dboid, g.dboid);
		EXPECT_EQ(back->fxid, g.fxid);
		EXPECT_EQ(back->server, g.server);
	}
}

TEST(Gid, FormatNamesAllThreeParts)
{
	EXPECT_EQ(FormatGid({12, 16384, 4294967301ull, 16500}), "pgdw_12_16384_4294967301_16500");
	EXPECT_EQ(GidPrefix(12, 16384), "pgdw_12_16384_");
	EXPECT_EQ(FormatGid({12, 16384, 9, 1}).rfind(GidPrefix(12, 16384), 0), 0u);
}

TEST(Gid, RejectsForeignAndMalformed)
{
	for (const char *bad : {"", "pgdw_", "pgdw_1_2", "pgdw_1_2_", "pgdw_1_2_3", "pgdw_1_2_3_", "pgdw_1_2_3_4_5",
	                        "pgdw_1_2_x_4", "other_1_2_3_4", "PGDW_1_2_3_4", "pgdw_01_2_3_4", "pgdw_1_2_3_4 ",
	                        "pgdw_-1_2_3_4", "pgdw_1_4294967296_3_4", "pgdw_1_2_18446744073709551616_4",
	                        "pgdw_1_2_3_4294967296", "pgdw_1__3_4"})
		EXPECT_FALSE(ParseGid(bad).has_value()) << bad;
}

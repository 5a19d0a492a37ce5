/*
 * backoff_test.cpp
 *    Unit tests for src/core/backoff.hpp: capped exponential backoff.
 */
#include "core/backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace pgdw::core {
namespace {

constexpr uint32_t kMax32 = std::numeric_limits<uint32_t>::max();

TEST(Backoff, AttemptZeroAndOneGiveMinimum)
{
	EXPECT_EQ(BackoffDelayMs(0, 100, 10000), 100u);
	EXPECT_EQ(BackoffDelayMs(1, 100, 10000), 100u);
}

TEST(Backoff, DoublesPerAttempt)
{
	EXPECT_EQ(BackoffDelayMs(2, 100, 100000), 200u);
	EXPECT_EQ(BackoffDelayMs(3, 100, 100000), 400u);
	EXPECT_EQ(BackoffDelayMs(4, 100, 100000), 800u);
	EXPECT_EQ(BackoffDelayMs(5, 100, 100000), 1600u);
	EXPECT_EQ(BackoffDelayMs(11, 1, 100000), 1024u);
}

TEST(Backoff, ExactPowerOfTwoFormulaBelowCap)
{
	for (uint32_t attempt = 1; attempt <= 20; attempt++)
		EXPECT_EQ(BackoffDelayMs(attempt, 3, kMax32), 3u << (attempt - 1)) << "attempt " << attempt;
}

TEST(Backoff, CappedAtMaximum)
{
	EXPECT_EQ(BackoffDelayMs(5, 100, 1000), 1000u);  /* 1600 -> 1000 */
	EXPECT_EQ(BackoffDelayMs(4, 100, 800), 800u);    /* exactly the cap */
	EXPECT_EQ(BackoffDelayMs(4, 100, 799), 799u);
	EXPECT_EQ(BackoffDelayMs(50, 100, 60000), 60000u);
}

TEST(Backoff, MonotoneNonDecreasingAndBounded)
{
	const uint32_t mins[] = {1, 7, 100, 1000, 65536};
	const uint32_t maxs[] = {1, 999, 30000, 1u << 31, kMax32};
	for (uint32_t mn : mins) {
		for (uint32_t mx : maxs) {
			uint32_t prev = 0;
			for (uint32_t attempt = 0; attempt < 80; attempt++) {
				uint32_t d = BackoffDelayMs(attempt, mn, mx);
				ASSERT_GE(d, prev) << mn << "/" << mx << " attempt " << attempt;
				ASSERT_GE(d, std::min(mn, std::max(mx, mn)));
				ASSERT_LE(d, std::max(mx, mn));
				ASSERT_GE(d, 1u);
				prev = d;
			}
		}
	}
}

TEST(Backoff, HugeAttemptsDoNotOverflow)
{
	EXPECT_EQ(BackoffDelayMs(kMax32, 100, 60000), 60000u);
	EXPECT_EQ(BackoffDelayMs(kMax32, 1, kMax32), kMax32);
	EXPECT_EQ(BackoffDelayMs(33, 1, kMax32), kMax32); /* 2^32 would wrap to 0 */
	EXPECT_EQ(BackoffDelayMs(32, 1, kMax32), 1u << 31);
	EXPECT_EQ(BackoffDelayMs(64, 3, kMax32), kMax32);
	EXPECT_EQ(BackoffDelayMs(1000, kMax32 - 1, kMax32), kMax32);
	EXPECT_EQ(BackoffDelayMs(kMax32, kMax32, kMax32), kMax32);
}

TEST(Backoff, MinimumAboveMaximumGivesMinimum)
{
	EXPECT_EQ(BackoffDelayMs(0, 5000, 1000), 5000u);
	EXPECT_EQ(BackoffDelayMs(1, 5000, 1000), 5000u);
	EXPECT_EQ(BackoffDelayMs(10, 5000, 1000), 5000u);
	EXPECT_EQ(BackoffDelayMs(kMax32, 5000, 0), 5000u);
}

TEST(Backoff, NeverBelowOneMillisecond)
{
	EXPECT_EQ(BackoffDelayMs(0, 0, 0), 1u);
	EXPECT_EQ(BackoffDelayMs(1, 0, 1000), 1u);
	EXPECT_EQ(BackoffDelayMs(2, 0, 1000), 2u);
	EXPECT_EQ(BackoffDelayMs(5, 0, 1000), 16u);
	EXPECT_EQ(BackoffDelayMs(kMax32, 0, 0), 1u);
}

TEST(Backoff, MinEqualsMax)
{
	for (uint32_t attempt : {0u, 1u, 2u, 10u, kMax32})
		EXPECT_EQ(BackoffDelayMs(attempt, 250, 250), 250u);
}

} // namespace
} // namespace pgdw::core

/*-------------------------------------------------------------------------
 * backoff.cpp
 *    Capped exponential backoff (see backoff.hpp).
 *
 * IDENTIFICATION  src/core/backoff.cpp
 *-------------------------------------------------------------------------
 */
#include "core/backoff.hpp"

#include <algorithm>

namespace pgdw::core {

uint32_t
BackoffDelayMs(uint32_t attempt, uint32_t min_ms, uint32_t max_ms)
{
	min_ms = std::max<uint32_t>(min_ms, 1);
	max_ms = std::max(max_ms, min_ms);
	if (attempt <= 1)
		return min_ms;
	uint64_t delay = min_ms;
	for (uint32_t i = 1; i < attempt && delay < max_ms; i++)
		delay *= 2;
	return static_cast<uint32_t>(std::min<uint64_t>(delay, max_ms));
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

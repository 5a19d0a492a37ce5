/*-------------------------------------------------------------------------
 * backoff.hpp
 *    Capped exponential retry backoff for the delivery worker.
 *
 * IDENTIFICATION  src/core/backoff.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include <cstdint>

namespace pgdw::core {

/*
 * Delay before retry number `attempt` (1 = first retry): min_ms doubled per
 * attempt, never above max_ms, never below 1 ms.  Overflow-safe for any
 * attempt count.
 */
uint32_t BackoffDelayMs(uint32_t attempt, uint32_t min_ms, uint32_t max_ms);

} // namespace pgdw::core


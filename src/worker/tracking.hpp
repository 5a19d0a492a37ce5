/*-------------------------------------------------------------------------
 * tracking.hpp
 *    The worker's half of incremental reconcile (verify/incremental.hpp
 *    states the protocol): record the key of every change applied to a
 *    tracked table in dualwrite._reconcile_dirty, in the round's local
 *    transaction, and mark baselines untrusted when records may be lost.
 *
 * Cost: nothing for tables without a baseline or a running reconcile;
 * for a tracked table one key text per staged change in memory, and at
 * the round's end one INSERT of the distinct keys not recorded since the
 * last run (an index probe and, for a new key, an index and heap insert).
 *
 * IDENTIFICATION  src/worker/tracking.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "worker/shapes.hpp"

namespace pgdw::worker {

/* At a round's start, after LoadShapes (SPI connected, in the round's
 * transaction): mark baselines untrusted if records may have been lost,
 * collect old records, and set Target::tracked. */
void BeginTracking();

/* StageRow's part: append the key of the row being staged (key column c's
 * text) to t.keys. */
void StageKeyField(Target &t, const char *text, size_t len, bool first);

/* At the round's end, in its transaction: insert the staged keys. */
void SaveTracking();

/* After the round's transaction committed (true) or failed (false). */
void EndTracking(bool committed);

} // namespace pgdw::worker

/*-------------------------------------------------------------------------
 * incremental.hpp
 *    Incremental re-validation: after a full reconcile, the next runs
 *    compare only the rows whose keys changed since, so a DBA can verify
 *    again and again before cut-over at a cost in proportion to the
 *    changes, not to the table.
 *
 * The record: the worker writes the key of every change it applies to a
 * tracked table into dualwrite._reconcile_dirty (one row per key and
 * round, with a sequence number), in the round's local transaction
 * (worker/tracking.cpp).  A table is tracked once a full run has left a
 * baseline (_reconcile_state), and while a reconcile of it is running
 * (a request in shared memory, shmem/tracking.hpp).
 *
 * A run (full or incremental):
 *  1. takes X = nextval(seq) and posts its request, then waits until the
 *     worker's round running at that moment has ended.  From then on,
 *     every change the worker applies is recorded with a seq > X; every
 *     record <= X is committed.
 *  2. full: bisects the whole table (bisect.cpp).  incremental: waits for
 *     delivery, then compares the keys recorded in (cleared_seq, X] --
 *     each of them was applied before it is compared now.
 *  3. re-checks suspects after delivery (leaf.cpp); repairs (repair.cpp);
 *     keys of differences left unrepaired are recorded again (seq > X).
 *  4. sets cleared_seq = X (full: also baseline_at = its start).
 * Why it is right: a row compared equal in step 2 and changed later by
 * pg_dualwrite is recorded with a seq > X (the change is applied after
 * the comparison, so after step 1), and the next run compares it.  A key
 * compared before step 1 was compared by an earlier run, which cleared
 * only up to its own X.  The worker never updates or deletes what a run
 * reads (it deletes only records <= cleared_seq, after the run that
 * cleared them committed), so the two never conflict.
 *
 * When the incremental result cannot be trusted, the next run is full,
 * and says why (dualwrite._reconcile_next, status.reconcile_next): no
 * baseline; capture was off (dualwrite.enabled) since the baseline; the
 * worker may have lost records (it failed or died after applying, or the
 * server restarted: shared memory is new); more than
 * dualwrite.reconcile_track_max keys changed; a sync-mode table (sessions
 * ship its changes, not the worker).  The rule a DBA must keep: nothing
 * but pg_dualwrite writes to the modern table.  A change made there behind
 * pg_dualwrite's back to a key legacy did not change is seen only by
 * reconcile(tbl, full => true).
 *
 * IDENTIFICATION  src/verify/incremental.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "verify/reconcile.hpp"

namespace pgdw::verify {

struct Tracking {
	int64 upto;         /* X */
	int64 cleared;      /* the baseline's cleared_seq (incremental runs) */
	bool waited;        /* the worker's round ended in time */
	const char *reason; /* why the run is full; NULL: incremental */
};

/* Step 1, and the choice of mode (full_requested: full => true). */
Tracking BeginRun(Oid relid, bool full_requested);

/* Step 2 of an incremental run: the keys recorded in (cleared, upto]
 * (after waiting for delivery), compared into run's differences. */
void CompareChangedKeys(Run *run, const Tracking &t);

/* Step 4 (after repairs): record the run's result. */
void EndRun(Run *run, const Tracking &t, TimestampTz started, bool repaired);

} // namespace pgdw::verify

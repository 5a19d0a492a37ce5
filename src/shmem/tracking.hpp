/*-------------------------------------------------------------------------
 * tracking.hpp
 *    Shared state of incremental reconcile (src/verify/incremental.hpp):
 *    which tables a running full reconcile wants the worker to record the
 *    changed keys of, where the worker's rounds are, and whether keys it
 *    collected may have been lost.
 *
 * The rule the worker follows: a round records the keys of every change
 * it applies for the tables that are tracked when the round starts (a
 * _reconcile_state row, or a request here).  So a full reconcile posts
 * its request, then waits until the round running at that moment (if
 * any) has ended: every change applied after that is recorded.
 *
 * Lost keys: keys are inserted in the round's local transaction, after
 * the remote commits.  A round that fails or a worker that dies after
 * staging keys leaves keys_unsaved set, and shared memory that starts
 * empty (a restart) knows nothing; in both cases the next round marks
 * every baseline untrusted, so the next reconcile is a full one.
 *
 * IDENTIFICATION  src/shmem/tracking.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::shm {

constexpr int kMaxTrackRequests = 64;

struct TrackRequest {
	Oid dboid; /* InvalidOid: free */
	Oid relid;
	int backend; /* MyProcPid of the requester */
	bool lost;   /* the worker may have lost keys since the request */
	int64 upto;  /* the run clears the records up to this seq */
};

/* Per database (in DbSlot). */
struct TrackingState {
	bool keys_known;   /* false until a round ended with nothing lost */
	bool keys_unsaved; /* a round staged keys that are not committed yet */
	bool in_round;
	uint64 round_seq;  /* rounds started */
};

/* The requester's side.  RequestTracking() posts a request for relid
 * (upto: see verify/incremental.hpp) and
 * returns the round it must see start (0: none running, no wait needed);
 * WaitForRound() waits (interruptibly) until a round after it has begun
 * or the worker is not in a round, at most timeout_ms; false on timeout.
 * DropTrackingRequests() removes this backend's requests (at its
 * transaction's end). */
uint64 RequestTracking(Oid relid, int64 upto);
bool WaitForRound(uint64 round, int timeout_ms);
void DropTrackingRequests();
/* Did the worker lose keys since this backend's request for relid? */
bool TrackingRequestLost(Oid relid);

/* The worker's side. */
/* At a round's start: counts the round; says whether keys may have been
 * lost since the last round (the caller marks the baselines untrusted;
 * running requests are marked here); *restart: because shared memory is
 * new. */
bool TrackingRoundStart(bool *lost_reason_restart);
/* The highest `upto` of the running reconciles of relid in this
 * database, -1 if none (then it is not requested). */
int64 TrackingRequestFloor(Oid relid);
/* The record of relid is given up (overflow): a running run of it is
 * told, so its baseline is not trusted. */
void TrackingMarkLost(Oid relid);
/* Keys were staged (not committed yet). */
void TrackingKeysStaged();
/* The round's transaction committed (keys saved) or failed. */
void TrackingRoundEnd(bool committed);

} // namespace pgdw::shm

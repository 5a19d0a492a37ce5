/*-------------------------------------------------------------------------
 * holds.hpp
 *    Holding a table whose change the modern side rejects, so that it
 *    cannot stall the other tables of its server.
 *
 * Streams are per server: one ordered range, one progress row.  When a
 * table's own statement fails in a way retrying as it is cannot fix (see
 * core/failure_kind.hpp) the table is held:
 *  - dualwrite._held records it, with the server stream's progress at that
 *    moment (what the modern side has confirmed: nothing of the failed
 *    batch).  The round that failed was rolled back on the modern side.
 *  - From the next round on the server's stream leaves the table out, and
 *    the table has a stream of its own that starts at that progress (its
 *    own row in _dualwrite.applied), retried with backoff.  Its changes stay
 *    pending in dualwrite._pending (measured against the held stream), so
 *    the outbox keeps them.
 *  - Per-key order holds: all of a key's changes are in the held stream,
 *    in capture order, from where the server stream stopped for it.
 *  - Once the held stream has delivered up to the same snapshot as the
 *    server's stream (both drain to the round's snapshot), the server's
 *    progress is written on the modern side and the hold deleted in the
 *    same local transaction: the next round's range of the server stream
 *    starts exactly where the held stream ended, with the table back in.
 * While held, the table's transactions are no longer applied together with
 * other tables' (the documented exception of guarantee 9).
 *
 * IDENTIFICATION  src/worker/holds.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"
#include "worker/stream.hpp"

namespace pgdw::worker {

/* A row of dualwrite._held. */
struct Hold {
	Oid relid;
	char server[NAMEDATALEN];
	int64 hold_id;
	char *done, *cur; /* local copy of the held stream's progress */
	char lsn[32], txid[32];
	int seq;
};

/* Read dualwrite._held (in the round's transaction and context). */
void LoadHolds();

/* The hold of table `relid`, or NULL. */
const Hold *FindHold(Oid relid);

/* Is `server` the server of a held table (its main stream must then run
 * every round, so that the held table can rejoin it)? */
bool ServerHasHolds(const char *server);

/* After LoadShapes: close held streams whose table is no longer held. */
void ReleaseStaleHeldStreams();

/* End of a round: let held tables that caught up rejoin their server's
 * stream (writes the modern side and dualwrite._held). */
void RejoinCaughtUp(uint64 round);

/* A failed round of stream `s`: if the failure was one table's own and not
 * transient, remember to hold the blamed tables; returns true then. */
bool PrepareHold(const Stream *s, const ErrorData *edata);

/* dualwrite.pause(): remember to hold `relids` (tables of main stream `s`)
 * at its confirmed progress; the caller skips `s` this round, and the
 * hold is committed after the round (CommitPendingHold), before anything
 * is shipped without the tables.  False if `s`'s progress is unknown. */
bool PreparePauseHold(const Stream *s, const Oid *relids, int n);

/* WritePendingHold() in a transaction of its own (after a round). */
void CommitPendingHold();

/* Is a hold waiting for WritePendingHold()? */
bool PrepareHoldPending();

/* In the failure transaction: write the hold PrepareHold() remembered
 * (if any) and count the failure on those tables; true if it did. */
bool WritePendingHold();

/* Local record of a held stream's progress (RecordLocally). */
void RecordHeldProgress(const Stream *s);

} // namespace pgdw::worker

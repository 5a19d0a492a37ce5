/*-------------------------------------------------------------------------
 * drain.hpp
 *    One drain round of a database's outbox: deliver every change that
 *    committed since the last round to its modern server.
 *
 * The algorithm (guarantees 1-3 of SPEC.md):
 *  - A round runs in one REPEATABLE READ transaction whose snapshot S(k)
 *    closes the range: changes whose transaction is committed in S(k) and
 *    not in S(k-1).  Ranges never skip a late committer and never overlap.
 *  - Inside a range, changes are read in (lsn, txid, seq) order, which is
 *    commit order for any one key, and applied in batches of at most
 *    dualwrite.batch_size changes (and dualwrite.batch_bytes of images).
 *  - Whole transactions (guarantee 9): a remote transaction commits only
 *    at a transaction boundary, a point of that order where every legacy
 *    transaction with a change before it has all its changes before it.
 *    The reader marks each transaction's last change (outbox/reader.hpp);
 *    the drain keeps the few transactions begun and not ended so far, and
 *    a batch commits at its last boundary (what follows is read again for
 *    the next batch).  A batch without a boundary (a transaction larger
 *    than a batch, or transactions interleaved so that none ends in it) is
 *    a chunk: applied inside the remote transaction, which stays open for
 *    the next batches and commits at the next boundary.  Memory stays
 *    bounded by the batch; the modern side sees each legacy transaction
 *    at once, when the remote transaction that holds its end commits.
 *    The end of a range is always a boundary: a range holds whole
 *    transactions.
 *  - Why capture order and not transactions one after the other (say by
 *    their last capture position, which also respects each key's commit
 *    order: a transaction changes a key only after the one that changed it
 *    before committed, so after that one's last capture position).  Both
 *    orders are commit order per key; capture order keeps the progress
 *    row a plain position: every
 *    committed position is a boundary, so the changes after it are exactly
 *    the undelivered ones (no transaction straddles it), also after a
 *    restart and across passes.  Transactions one after the other would
 *    need, after a truncated pass, the set of transactions straddling the
 *    position, which the progress row cannot hold.  Per-key order is then
 *    exactly what it was: changes still go in capture order, only the
 *    commit points moved.  The price: where transactions interleave so
 *    that no boundary falls for a long stretch, one remote transaction
 *    covers the stretch (at most the range, in chunks).
 *  - "Whole" is per stream: a transaction's changes to a held or paused
 *    table (holds.hpp) go with that table's own stream, the rest with the
 *    server's; each part is whole.  This is the documented exception.
 *  - Passes: a pass beyond dualwrite.max_sort_keys stops at a limit; the
 *    next pass starts after the last change sent, which may be inside the
 *    open remote transaction (its open transactions carry over).
 *  - Each remote transaction also writes the stream's progress row on the
 *    modern side: (S(k-1), S(k), position of the last change, always a
 *    transaction boundary).  After any
 *    failure the worker reconnects and reads that row back, so a batch
 *    whose COMMIT reached the modern side is never sent again, and one that
 *    did not is sent again in full (no double apply, no loss).
 *
 * IDENTIFICATION  src/worker/drain.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::worker {

/* What a round did. */
struct RoundResult {
	bool no_extension;   /* the database has no pg_dualwrite: stop */
	bool has_tables;     /* at least one flagged table */
	int64 applied;       /* changes applied in this round */
	bool backing_off;    /* a stream is waiting for its retry time */
	bool busy;           /* a flagged table was locked by someone else: try again soon */
};

/* Run one round in its own transactions.  Raises on failure (the caller
 * aborts the transaction and calls OnRoundFailure). */
RoundResult DrainRound();

/* After a failed round: drop the failed stream's connection and schedule
 * its retry with backoff.  Returns the stream's server name (for logs). */
const char *OnRoundFailure(ErrorData *edata, bool *connection_problem, int *attempts, long *retry_ms);

/* Count a failed attempt and its message on the tables going to `server`
 * (dualwrite.status.failed / last_error).  Runs its own transaction; the
 * caller has aborted the failed one.  Raises on failure. */
void RecordFailure(const char *server, const char *message);

struct Stream;
/* Count `count` failed attempts (and the message, if not NULL) on the
 * tables stream `s` delivers.  Needs SPI and a transaction. */
void CountFailures(const Stream *s, int64 count, const char *message);

/* Name of the server whose delivery recovered in the last round, or NULL. */
const char *TakeRecoveredServer(int *after_attempts);

} // namespace pgdw::worker

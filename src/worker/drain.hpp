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
 *    commit order for any one key, and applied in batches of
 *    dualwrite.batch_size, one remote transaction each.
 *  - Each remote transaction also writes the stream's progress row on the
 *    modern side: (S(k-1), S(k), position of the last change).  After any
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

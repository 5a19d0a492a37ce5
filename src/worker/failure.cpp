/*-------------------------------------------------------------------------
 * failure.cpp
 *    What a failed round leaves behind: the failed stream's connection is
 *    dropped, its retry scheduled with capped exponential backoff, and its
 *    failed attempts counted in dualwrite._table_stats (see drain.hpp).
 *
 * IDENTIFICATION  src/worker/failure.cpp
 *-------------------------------------------------------------------------
 */
#include "worker/drain.hpp"

#include "config/guc.hpp"
#include "core/backoff.hpp"
#include "remote/connection.hpp"
#include "worker/apply.hpp"
#include "worker/holds.hpp"
#include "worker/shapes.hpp"
#include "worker/stream.hpp"

namespace pgdw::worker {

static Stream *failed_stream = nullptr; /* of the last OnRoundFailure() */

void
CountFailures(const Stream *s, int64 count, const char *message)
{
	/* A held table's stream counts on that table; a server's stream on its
	 * tables that are not held. */
	Oid types[4] = {TEXTOID, INT8OID, TEXTOID, OIDOID};
	Datum values[4] = {CStringGetTextDatum(s->server), Int64GetDatum(count),
	                   message != nullptr ? CStringGetTextDatum(message) : (Datum) 0,
	                   ObjectIdGetDatum(s->held_relid)};
	char nulls[4] = {' ', ' ', message != nullptr ? ' ' : 'n', ' '};
	SPI_connect();
	if (SPI_execute_with_args(
	        "UPDATE dualwrite._table_stats s SET failures = s.failures + $2, "
	        "last_error = COALESCE($3, s.last_error), "
	        "last_error_at = CASE WHEN $3 IS NULL THEN s.last_error_at ELSE pg_catalog.now() END "
	        "FROM dualwrite.tables t WHERE t.tbl::oid = s.relid AND t.target_server = $1::name "
	        "AND CASE WHEN $4 OPERATOR(pg_catalog.<>) 0 THEN s.relid = $4 "
	        "ELSE NOT EXISTS (SELECT 1 FROM dualwrite._held h WHERE h.relid = s.relid) END",
	        4, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record delivery failures");
	SPI_finish();
}

const char *
OnRoundFailure(ErrorData *edata, bool *connection_problem, int *attempts, long *retry_ms)
{
	Stream *s = current_stream;
	current_stream = nullptr;
	failed_stream = s;
	/* Before AbandonBatches(): the blamed tables are the failed call's. */
	bool hold = PrepareHold(s, edata);
	AbandonBatches();
	*connection_problem = ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION;
	if (s == nullptr) {
		*attempts = 0;
		*retry_ms = guc::retry_backoff_min_ms;
		return nullptr;
	}
	/* The connection's state is unknown (maybe mid-transaction): drop it;
	 * reconnecting reads the true progress back from the modern side. */
	remote::Disconnect(s->conn);
	s->conn = nullptr;
	s->progress_known = false;
	if (hold) {
		/* Not the stream's failure: it goes on at once without the table. */
		*attempts = 0;
		*retry_ms = 0;
		s->retry_at = 0;
		return s->server;
	}
	s->failures++;
	s->unrecorded_failures++;
	*attempts = static_cast<int>(s->failures);
	*retry_ms = core::BackoffDelayMs(s->failures, guc::retry_backoff_min_ms, guc::retry_backoff_max_ms);
	s->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), *retry_ms);
	return s->server;
}

/* Failed attempts of `server` are written to _table_stats when the error
 * changes, and otherwise at most this often (a write costs an xid and WAL:
 * a stream retrying for hours must not burn them several times a second). */
constexpr long kFailureRecordIntervalMs = 30000;

void
RecordFailure(const char *server, const char *message)
{
	Stream *stream = failed_stream;
	if (message == nullptr)
		message = "";
	TimestampTz now = GetCurrentTimestamp();
	if (stream != nullptr && PrepareHoldPending()) {
		CommitPendingHold();
		return;
	}
	if (stream != nullptr && strncmp(stream->recorded_error, message, sizeof(stream->recorded_error) - 1) == 0 &&
	    !TimestampDifferenceExceeds(stream->recorded_at, now, kFailureRecordIntervalMs))
		return; /* counted at the next write (or at recovery) */
	int64 count = stream != nullptr ? stream->unrecorded_failures : 1;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (stream != nullptr)
		CountFailures(stream, count, message);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	if (stream != nullptr) {
		stream->unrecorded_failures = 0;
		strlcpy(stream->recorded_error, message, sizeof(stream->recorded_error));
		stream->recorded_at = now;
	}
}

const char *
TakeRecoveredServer(int *after_attempts)
{
	for (auto &s : streams)
		if (s.server[0] != '\0' && s.recovered_after > 0) {
			*after_attempts = static_cast<int>(s.recovered_after);
			s.recovered_after = 0;
			return s.server;
		}
	return nullptr;
}

} // namespace pgdw::worker

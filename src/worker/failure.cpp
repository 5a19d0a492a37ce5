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
#include "worker/shapes.hpp"
#include "worker/stream.hpp"

namespace pgdw::worker {

const char *
OnRoundFailure(ErrorData *edata, bool *connection_problem, int *attempts, long *retry_ms)
{
	Stream *s = current_stream;
	current_stream = nullptr;
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
	Stream *stream = FindStream(server);
	if (message == nullptr)
		message = "";
	TimestampTz now = GetCurrentTimestamp();
	if (stream != nullptr && strncmp(stream->recorded_error, message, sizeof(stream->recorded_error) - 1) == 0 &&
	    !TimestampDifferenceExceeds(stream->recorded_at, now, kFailureRecordIntervalMs))
		return; /* counted at the next write (or at recovery) */
	int64 count = stream != nullptr ? stream->unrecorded_failures : 1;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	Oid types[3] = {TEXTOID, TEXTOID, INT8OID};
	Datum values[3] = {CStringGetTextDatum(server), CStringGetTextDatum(message), Int64GetDatum(count)};
	if (SPI_execute_with_args("UPDATE dualwrite._table_stats s SET failures = s.failures + $3, last_error = $2, "
	                          "last_error_at = pg_catalog.now() FROM dualwrite.tables t "
	                          "WHERE t.tbl::oid = s.relid AND t.target_server = $1::name",
	                          3, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the delivery failure");
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

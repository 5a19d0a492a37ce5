/*-------------------------------------------------------------------------
 * pipeline.cpp
 *    libpq pipeline mode for sync mode's shipping (see connection.hpp):
 *    a transaction's BEGIN, its prepared statements and PREPARE TRANSACTION
 *    leave in one flush and come back in one wait, so a sync commit costs
 *    one round trip before the local commit (plus one for COMMIT PREPARED
 *    after it), however many rows it changed.
 *
 * Frames hold only trivially destructible locals; errors are ereports.
 * A connection left in pipeline mode by an error is dropped by its owner
 * (src/sync/session.cpp), never reused.
 *
 * IDENTIFICATION  src/remote/pipeline.cpp
 *-------------------------------------------------------------------------
 */
#include "remote/internal.hpp"

namespace pgdw::remote {

/* libpq sends a pipeline's buffer by itself once it passes 64 kB; every
 * kFlushEvery commands we also wait until it is all out, reading answers
 * meanwhile (the server stops reading when its output is not read), so a
 * large transaction does not pile up in our memory. */
static constexpr int kFlushEvery = 1024;
static int sent_since_flush = 0;

static void
FlushAll(PGconn *conn)
{
	for (;;) {
		int rc = PQflush(conn);
		if (rc == 0)
			return;
		if (rc < 0)
			RaiseRemoteError(conn, nullptr, "pipeline");
		WaitSocket(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, 0, "sending a pipeline");
		CountIncoming(conn);
		if (!PQconsumeInput(conn))
			RaiseRemoteError(conn, nullptr, "pipeline");
	}
}

void
PipelineSend(PGconn *conn)
{
	FlushAll(conn);
}

void
PipelineBegin(PGconn *conn)
{
	StartCall();
	sent_since_flush = 0;
	if (!PQenterPipelineMode(conn))
		RaiseRemoteError(conn, nullptr, "entering pipeline mode");
}

void
PipelinePrepare(PGconn *conn, const char *name, const char *sql, int nparams)
{
	if (!PQsendPrepare(conn, name, sql, nparams, nullptr))
		RaiseRemoteError(conn, nullptr, sql);
}

void
PipelineExecPrepared(PGconn *conn, const char *name, int nparams, const char *const *values)
{
	if (!PQsendQueryPrepared(conn, name, nparams, values, nullptr, nullptr, 0))
		RaiseRemoteError(conn, nullptr, name);
	if (++sent_since_flush >= kFlushEvery) {
		sent_since_flush = 0;
		FlushAll(conn);
	}
}

void
PipelineExec(PGconn *conn, const char *sql)
{
	/* PQsendQuery (simple protocol) is not allowed in pipeline mode. */
	if (!PQsendQueryParams(conn, sql, 0, nullptr, nullptr, nullptr, nullptr, 0))
		RaiseRemoteError(conn, nullptr, sql);
}

/* Next result, waiting interruptibly (NULL between commands). */
static PGresult *
Next(PGconn *conn)
{
	while (PQisBusy(conn)) {
		WaitSocket(conn, WL_SOCKET_READABLE, 0, "waiting for pipeline results");
		CountIncoming(conn);
		if (!PQconsumeInput(conn))
			RaiseRemoteError(conn, nullptr, "pipeline");
	}
	return PQgetResult(conn);
}

PGresult *
PipelineEnd(PGconn *conn, int *failed_command)
{
	StartCall();
	if (!PQpipelineSync(conn))
		RaiseRemoteError(conn, nullptr, "pipeline sync");
	FlushAll(conn);
	PGresult *failed = nullptr;
	int command = 0;
	*failed_command = -1;
	/* Each command ends with a NULL; the Sync with PGRES_PIPELINE_SYNC. */
	for (;;) {
		PGresult *res = Next(conn);
		if (res == nullptr) {
			command++;
			continue;
		}
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
			PQclear(res);
			if (failed != nullptr)
				PQclear(failed);
			ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
			                errmsg("server \"%s\" answered a pipeline with COPY", ServerName(conn)),
			                errhint("Check that the server is the modern PostgreSQL database (host, port).")));
		}
		/* After a failure the server skips the rest: PIPELINE_ABORTED. */
		if (failed == nullptr && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_PIPELINE_ABORTED) {
			failed = res;
			*failed_command = command;
		} else
			PQclear(res);
	}
	if (!PQexitPipelineMode(conn)) {
		if (failed != nullptr)
			PQclear(failed);
		RaiseRemoteError(conn, nullptr, "leaving pipeline mode");
	}
	return failed;
}

void
RaiseResult(PGconn *conn, PGresult *res, const char *sql)
{
	RaiseRemoteError(conn, res, sql);
}

} // namespace pgdw::remote

/*-------------------------------------------------------------------------
 * calls.cpp
 *    Remote calls on an open connection: send, wait (interruptible, bounded in total time and in bytes received), collect results, COPY; remote errors raised with their SQLSTATE, naming the server.
 *
 * Frames here hold only trivially destructible locals and call PostgreSQL
 * directly; a PGresult is always cleared before its error is raised.
 *
 * IDENTIFICATION  src/remote/calls.cpp
 *-------------------------------------------------------------------------
 */
#include <sys/ioctl.h>

#include "remote/internal.hpp"

#include "boundary/boundary.hpp"
#include "config/guc.hpp"

extern "C" {
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "mb/pg_wchar.h"
#include "storage/fd.h"
#include "utils/elog.h"
#include "utils/syscache.h"
}

namespace pgdw::remote {
/*
 * The remote call in progress (one at a time per backend): when it must be
 * over, and how many bytes it has received.  Both are bounds of our own
 * (dualwrite.remote_timeout, dualwrite.max_result_size), so a server that
 * keeps sending notices, answers with gigabytes or never answers cannot hold
 * a backend or the worker, or drive it out of memory.
 */
static TimestampTz call_deadline = 0;
static uint64 call_received = 0;

/* Every public function that waits for the modern side starts a call. */
void
StartCall()
{
	call_deadline = guc::remote_timeout_ms > 0
	                    ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), guc::remote_timeout_ms)
	                    : 0;
	call_received = 0;
}

/* Count what is about to be read from the socket; raise once over the cap.
 * (FIONREAD: what the kernel holds, read next by libpq; a close count, and
 * it bounds what libpq can buffer.) */
void
CountIncoming(PGconn *conn)
{
	int avail = 0;
	if (ioctl(PQsocket(conn), FIONREAD, &avail) == 0 && avail > 0)
		call_received += static_cast<uint64>(avail);
	uint64 limit = static_cast<uint64>(guc::max_result_kb) * 1024;
	if (call_received > limit)
		ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
		                errmsg("server \"%s\" sent more than %d kB in answer to one command", ServerName(conn),
		                       guc::max_result_kb),
		                errdetail("dualwrite.max_result_size bounds what one remote call may receive; the "
		                          "commands pg_dualwrite sends get small answers."),
		                errhint("Check that the server is the modern PostgreSQL database (host, port), and that no "
		                        "trigger on the modern side floods notices; the connection is dropped.")));
}

/* PQconsumeInput, counted against dualwrite.max_result_size. */
static bool
ConsumeInput(PGconn *conn)
{
	CountIncoming(conn);
	return PQconsumeInput(conn) != 0;
}

/*
 * Wait until the socket is ready or an interrupt arrives.  `deadline` bounds
 * a connection attempt; any other wait is bounded by the deadline of the
 * call in progress (StartCall): dualwrite.remote_timeout in total, notices
 * and partial answers included.
 */
void
WaitSocket(PGconn *conn, int io_events, TimestampTz deadline, const char *what)
{
	bool connecting = deadline != 0;
	if (!connecting)
		deadline = call_deadline;
	long timeout_ms = -1;
	int events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | io_events;
	if (deadline != 0) {
		timeout_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (timeout_ms <= 0 && connecting)
			ereport(ERROR, (errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
			                errmsg("could not connect to server \"%s\": timeout expired", ServerName(conn)),
			                errdetail("No answer while %s.", what)));
		if (timeout_ms <= 0)
			timeout_ms = 0; /* already over: report it below */
		events |= WL_TIMEOUT;
	}
	int rc = WaitLatchOrSocket(MyLatch, events, PQsocket(conn), timeout_ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (!connecting && deadline != 0 && GetCurrentTimestamp() >= deadline)
		ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
		                errmsg("server \"%s\" did not answer within %d ms", ServerName(conn), guc::remote_timeout_ms),
		                errdetail("No complete answer while %s; dualwrite.remote_timeout bounds each remote call in "
		                          "total, notices included.",
		                          what),
		                errhint("The work is retried on a new connection; raise dualwrite.remote_timeout if the "
		                        "modern database is only slow.")));
}

/* The notices of the remote session go to our log at DEBUG1, not to stderr (P19). */
void
NoticeReceiver(void *arg, const PGresult *res)
{
	/* Must not raise: called from inside libpq. */
	(void) arg;
	(void) res;
}

/* Raise the remote error of `res` (cleared here) or of the connection. */
[[noreturn]] void
RaiseRemoteError(PGconn *conn, PGresult *res, const char *sql)
{
	int code = ERRCODE_CONNECTION_FAILURE;
	char *primary = nullptr, *detail = nullptr, *hint = nullptr, *context = nullptr;
	if (res != nullptr) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state != nullptr && strlen(state) == 5)
			code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
		const char *f;
		if ((f = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) != nullptr)
			primary = pstrdup(f);
		if ((f = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL)) != nullptr)
			detail = pstrdup(f);
		if ((f = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT)) != nullptr)
			hint = pstrdup(f);
		if ((f = PQresultErrorField(res, PG_DIAG_CONTEXT)) != nullptr)
			context = pstrdup(f);
		PQclear(res);
	}
	if (primary == nullptr)
		primary = pchomp(PQerrorMessage(conn));
	/* The SQL we send holds identifiers and snapshots, never row data. */
	char sqlbuf[200];
	strlcpy(sqlbuf, sql != nullptr ? sql : "", sizeof(sqlbuf));
	/* Say where it happened: "permission denied for table orders" alone
	 * reads like a local problem. */
	ereport(ERROR, (errcode(code), errmsg_internal("modern server \"%s\": %s", ServerName(conn), primary),
	                detail != nullptr ? errdetail_internal("%s", detail) : 0,
	                hint != nullptr ? errhint("%s", hint) : 0,
	                context != nullptr ? errcontext("%s", context) : 0,
	                errcontext("remote SQL command on server \"%s\": %s%s", ServerName(conn), sqlbuf,
	                           strlen(sql != nullptr ? sql : "") >= sizeof(sqlbuf) ? "..." : "")));
	pg_unreachable();
}

/* Flush the output buffer of a non-blocking connection. */
static void
FlushOutput(PGconn *conn, const char *sql)
{
	for (;;) {
		int rc = PQflush(conn);
		if (rc == 0)
			return;
		if (rc < 0)
			RaiseRemoteError(conn, nullptr, sql);
		WaitSocket(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, 0, "sending");
		if (!ConsumeInput(conn))
			RaiseRemoteError(conn, nullptr, sql);
	}
}

/* A COPY state where none was asked for: a server that does not follow
 * what we sent (PQgetResult would return it again and again). */
static bool
IsCopyState(ExecStatusType st)
{
	return st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH;
}

[[noreturn]] static void
RaiseUnexpectedCopy(PGconn *conn, PGresult *res, const char *sql)
{
	const char *status = PQresStatus(PQresultStatus(res));
	PQclear(res);
	ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
	                errmsg("server \"%s\" returned an unexpected result for a remote command", ServerName(conn)),
	                errdetail("It answered with %s, which the command does not start.", status),
	                errcontext("remote SQL command on server \"%s\": %.100s", ServerName(conn), sql != nullptr ? sql : ""),
	                errhint("Check that the server is the modern PostgreSQL database (host, port).")));
	pg_unreachable();
}

/* Next result of the running command, waiting interruptibly; NULL when done. */
static PGresult *
NextResult(PGconn *conn, const char *sql)
{
	while (PQisBusy(conn)) {
		WaitSocket(conn, WL_SOCKET_READABLE, 0, "waiting for a result");
		if (!ConsumeInput(conn))
			RaiseRemoteError(conn, nullptr, sql);
	}
	return PQgetResult(conn);
}

/* Read every result of the running command; return the first failed one
 * (the caller raises or clears it), NULL if all succeeded. */
PGresult *
CollectResults(PGconn *conn, const char *sql)
{
	PGresult *res, *failed = nullptr;
	while ((res = NextResult(conn, sql)) != nullptr) {
		ExecStatusType st = PQresultStatus(res);
		if (IsCopyState(st)) {
			if (failed != nullptr)
				PQclear(failed);
			RaiseUnexpectedCopy(conn, res, sql);
		}
		if (failed == nullptr && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
			failed = res;
		else
			PQclear(res);
	}
	return failed;
}

void
Send(PGconn *conn, const char *sql)
{
	if (!PQsendQuery(conn, sql))
		RaiseRemoteError(conn, nullptr, sql);
	FlushOutput(conn, sql);
}

void
SendCommand(PGconn *conn, const char *sql)
{
	StartCall();
	Send(conn, sql);
}

void
Exec(PGconn *conn, const char *sql)
{
	StartCall();
	Send(conn, sql);
	PGresult *failed = CollectResults(conn, sql);
	if (failed != nullptr)
		RaiseRemoteError(conn, failed, sql);
}

/* Collect the results; false (instead of raising) when the failure is
 * "undefined object" (42704). */
static bool
CollectUnlessMissing(PGconn *conn, const char *sql)
{
	PGresult *failed = CollectResults(conn, sql);
	if (failed == nullptr)
		return true;
	const char *state = PQresultErrorField(failed, PG_DIAG_SQLSTATE);
	if (state != nullptr && strcmp(state, "42704") == 0) {
		PQclear(failed);
		return false;
	}
	RaiseRemoteError(conn, failed, sql);
}

bool
ExecUnlessMissing(PGconn *conn, const char *sql)
{
	StartCall();
	Send(conn, sql);
	return CollectUnlessMissing(conn, sql);
}

bool
WaitCommandUnlessMissing(PGconn *conn, const char *sql)
{
	StartCall();
	return CollectUnlessMissing(conn, sql);
}

void
WaitCommand(PGconn *conn, const char *sql)
{
	StartCall();
	PGresult *failed = CollectResults(conn, sql);
	if (failed != nullptr)
		RaiseRemoteError(conn, failed, sql);
}

/* The last tuples result of the running command (the caller PQclears it);
 * raises the first remote error. */
static PGresult *
CollectQuery(PGconn *conn, const char *sql)
{
	PGresult *res, *last = nullptr, *failed = nullptr;
	while ((res = NextResult(conn, sql)) != nullptr) {
		ExecStatusType st = PQresultStatus(res);
		if (IsCopyState(st)) {
			if (last != nullptr)
				PQclear(last);
			if (failed != nullptr)
				PQclear(failed);
			RaiseUnexpectedCopy(conn, res, sql);
		}
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			if (failed == nullptr)
				failed = res;
			else
				PQclear(res);
			continue;
		}
		if (last != nullptr)
			PQclear(last);
		last = res;
	}
	if (failed != nullptr) {
		if (last != nullptr)
			PQclear(last);
		RaiseRemoteError(conn, failed, sql);
	}
	return last;
}

PGresult *
Query(PGconn *conn, const char *sql)
{
	StartCall();
	Send(conn, sql);
	return CollectQuery(conn, sql);
}

PGresult *
WaitQuery(PGconn *conn, const char *sql)
{
	StartCall();
	return CollectQuery(conn, sql);
}

void
BeginCopy(PGconn *conn, const char *sql)
{
	StartCall();
	Send(conn, sql);
	/* Statements before the COPY in the same string (e.g. BEGIN) come first. */
	for (;;) {
		PGresult *res = NextResult(conn, sql);
		if (res == nullptr)
			RaiseRemoteError(conn, nullptr, sql);
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_COPY_IN) {
			PQclear(res);
			return;
		}
		if (IsCopyState(st))
			RaiseUnexpectedCopy(conn, res, sql);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			RaiseRemoteError(conn, res, sql);
		PQclear(res);
	}
}

void
PutCopy(PGconn *conn, const char *data, size_t len)
{
	StartCall();
	while (len > 0) {
		/* PQputCopyData takes an int length; feed large buffers in pieces. */
		int piece = len > (1 << 20) ? (1 << 20) : static_cast<int>(len);
		int rc = PQputCopyData(conn, data, piece);
		if (rc < 0)
			RaiseRemoteError(conn, nullptr, "COPY data");
		if (rc == 0) {
			/* Would block: wait until the socket drains. */
			WaitSocket(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, 0, "sending COPY data");
			if (!ConsumeInput(conn))
				RaiseRemoteError(conn, nullptr, "COPY data");
			continue;
		}
		data += piece;
		len -= piece;
	}
}

void
SendCopyEnd(PGconn *conn)
{
	StartCall();
	for (;;) {
		int rc = PQputCopyEnd(conn, nullptr);
		if (rc < 0)
			RaiseRemoteError(conn, nullptr, "COPY end");
		if (rc == 1)
			break;
		WaitSocket(conn, WL_SOCKET_WRITEABLE, 0, "ending COPY");
	}
	FlushOutput(conn, "COPY end");
}

void
EndCopy(PGconn *conn)
{
	SendCopyEnd(conn);
	WaitCommand(conn, "COPY");
}

const char *
WaitCommandTolerating(PGconn *conn, const char *sql, const char *const *tolerated)
{
	StartCall();
	PGresult *failed = CollectResults(conn, sql);
	if (failed == nullptr)
		return nullptr;
	const char *state = PQresultErrorField(failed, PG_DIAG_SQLSTATE);
	if (state != nullptr && PQstatus(conn) == CONNECTION_OK)
		for (const char *const *t = tolerated; *t != nullptr; t++)
			if (strcmp(state, *t) == 0) {
				PQclear(failed);
				return *t;
			}
	RaiseRemoteError(conn, failed, sql);
}

bool
WaitCommandUnlessDuplicate(PGconn *conn, const char *sql)
{
	static const char *const duplicate[] = {"23505", nullptr};
	return WaitCommandTolerating(conn, sql, duplicate) == nullptr;
}

bool
EndCopyUnlessDuplicate(PGconn *conn)
{
	SendCopyEnd(conn);
	return WaitCommandUnlessDuplicate(conn, "COPY");
}


} // namespace pgdw::remote

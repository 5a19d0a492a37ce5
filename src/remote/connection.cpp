/*-------------------------------------------------------------------------
 * connection.cpp
 *    Interruptible libpq connections (see connection.hpp).
 *
 * Frames here hold only trivially destructible locals and call PostgreSQL
 * directly; a PGconn is always recorded in open_conns before anything can
 * raise an error, and a PGresult is cleared before its error is raised.
 *
 * IDENTIFICATION  src/remote/connection.cpp
 *-------------------------------------------------------------------------
 */
#include <sys/ioctl.h>

#include "remote/connection.hpp"

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

/* Connections this backend holds; few (one per target server). */
constexpr int kMaxOpen = 16;

struct OpenConn {
	PGconn *conn;
	char server[NAMEDATALEN];
	bool close_at_xact_end; /* OwnByTransaction() */
};

static OpenConn open_conns[kMaxOpen];
static bool xact_callback_registered = false;

static OpenConn *
FindOpen(PGconn *conn)
{
	for (auto &oc : open_conns)
		if (oc.conn == conn && conn != nullptr)
			return &oc;
	return nullptr;
}

const char *
ServerName(PGconn *conn)
{
	OpenConn *oc = FindOpen(conn);
	return oc != nullptr ? oc->server : "?";
}

void
Disconnect(PGconn *conn)
{
	OpenConn *oc = FindOpen(conn);
	if (conn == nullptr)
		return;
	PQfinish(conn);
	ReleaseExternalFD();
	if (oc != nullptr)
		memset(oc, 0, sizeof(OpenConn));
}

/* Transaction end closes connections that enable()/validation opened. */
static void
XactCallback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_COMMIT &&
	    event != XACT_EVENT_PARALLEL_ABORT)
		return;
	for (auto &oc : open_conns)
		if (oc.conn != nullptr && oc.close_at_xact_end)
			Disconnect(oc.conn); /* PQfinish cannot fail */
}

extern "C" {
static void
xact_callback(XactEvent event, void *arg)
{
	pg_entry([&] { XactCallback(event, arg); });
}
}

void
KeepAcrossTransactions(PGconn *conn)
{
	OpenConn *oc = FindOpen(conn);
	if (oc != nullptr)
		oc->close_at_xact_end = false;
}

void
OwnByTransaction(PGconn *conn)
{
	OpenConn *oc = FindOpen(conn);
	if (oc == nullptr)
		return;
	if (!xact_callback_registered) {
		RegisterXactCallback(xact_callback, nullptr);
		xact_callback_registered = true;
	}
	oc->close_at_xact_end = true;
}

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
static void
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
static void
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
static void
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

/* libpq keywords that a server or user mapping may set. */
static bool
IsLibpqOption(const char *keyword, bool *is_user_option)
{
	static PQconninfoOption *defaults = nullptr;
	if (defaults == nullptr) {
		defaults = PQconndefaults();
		if (defaults == nullptr)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"),
			                errdetail("Could not get libpq's default connection options.")));
	}
	/* Options we always set ourselves, or that make no sense here. */
	static const char *const reserved[] = {"client_encoding", "application_name", "fallback_application_name", "replication",
	                                       "dbname_is_connstring", nullptr};
	for (int i = 0; reserved[i] != nullptr; i++)
		if (strcmp(keyword, reserved[i]) == 0)
			return false;
	for (PQconninfoOption *opt = defaults; opt->keyword != nullptr; opt++) {
		if (strcmp(opt->keyword, keyword) != 0)
			continue;
		/* Debug options ("D") are not for users; credentials belong to the mapping. */
		if (strchr(opt->dispchar, 'D') != nullptr)
			return false;
		*is_user_option = strcmp(keyword, "user") == 0 || strcmp(keyword, "password") == 0 ||
		                  strcmp(keyword, "sslpassword") == 0 || strcmp(keyword, "sslcert") == 0 ||
		                  strcmp(keyword, "sslkey") == 0;
		return true;
	}
	return false;
}

/*
 * Options only a superuser may set (postgres_fdw and dblink's reasoning):
 * they make libpq read files of the legacy server (its password file,
 * service file, certificates and keys), choose how it authenticates, or
 * pass arbitrary settings to the remote session.  In a non-superuser's
 * hands they would lend the legacy server's own credentials and files.
 */
static const char *const kSuperuserOnlyOptions[] = {"passfile",   "service", "options",     "sslkey",
                                                    "sslcert",    "sslrootcert", "sslcrl", "sslcrldir",
                                                    "requirepeer", "krbsrvname", "gsslib", nullptr};

/* Of those, the ones that stand for the legacy server's own stored
 * credentials: no non-superuser delivering role uses them, whoever set them. */
static const char *const kServerCredentialOptions[] = {"passfile", "service", nullptr};

static bool
InList(const char *const *list, const char *name)
{
	for (int i = 0; list[i] != nullptr; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/* An option's value in a DefElem list, or nullptr. */
static const char *
FindOption(List *options, const char *name)
{
	ListCell *lc;
	foreach (lc, options) {
		DefElem *def = static_cast<DefElem *>(lfirst(lc));
		if (strcmp(def->defname, name) == 0)
			return defGetString(def);
	}
	return nullptr;
}

/*
 * Does a server with these options connect through a Unix-domain socket?
 * Yes when no hostaddr is given and host is missing or empty (libpq's
 * default socket, or PGHOST of the legacy server) or one of its
 * comma-separated entries is empty or a path ('/...', or '@...' for an
 * abstract socket).  A local socket lets peer and trust authentication log
 * in as the legacy server's operating-system user.
 */
static bool
UsesLocalSocket(List *server_options)
{
	const char *hostaddr = FindOption(server_options, "hostaddr");
	if (hostaddr != nullptr && hostaddr[0] != '\0')
		return false;
	const char *host = FindOption(server_options, "host");
	if (host == nullptr || host[0] == '\0')
		return true;
	for (const char *p = host;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == ',' || *p == '/' || *p == '@')
			return true;
		p = strchr(p, ',');
		if (p == nullptr)
			return false;
		p++;
	}
}

/* Refuse the options of `catalog` that only a superuser may set. */
static void
CheckSuperuserOnlyOptions(List *options, Oid catalog)
{
	if (superuser())
		return;
	const char *object = catalog == UserMappingRelationId ? "a user mapping" : "a server";
	ListCell *lc;
	foreach (lc, options) {
		DefElem *def = static_cast<DefElem *>(lfirst(lc));
		if (InList(kSuperuserOnlyOptions, def->defname))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			                errmsg("permission denied to set option \"%s\" of %s of the dualwrite wrapper",
			                       def->defname, object),
			                errdetail("Only superusers may set passfile, service, options, sslkey, sslcert, "
			                          "sslrootcert, sslcrl, sslcrldir, requirepeer, krbsrvname, gsslib and a "
			                          "Unix-domain socket host: they make the legacy server use its own files "
			                          "or credentials."),
			                errhint("Ask a superuser to set it, or leave it out.")));
	}
	if (catalog == ForeignServerRelationId && UsesLocalSocket(options))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied to connect a server of the dualwrite wrapper through a "
		                       "Unix-domain socket"),
		                errdetail("Only superusers may give a socket directory as host, or leave host and hostaddr "
		                          "out: a local socket can log in as the legacy server's own operating-system "
		                          "user."),
		                errhint("Give host (a name or an IP address) and port of the modern database.")));
}

void
ValidateOptions(List *options, Oid catalog)
{
	ListCell *lc;
	foreach (lc, options) {
		DefElem *def = static_cast<DefElem *>(lfirst(lc));
		bool user_option = false;
		bool known = IsLibpqOption(def->defname, &user_option);
		bool ok = known && ((catalog == UserMappingRelationId) == user_option);
		if (catalog != ForeignServerRelationId && catalog != UserMappingRelationId)
			ok = false;
		if (!ok)
			ereport(ERROR,
			        (errcode(ERRCODE_FDW_INVALID_OPTION_NAME), errmsg("invalid option \"%s\"", def->defname),
			         catalog == UserMappingRelationId
			             ? errhint("A user mapping of the dualwrite wrapper takes user, password, sslpassword, "
			                       "sslcert and sslkey.")
			         : catalog == ForeignServerRelationId
			             ? errhint("A dualwrite server takes libpq connection options such as host, port and dbname; "
			                       "credentials go in the user mapping.")
			             : errhint("The dualwrite wrapper takes options only on servers and user mappings.")));
		if (strcmp(def->defname, "connect_timeout") == 0) {
			const char *v = defGetString(def);
			if (strspn(v, "0123456789") != strlen(v) || strlen(v) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				                errmsg("invalid value for option \"connect_timeout\": \"%s\"", v),
				                errhint("Give a whole number of seconds.")));
		}
	}
	CheckSuperuserOnlyOptions(options, catalog);
}

/* The notices of the remote session go to our log at DEBUG1, not to stderr (P19). */
static void
NoticeReceiver(void *arg, const PGresult *res)
{
	/* Must not raise: called from inside libpq. */
	(void) arg;
	(void) res;
}

/* Raise the remote error of `res` (cleared here) or of the connection. */
[[noreturn]] static void
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
static PGresult *
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

static void
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

void
WaitCommand(PGconn *conn, const char *sql)
{
	StartCall();
	PGresult *failed = CollectResults(conn, sql);
	if (failed != nullptr)
		RaiseRemoteError(conn, failed, sql);
}

PGresult *
Query(PGconn *conn, const char *sql)
{
	StartCall();
	Send(conn, sql);
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

bool
WaitCommandUnlessDuplicate(PGconn *conn, const char *sql)
{
	StartCall();
	PGresult *failed = CollectResults(conn, sql);
	if (failed == nullptr)
		return true;
	const char *state = PQresultErrorField(failed, PG_DIAG_SQLSTATE);
	if (state != nullptr && strcmp(state, "23505") == 0 && PQstatus(conn) == CONNECTION_OK) {
		PQclear(failed);
		return false;
	}
	RaiseRemoteError(conn, failed, sql);
}

bool
EndCopyUnlessDuplicate(PGconn *conn)
{
	SendCopyEnd(conn);
	return WaitCommandUnlessDuplicate(conn, "COPY");
}

/* Append one keyword/value pair from a foreign-catalog option list. */
static void
AddOptions(List *options, const char **keywords, const char **values, int *n, int max)
{
	ListCell *lc;
	foreach (lc, options) {
		DefElem *def = static_cast<DefElem *>(lfirst(lc));
		bool user_option;
		if (!IsLibpqOption(def->defname, &user_option) || *n >= max)
			continue;
		keywords[*n] = def->defname;
		values[*n] = defGetString(def);
		(*n)++;
	}
}

static bool
HasOption(const char **keywords, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(keywords[i], name) == 0)
			return true;
	return false;
}

void
CheckRole(const char *servername, Oid userid)
{
	/* The delivering role is stored as an OID: a dropped role must fail this
	 * server's delivery with an error that says so, nothing else. */
	if (!OidIsValid(userid))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("server \"%s\" has no delivering role", servername),
		                errdetail("dualwrite.servers has no row for it."),
		                errhint("A superuser can choose one with SELECT dualwrite.set_delivery_role(%s, 'role').",
		                        quote_literal_cstr(servername))));
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(userid)))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
		                errmsg("the delivering role of server \"%s\" does not exist", servername),
		                errdetail("dualwrite.servers names the role with OID %u, which was dropped.", userid),
		                errhint("A superuser can choose another with SELECT dualwrite.set_delivery_role(%s, 'role'); "
		                        "the changes stay queued meanwhile.",
		                        quote_literal_cstr(servername))));
}

void
CheckUserMapping(const char *servername, Oid userid)
{
	ForeignServer *server = GetForeignServerByName(servername, false);
	if (SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid), ObjectIdGetDatum(server->serverid)) ||
	    SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid), ObjectIdGetDatum(server->serverid)))
		return;
	const char *role = GetUserNameFromId(userid, false);
	ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
	                errmsg("no user mapping for role \"%s\" on server \"%s\"", role, servername),
	                errdetail("Role \"%s\" delivers to server \"%s\" through its user mapping (or PUBLIC's).", role,
	                          servername),
	                errhint("Create one with CREATE USER MAPPING FOR %s SERVER %s OPTIONS (user '...', password "
	                        "'...').",
	                        quote_identifier(role), quote_identifier(servername))));
}

void
SetReplicaRole(PGconn *conn)
{
	const char *servername = ServerName(conn);
	const char *role_sql = "SET session_replication_role = replica";
	StartCall();
	Send(conn, role_sql);
	PGresult *failed = CollectResults(conn, role_sql);
	if (failed == nullptr)
		return;
	const char *state = PQresultErrorField(failed, PG_DIAG_SQLSTATE);
	if (state == nullptr || strcmp(state, "42501") != 0)
		RaiseRemoteError(conn, failed, role_sql);
	PQclear(failed);
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
	                errmsg("the role of the user mapping for server \"%s\" may not set session_replication_role "
	                       "on the modern database",
	                       servername),
	                errdetail("pg_dualwrite applies changes in replica mode so that they are not captured again."),
	                errhint("On the modern database run GRANT SET ON PARAMETER session_replication_role TO "
	                        "that role, or map to a superuser.")));
}

/*
 * postgres_fdw's check_conn_params, and more, before any connection is
 * attempted: a non-superuser delivering role must bring a non-empty
 * password of its own (else libpq would read one from a password file or
 * the environment of the legacy server, and send it wherever the server
 * points), and may use the superuser-only options only where a superuser
 * set them: on a server a superuser owns (the validator refuses them to
 * everyone else, so only a superuser can have put them on such a server or
 * its mappings).  passfile and service stand for the legacy server's own
 * credentials: never for a non-superuser.
 */
static void
CheckConnParams(const char *servername, ForeignServer *server, UserMapping *mapping, Oid userid)
{
	if (superuser_arg(userid))
		return;
	const char *role = GetUserNameFromId(userid, false);
	const char *password = FindOption(mapping->options, "password");
	if (password == nullptr || password[0] == '\0')
		ereport(ERROR, (errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
		                errmsg("password is required to connect to server \"%s\" as role \"%s\"", servername, role),
		                errdetail("Role \"%s\" is not a superuser: it must authenticate with a non-empty password "
		                          "from its user mapping, not with credentials of the legacy server (a password "
		                          "file, the environment, peer or trust authentication).",
		                          role),
		                errhint("Set one with ALTER USER MAPPING FOR %s SERVER %s OPTIONS (ADD password '...').",
		                        OidIsValid(mapping->userid) ? quote_identifier(role) : "PUBLIC",
		                        quote_identifier(servername))));
	bool vouched = superuser_arg(server->owner);
	List *lists[2] = {server->options, mapping->options};
	for (List *options : lists) {
		ListCell *lc;
		foreach (lc, options) {
			DefElem *def = static_cast<DefElem *>(lfirst(lc));
			if (!InList(kSuperuserOnlyOptions, def->defname))
				continue;
			bool credential = InList(kServerCredentialOptions, def->defname);
			if (vouched && !credential)
				continue;
			ereport(ERROR, (errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
			                errmsg("option \"%s\" of server \"%s\" may not be used by non-superuser role \"%s\"",
			                       def->defname, servername, role),
			                credential ? errdetail("It makes libpq use credentials stored on the legacy server, which "
			                                       "only superusers may deliver with.")
			                           : errdetail("It makes libpq use files or credentials of the legacy server; a "
			                                       "non-superuser delivering role may use it only on a server owned "
			                                       "by a superuser."),
			                errhint("Have a superuser remove it from the server or the user mapping, or deliver as a "
			                        "superuser.")));
		}
	}
	if (!vouched && UsesLocalSocket(server->options))
		ereport(ERROR, (errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
		                errmsg("server \"%s\" connects through a Unix-domain socket, which non-superuser role \"%s\" "
		                       "may not use",
		                       servername, role),
		                errdetail("A local socket can log in as the legacy server's operating-system user; only a "
		                          "server owned by a superuser may use one for a non-superuser delivering role."),
		                errhint("Give the server a host name or address, or have a superuser own it.")));
}

PGconn *
Connect(const char *servername, Oid userid, int max_timeout_s, bool replica)
{
	ForeignServer *server = GetForeignServerByName(servername, false);
	CheckRole(servername, userid);
	CheckUserMapping(servername, userid);
	UserMapping *mapping = GetUserMapping(userid, server->serverid);
	CheckConnParams(servername, server, mapping, userid);

	constexpr int kMax = 64;
	const char *keywords[kMax + 1];
	const char *values[kMax + 1];
	int n = 0;
	AddOptions(server->options, keywords, values, &n, kMax - 10);
	AddOptions(mapping->options, keywords, values, &n, kMax - 10);

	/* What we always set: who we are, our encoding, and dead-peer detection. */
	/* Explicit, not a fallback: PGAPPNAME in the server's environment
	 * must not rename the sessions DBAs look for on the modern side. */
	keywords[n] = "application_name";
	values[n++] = "pg_dualwrite";
	keywords[n] = "client_encoding";
	values[n++] = GetDatabaseEncodingName();
	/* Our own bound: the server's connect_timeout (its owner's choice, 0
	 * for "forever") may lower dualwrite.connect_timeout, never raise it. */
	char timeout_buf[16];
	long timeout_s = guc::connect_timeout_s;
	int timeout_at = -1;
	for (int i = 0; i < n; i++)
		if (strcmp(keywords[i], "connect_timeout") == 0) {
			long server_s = strtol(values[i], nullptr, 10);
			if (server_s > 0 && server_s < timeout_s)
				timeout_s = server_s;
			timeout_at = i;
		}
	if (max_timeout_s > 0 && timeout_s > max_timeout_s)
		timeout_s = max_timeout_s;
	snprintf(timeout_buf, sizeof(timeout_buf), "%ld", timeout_s);
	if (timeout_at < 0) {
		timeout_at = n++;
		keywords[timeout_at] = "connect_timeout";
	}
	values[timeout_at] = timeout_buf;
	static const char *const keepalive[][2] = {
		{"keepalives", "1"}, {"keepalives_idle", "30"}, {"keepalives_interval", "10"}, {"keepalives_count", "3"}};
	for (const auto &kv : keepalive)
		if (!HasOption(keywords, n, kv[0])) {
			keywords[n] = kv[0];
			values[n++] = kv[1];
		}
	keywords[n] = nullptr;
	values[n] = nullptr;

	OpenConn *slot = nullptr;
	for (auto &oc : open_conns)
		if (oc.conn == nullptr && slot == nullptr)
			slot = &oc;
	if (slot == nullptr)
		ereport(ERROR, (errcode(ERRCODE_TOO_MANY_CONNECTIONS),
		                errmsg("too many connections to modern servers in one session"),
		                errdetail("pg_dualwrite keeps at most %d.", kMaxOpen)));
	if (!AcquireExternalFD())
		ereport(ERROR, (errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
		                errmsg("could not connect to server \"%s\"", servername),
		                errdetail("There are too many open files on the local server."),
		                errhint("Raise the server's max_files_per_process and/or \"ulimit -n\" limits.")));

	PGconn *conn = PQconnectStartParams(keywords, values, 0);
	if (conn == nullptr) {
		ReleaseExternalFD();
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	/* From here on the connection is owned by open_conns: any error below
	 * leaves it to be closed by our caller's cleanup or transaction end. */
	slot->conn = conn;
	strlcpy(slot->server, servername, NAMEDATALEN);
	slot->close_at_xact_end = false;
	OwnByTransaction(conn); /* callers that keep it clear this flag */

	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_s * 1000);
	PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
	StartCall(); /* what the startup may receive is bounded too */
	while (PQstatus(conn) != CONNECTION_BAD && poll != PGRES_POLLING_OK && poll != PGRES_POLLING_FAILED) {
		WaitSocket(conn, poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE, deadline,
		           "connecting");
		if (poll == PGRES_POLLING_READING)
			CountIncoming(conn);
		poll = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password. */
		char *reason = pchomp(PQerrorMessage(conn));
		Disconnect(conn);
		ereport(ERROR, (errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
		                errmsg("could not connect to server \"%s\"", servername), errdetail_internal("%s", reason)));
	}
	/* postgres_fdw's rule: a non-superuser must not borrow the server's own
	 * credentials (.pgpass, trust, peer). */
	if (!superuser_arg(userid) && !PQconnectionUsedPassword(conn)) {
		Disconnect(conn);
		ereport(ERROR, (errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
		                errmsg("password is required to connect to server \"%s\"", servername),
		                errdetail("Non-superusers must authenticate with a password from their user mapping."),
		                errhint("Set a password option in the user mapping.")));
	}
	PQsetNoticeReceiver(conn, NoticeReceiver, nullptr);
	if (PQsetnonblocking(conn, 1) != 0)
		RaiseRemoteError(conn, nullptr, "set non-blocking");

	/*
	 * Pin the session: values are written as text by our output functions
	 * under the same settings, so they read back exactly.  Replica role keeps
	 * a pg_dualwrite installed on the modern side (reverse dual write) from
	 * capturing what we apply, and skips FK triggers like logical replication.
	 */
	Exec(conn, "SET search_path = pg_catalog, pg_temp; SET DateStyle = ISO; SET IntervalStyle = postgres; "
	           "SET extra_float_digits = 3; SET TimeZone = 'UTC'; SET bytea_output = hex");
	if (replica)
		SetReplicaRole(conn);
	return conn;
}

} // namespace pgdw::remote

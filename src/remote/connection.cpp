/*-------------------------------------------------------------------------
 * connection.cpp
 *    Interruptible libpq connections (see connection.hpp): the registry
 *    of this backend's connections, and connecting (options, checks before
 *    connecting, the pinned session).  Calls: calls.cpp; option rules:
 *    options.cpp.
 *
 * Frames here hold only trivially destructible locals and call PostgreSQL
 * directly; a PGconn is always recorded in open_conns before anything can
 * raise an error, and a PGresult is cleared before its error is raised.
 *
 * IDENTIFICATION  src/remote/connection.cpp
 *-------------------------------------------------------------------------
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <cerrno>

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

/* Connections this backend holds; few (one per target server). */
constexpr int kMaxOpen = 64; /* the worker's streams, a backend's sync sessions (16) and checks */

struct OpenConn {
	PGconn *conn;
	char server[NAMEDATALEN];
	bool close_at_xact_end; /* OwnByTransaction() */
	bool close_at_abort;    /* CloseOnAbort() */
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

bool
IsAlive(PGconn *conn)
{
	if (conn == nullptr || PQstatus(conn) != CONNECTION_OK || PQisBusy(conn) ||
	    PQtransactionStatus(conn) != PQTRANS_IDLE)
		return false;
	/*
	 * A server that shut down sent a FATAL ErrorResponse (libpq takes it for
	 * a notice while idle) and closed the socket: the first read gets the
	 * message, the second the end of file.  Then whatever is left: an idle
	 * session is sent nothing, so any byte, or the end of file, means the
	 * connection cannot be trusted.  None of this waits.
	 */
	for (int i = 0; i < 2; i++)
		if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
			return false;
	char byte;
	ssize_t n = recv(PQsocket(conn), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool
IsOpen(PGconn *conn)
{
	return FindOpen(conn) != nullptr;
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
	bool abort = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
	for (auto &oc : open_conns)
		if (oc.conn != nullptr && (oc.close_at_xact_end || (abort && oc.close_at_abort)))
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

void
CloseOnAbort(PGconn *conn)
{
	OwnByTransaction(conn); /* registers the callback */
	OpenConn *oc = FindOpen(conn);
	if (oc == nullptr)
		return;
	oc->close_at_xact_end = false;
	oc->close_at_abort = true;
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

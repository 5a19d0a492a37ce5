/*-------------------------------------------------------------------------
 * preflight.cpp
 *    dualwrite.check(), the preflight that reports every check as a row.
 *
 * dualwrite.check() runs each check in an internal subtransaction, the
 * way PL/pgSQL runs a block with an EXCEPTION clause: an error rolls the
 * subtransaction back and becomes the row's detail and hint, and the next
 * check runs.  Query cancel is not swallowed: it is raised again.  Remote
 * connections survive a subtransaction rollback (they belong to the top
 * transaction, see remote::OwnByTransaction) and are closed when the
 * server's checks are done.
 *
 * IDENTIFICATION  src/config/preflight.cpp
 *-------------------------------------------------------------------------
 */
#include "config/modern_checks.hpp"

#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "core/typecompat.hpp"
#include "remote/connection.hpp"
#include "remote/result.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
}

namespace pgdw::config {

/* dualwrite.check() gives up on a connection attempt after this long. */
constexpr int kCheckConnectTimeoutS = 5;

/* "GRANT ... TO role;" hints name the modern role, quoted. */
static const char *
RemoteUser(PGconn *conn)
{
	const remote::Shape shape = {"the name of the modern role", 1, 1, 1};
	PGresult *res = remote::QueryShaped(conn, "SELECT pg_catalog.quote_ident(current_user::text)", shape);
	char *user = pstrdup(remote::ValueText(conn, res, 0, 0, shape));
	PQclear(res);
	return user;
}


/*
 * Run fn(arg) in an internal subtransaction.  Returns NULL if it succeeded,
 * else its error, copied into the caller's memory context (the
 * subtransaction is rolled back).  A query cancel is raised again.
 */
static ErrorData *
RunIsolatedImpl(void (*fn)(void *), void *arg)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData *volatile edata = nullptr;
	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(context); /* results outlive the subtransaction */
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	if (edata != nullptr && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	return edata;
}

template <typename F>
static ErrorData *
RunIsolated(F &&f)
{
	using Fn = std::remove_reference_t<F>;
	return RunIsolatedImpl([](void *a) { (*static_cast<Fn *>(a))(); }, static_cast<void *>(&f));
}

/* Where the rows go. */
struct Out {
	ReturnSetInfo *rsinfo;
};

/* The first column of a one-parameter local query, or NULL (palloc'd). */
static const char *
LocalText(const char *sql, Oid relid)
{
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(relid)};
	SPI_connect();
	if (SPI_execute_with_args(sql, 1, types, values, nullptr, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not run: %s", sql);
	char *v = SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : nullptr;
	char *copy = v != nullptr ? static_cast<char *>(SPI_palloc(strlen(v) + 1)) : nullptr;
	if (copy != nullptr)
		strcpy(copy, v);
	SPI_finish();
	return copy;
}

static void
AddRow(Out *out, const char *check, const char *object, bool ok, const char *severity, const char *detail,
       const char *hint)
{
	Datum values[6];
	bool nulls[6] = {false, object == nullptr, false, false, detail == nullptr, hint == nullptr};
	values[0] = CStringGetTextDatum(check);
	values[1] = object != nullptr ? CStringGetTextDatum(object) : (Datum) 0;
	values[2] = BoolGetDatum(ok);
	values[3] = CStringGetTextDatum(severity);
	values[4] = detail != nullptr ? CStringGetTextDatum(detail) : (Datum) 0;
	values[5] = hint != nullptr ? CStringGetTextDatum(hint) : (Datum) 0;
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

static const char *
ErrorText(const ErrorData *e)
{
	return e->detail != nullptr ? psprintf("%s. %s", e->message, e->detail) : pstrdup(e->message);
}

/*
 * One check: fn() raises the problem or returns the detail of a pass.  Adds
 * the row and returns whether the check passed.
 */
template <typename F>
static bool
Check(Out *out, const char *check, const char *object, const char *severity, F &&fn)
{
	const char *detail = nullptr;
	ErrorData *e = RunIsolated([&] { detail = fn(); });
	if (e == nullptr)
		AddRow(out, check, object, true, severity, detail, nullptr);
	else
		AddRow(out, check, object, false, severity, ErrorText(e), e->hint);
	return e == nullptr;
}

/* A check that could not run because an earlier one failed. */
static void
NotChecked(Out *out, const char *check, const char *object, const char *why)
{
	AddRow(out, check, object, false, "error", psprintf("not checked: %s", why), nullptr);
}

/* The running checks of this cluster and database: preload, launcher, worker. */
static void
CheckProcesses(Out *out)
{
	shm::Shared *shared = shm::Get();
	if (shared == nullptr) {
		AddRow(out, "library preloaded", "pg_dualwrite", false, "error",
		       "pg_dualwrite is not in shared_preload_libraries: no worker delivers the captured changes",
		       "Add pg_dualwrite to shared_preload_libraries in postgresql.conf and restart the server.");
		NotChecked(out, "launcher running", nullptr, "the library is not preloaded");
		NotChecked(out, "worker running", get_database_name(MyDatabaseId), "the library is not preloaded");
		return;
	}
	AddRow(out, "library preloaded", "pg_dualwrite", true, "error", "shared memory of pg_dualwrite is present",
	       nullptr);

	LWLockAcquire(shared->lock, LW_SHARED);
	pid_t launcher = shared->launcher_pid;
	LWLockRelease(shared->lock);
	bool launcher_alive = launcher != 0 && BackendPidGetProc(launcher) != nullptr;
	AddRow(out, "launcher running", nullptr, launcher_alive, "error",
	       launcher_alive ? "the pg_dualwrite launcher is running" : "no pg_dualwrite launcher process is running",
	       launcher_alive ? nullptr
	                      : "See the server log for why it stopped; it is restarted by the postmaster "
	                        "(check max_worker_processes).");

	shm::DbSlot *slot = shm::SlotFor(MyDatabaseId, false);
	pid_t pid = 0;
	int state = shm::kStateFree;
	if (slot != nullptr) {
		LWLockAcquire(shared->lock, LW_SHARED);
		pid = slot->pid;
		state = slot->state;
		LWLockRelease(shared->lock);
	}
	bool worker_alive = pid != 0 && BackendPidGetProc(pid) != nullptr;
	AddRow(out, "worker running", get_database_name(MyDatabaseId), worker_alive, "error",
	       worker_alive ? psprintf("the delivery worker of this database is %s", shm::StateName(state))
	                    : "no delivery worker runs for this database",
	       worker_alive ? nullptr
	                    : "The launcher starts it within seconds of CREATE EXTENSION; see the server log "
	                      "(max_worker_processes, at most 64 databases).");
}

/* A server option's value, or nullptr. */
static const char *
Option(List *options, const char *name)
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
 * Is a password sent over TCP without SSL being required?  Fills the row of
 * the warning; returns false when there is no password to protect (or it
 * travels over a Unix-domain socket), so no row is due.
 */
static bool
CheckEncryption(const char *server, Oid role, bool *ok, const char **detail, const char **hint)
{
	ForeignServer *fs = GetForeignServerByName(server, false);
	UserMapping *um = GetUserMapping(role, fs->serverid);
	if (Option(um->options, "password") == nullptr)
		return false; /* certificates, or a superuser's trust */
	const char *host = Option(fs->options, "host");
	if (Option(fs->options, "hostaddr") == nullptr && host != nullptr && (host[0] == '/' || host[0] == '@') &&
	    strchr(host, ',') == nullptr)
		return false; /* a Unix-domain socket never crosses the network */
	const char *sslmode = Option(fs->options, "sslmode");
	*ok = sslmode != nullptr && (strcmp(sslmode, "require") == 0 || strcmp(sslmode, "verify-ca") == 0 ||
	                             strcmp(sslmode, "verify-full") == 0);
	if (*ok) {
		*detail = strcmp(sslmode, "verify-full") == 0
		              ? psprintf("sslmode is %s", sslmode)
		              : psprintf("sslmode is %s: encrypted, but the certificate's host name is not checked, so an "
		                         "impostor with a certificate of the same CA gets the password; verify-full checks it",
		                         sslmode);
		return true;
	}
	/* PostgreSQL 15's libpq has no require_auth: a server (or whoever
	 * answers at its address) that asks for cleartext password
	 * authentication gets the password as it is, unless SSL verifies it. */
	*detail = psprintf("the user mapping sends a password, but server \"%s\" does not require SSL (sslmode %s): "
	                   "the password and the rows can cross the network unencrypted, and a server that asks for "
	                   "cleartext password authentication receives the password as is",
	                   server, sslmode != nullptr ? quote_literal_cstr(sslmode) : "not set: libpq's default is prefer");
	*hint = psprintf("Run ALTER SERVER %s OPTIONS (%s sslmode 'verify-full'), with sslrootcert naming the CA of the "
	                 "modern server.",
	                 quote_identifier(server), sslmode != nullptr ? "SET" : "ADD");
	return true;
}

/* One row of dualwrite.servers. */
struct ServerRow {
	char *server;
	Oid deliver_as;
};

/* Every row of dualwrite.servers (names sorted). */
static ServerRow *
ReadServers(int *count)
{
	SPI_connect();
	if (SPI_execute("SELECT server::text, deliver_as::oid FROM dualwrite.servers ORDER BY 1", true, 0) !=
	    SPI_OK_SELECT)
		elog(ERROR, "could not read dualwrite.servers");
	int n = static_cast<int>(SPI_processed);
	ServerRow *rows = static_cast<ServerRow *>(SPI_palloc(sizeof(ServerRow) * (n + 1)));
	for (int i = 0; i < n; i++) {
		bool isnull;
		char *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		rows[i].server = static_cast<char *>(SPI_palloc(strlen(name) + 1));
		strcpy(rows[i].server, name);
		rows[i].deliver_as =
		    DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	*count = n;
	return rows;
}

static Oid
RowRole(const ServerRow *rows, int n, const char *server)
{
	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].server, server) == 0)
			return rows[i].deliver_as;
	return InvalidOid;
}

static int
CompareNames(const void *a, const void *b)
{
	return strcmp(*static_cast<const char *const *>(a), *static_cast<const char *const *>(b));
}

/* The checks of one server and of the flagged tables it receives. */
static void
CheckServer(Out *out, const char *server, Oid row_role, TableConfig **cfgs, int ncfgs)
{
	bool exists = Check(out, "server", server, "error", [&]() -> const char * {
		ForeignServer *fs = GetForeignServerByName(server, true);
		if (fs == nullptr)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("server \"%s\" does not exist", server),
			                errhint("Create it with CREATE SERVER %s FOREIGN DATA WRAPPER dualwrite OPTIONS (host "
			                        "'...', port '...', dbname '...') and a USER MAPPING for it.",
			                        quote_identifier(server))));
		return psprintf("foreign server of wrapper %s", quote_identifier(GetForeignDataWrapper(fs->fdwid)->fdwname));
	});
	/* Not set yet: the next enable() would make its caller deliver. */
	Oid role = OidIsValid(row_role) ? row_role : GetUserId();
	bool role_ok = exists && Check(out, "delivering role", server, "error", [&]() -> const char * {
		remote::CheckRole(server, role);
		if (!OidIsValid(row_role))
			return psprintf("not set yet: the first enable() onto this server makes its caller deliver (you: %s)",
			                quote_identifier(GetUserNameFromId(role, false)));
		return psprintf("delivers as role %s", quote_identifier(GetUserNameFromId(role, false)));
	});
	bool mapping_ok = role_ok && Check(out, "user mapping", server, "error", [&]() -> const char * {
		remote::CheckUserMapping(server, role);
		ForeignServer *fs = GetForeignServerByName(server, false);
		bool own = SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(role), ObjectIdGetDatum(fs->serverid));
		return own ? psprintf("user mapping for role %s", quote_identifier(GetUserNameFromId(role, false)))
		           : pstrdup("the PUBLIC user mapping");
	});
	if (mapping_ok) {
		bool due = false, ok = false;
		const char *detail = nullptr, *hint = nullptr;
		ErrorData *e = RunIsolated([&] { due = CheckEncryption(server, role, &ok, &detail, &hint); });
		if (e != nullptr)
			AddRow(out, "encrypted connection", server, false, "warning", ErrorText(e), e->hint);
		else if (due)
			AddRow(out, "encrypted connection", server, ok, "warning", detail, hint);
	}

	PGconn *conn = nullptr;
	bool reachable = mapping_ok && Check(out, "reachable", server, "error", [&]() -> const char * {
		conn = remote::Connect(server, role, kCheckConnectTimeoutS, false);
		return psprintf("connected as modern role %s", RemoteUser(conn));
	});
	if (reachable) {
		Check(out, "session_replication_role", server, "error", [&]() -> const char * {
			remote::SetReplicaRole(conn);
			return "the modern role may set session_replication_role = replica";
		});
		Check(out, "temporary tables", server, "error", [&]() -> const char * {
			CheckTempPrivilege(server, conn);
			return "the modern role may create the staging tables";
		});
		Check(out, "progress table", server, "error", [&]() -> const char * {
			CheckProgressPrivilege(server, conn);
			return "the modern role may create and update _dualwrite.applied";
		});
	}

	for (int i = 0; i < ncfgs; i++) {
		const TableConfig *cfg = cfgs[i];
		if (strcmp(cfg->target_server, server) != 0)
			continue;
		const char *legacy = get_rel_name(cfg->relid);
		const char *object = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(cfg->relid)));
		/* Local: is every change captured, and is the table flowing?  (For
		 * superusers: the catalog behind it is not the delivering role's.) */
		if (superuser())
		Check(out, "capture triggers", object, "error", [&]() -> const char * {
			const char *state = LocalText("SELECT dualwrite._capture_state($1::pg_catalog.regclass)", cfg->relid);
			if (state == nullptr || strcmp(state, "ok") != 0)
				ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				                errmsg("%s", state != nullptr ? state : "no capture state"),
				                errhint("Changes of the table are not captured as they should be.  A superuser can "
				                        "call dualwrite.disable() and dualwrite.enable() to reinstall the triggers.")));
			return "dualwrite_capture and dualwrite_capture_truncate in place and enabled";
		});
		if (superuser())
		Check(out, "not held", object, "warning", [&]() -> const char * {
			const char *reason = LocalText("SELECT reason FROM dualwrite._held WHERE relid = $1", cfg->relid);
			if (reason != nullptr)
				ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				                errmsg("held: %s", reason),
				                errhint("Its changes wait and are retried; fix the cause on the modern side (see "
				                        "dualwrite.status.held_reason).")));
			return "delivered with the other tables of its server";
		});
		if (!reachable) {
			const char *why = psprintf("server \"%s\" could not be used", server);
			NotChecked(out, "target table", object, why);
			NotChecked(out, "target privileges", object, why);
			continue;
		}
		bool target_ok = Check(out, "target table", object, "error", [&]() -> const char * {
			CheckTarget(legacy, cfg, conn);
			return psprintf("%s on server \"%s\" has the sent columns, compatible types and the key",
			                cfg->target_display, server);
		});
		if (!target_ok) {
			NotChecked(out, "target privileges", object, "the target table check failed");
			continue;
		}
		Check(out, "target privileges", object, "error", [&]() -> const char * {
			CheckTargetPrivileges(cfg, conn);
			return "SELECT, INSERT, UPDATE, DELETE and TRUNCATE granted";
		});
	}
	remote::Disconnect(conn);
}

static Datum
CheckAll(FunctionCallInfo fcinfo)
{
	InitMaterializedSRF(fcinfo, 0);
	Out out = {reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo)};

	int nrows;
	ServerRow *rows = ReadServers(&nrows);
	/* Superusers, or a delivering role: it sees its own servers only. */
	bool su = superuser();
	bool delivering = false;
	for (int i = 0; i < nrows && !su; i++)
		delivering = delivering || (RoleExists(rows[i].deliver_as) && has_privs_of_role(GetUserId(), rows[i].deliver_as));
	if (!su && !delivering)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for function check"),
		                errdetail("Only superusers and the delivering roles of dualwrite.servers may run the "
		                          "preflight: it connects with their user mappings.")));

	CheckProcesses(&out);

	int ncfgs = 0;
	TableConfig **cfgs = nullptr;
	Check(&out, "catalog", "dualwrite.tables", "error", [&]() -> const char * {
		cfgs = LoadAll(&ncfgs);
		return psprintf("%d flagged table%s", ncfgs, ncfgs == 1 ? "" : "s");
	});

	/* Servers in use, and the default one (a preflight before enable()). */
	const char **servers = static_cast<const char **>(palloc0(sizeof(char *) * (ncfgs + 2)));
	int nservers = 0;
	auto add = [&](const char *name) {
		for (int i = 0; i < nservers; i++)
			if (strcmp(servers[i], name) == 0)
				return;
		servers[nservers++] = name;
	};
	for (int i = 0; i < ncfgs; i++)
		add(cfgs[i]->target_server);
	if (guc::target_server != nullptr && guc::target_server[0] != '\0')
		add(pstrdup(guc::target_server));
	qsort(servers, nservers, sizeof(char *), CompareNames);

	for (int s = 0; s < nservers; s++) {
		Oid row_role = RowRole(rows, nrows, servers[s]);
		if (!su && !(RoleExists(row_role) && has_privs_of_role(GetUserId(), row_role)))
			continue; /* another role's server */
		CheckServer(&out, servers[s], row_role, cfgs, ncfgs);
	}
	return (Datum) 0;
}

} // namespace pgdw::config

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_check);

PGDLLEXPORT Datum
dualwrite_check(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::CheckAll(fcinfo); });
}
}

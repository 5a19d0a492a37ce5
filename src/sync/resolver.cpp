/*-------------------------------------------------------------------------
 * resolver.cpp
 *    In-doubt resolution (sync.hpp): the per-database worker looks, every
 *    dualwrite.resolve_interval, at the prepared transactions of the
 *    modern side whose gid names this cluster and database, and settles
 *    each by its local transaction's fate:
 *      still in progress (TransactionIdIsInProgress)  -> left for later;
 *      committed (TransactionIdDidCommit)             -> COMMIT PREPARED;
 *      neither: aborted, or lost in a crash           -> ROLLBACK PREPARED.
 *    In that order: a committing transaction is marked committed in clog
 *    before it leaves the proc array, so "not in progress and not
 *    committed" is final.  A gid seen for less than kGraceMs is left to
 *    its own backend, which is about to finish it; one another resolver
 *    or the backend finished first is gone (42704) and is skipped.
 *
 * Which servers: those of sync tables, and after a failed COMMIT or
 * ROLLBACK PREPARED or a worker start (DbSlot.resolve_all) those of every
 * flagged table, until a pass finds nothing left to do.
 *
 * Runs in the worker, in its own transaction, raising on failure (the
 * worker logs it and drops the connections).  C-style frames only.
 *
 * IDENTIFICATION  src/sync/resolver.cpp
 *-------------------------------------------------------------------------
 */
#include "sync/sync.hpp"

#include "boundary/boundary.hpp"
#include "config/catalog.hpp"
#include "core/gid.hpp"
#include "remote/connection.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "access/transam.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "storage/procarray.h"
#include "utils/timestamp.h"
}

#include <libpq-fe.h>

namespace pgdw::sync {

constexpr int kGraceMs = 1000;
constexpr int kMaxResolverConns = 16;

static struct {
	Oid serverid, userid;
	PGconn *conn;
} conns[kMaxResolverConns];

void
DropResolverConnections()
{
	for (auto &c : conns) {
		remote::Disconnect(c.conn);
		c.conn = nullptr;
		c.serverid = InvalidOid;
	}
}

static PGconn *
ConnFor(const char *server, Oid userid)
{
	Oid serverid = GetForeignServerByName(server, false)->serverid;
	for (auto &c : conns)
		if (c.conn != nullptr && c.serverid == serverid && c.userid == userid) {
			if (remote::IsAlive(c.conn))
				return c.conn;
			remote::Disconnect(c.conn);
			c.conn = nullptr;
		}
	for (auto &c : conns)
		if (c.conn == nullptr) {
			c.conn = remote::Connect(server, userid, 0, false);
			remote::KeepAcrossTransactions(c.conn);
			c.serverid = serverid;
			c.userid = userid;
			return c.conn;
		}
	ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
	                errmsg("pg_dualwrite's resolver serves at most %d servers per database", kMaxResolverConns)));
	pg_unreachable();
}

enum Fate { kInProgress, kCommitted, kAborted, kUnknown };

static Fate
FateOf(uint64 fxid_value)
{
	FullTransactionId fxid = FullTransactionIdFromU64(fxid_value);
	FullTransactionId next = ReadNextFullTransactionId();
	if (!FullTransactionIdPrecedes(fxid, next))
		return kUnknown; /* not from this cluster's history */
	TransactionId xid = XidFromFullTransactionId(fxid);
	/* Older than clog keeps (or a wrapped epoch): the fate is gone. */
	if (U64FromFullTransactionId(next) - fxid_value >= (uint64) (MaxTransactionId >> 1) ||
	    TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		return kUnknown;
	if (TransactionIdIsInProgress(xid))
		return kInProgress;
	return TransactionIdDidCommit(xid) ? kCommitted : kAborted;
}

/* One server: settle what can be settled; count what is left. */
static void
ResolveServer(const char *server, Oid userid, const char *like, int *left, TimestampTz *oldest, bool *clean)
{
	PGconn *conn = ConnFor(server, userid);
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT gid, (extract(epoch FROM now() - prepared) * 1000)::bigint FROM pg_catalog.pg_prepared_xacts "
	         "WHERE database = current_database() AND gid LIKE '%s%%' ORDER BY prepared",
	         like);
	PGresult *res = remote::Query(conn, sql);
	int n = PQntuples(res);
	char **gids = static_cast<char **>(palloc(sizeof(char *) * (n + 1)));
	int64 *ages = static_cast<int64 *>(palloc(sizeof(int64) * (n + 1)));
	for (int i = 0; i < n; i++) {
		gids[i] = pstrdup(PQgetvalue(res, i, 0));
		ages[i] = strtoll(PQgetvalue(res, i, 1), nullptr, 10);
	}
	PQclear(res);

	for (int i = 0; i < n; i++) {
		uint64 fxid = 0;
		bool parsed = pg_entry([&] {
			auto parts = core::ParseGid(gids[i]);
			if (parts)
				fxid = parts->fxid;
			return parts.has_value();
		});
		Fate fate = parsed ? FateOf(fxid) : kUnknown;
		if (fate == kInProgress || ages[i] < kGraceMs) {
			(*left)++;
			*clean = false;
			TimestampTz since = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -ages[i]);
			if (*oldest == 0 || since < *oldest)
				*oldest = since;
			continue;
		}
		if (fate == kUnknown) {
			(*left)++;
			TimestampTz since = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -ages[i]);
			if (*oldest == 0 || since < *oldest)
				*oldest = since;
			ereport(WARNING, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			                  errmsg("pg_dualwrite: cannot tell the fate of prepared transaction \"%s\" on server \"%s\"",
			                         gids[i], server),
			                  errdetail("Its local transaction is older than the commit log keeps, or not of this "
			                            "cluster."),
			                  errhint("Commit or roll it back by hand on the modern database.")));
			continue;
		}
		bool commit = fate == kCommitted;
		snprintf(sql, sizeof(sql), "%s PREPARED '%s'", commit ? "COMMIT" : "ROLLBACK", gids[i]);
		if (!remote::ExecUnlessMissing(conn, sql))
			continue; /* its backend (or another resolver) finished it meanwhile */
		ereport(LOG, (errmsg("pg_dualwrite: resolved in-doubt transaction \"%s\" on server \"%s\": %s", gids[i],
		                     server, commit ? "committed (the local transaction committed)"
		                                    : "rolled back (the local transaction did not commit)")));
	}
}

/* The target servers of flagged tables, with their delivering role and
 * whether any of their tables is a sync table.  From the catalog only: no
 * flagged table is opened, so the resolver never waits for (or deadlocks
 * with) DDL on them. */
struct Server {
	char *name;
	Oid deliver_as;
	bool sync;
};

static Server *
Servers(int *n)
{
	SPI_connect();
	if (SPI_execute("SELECT t.target_server::text, COALESCE(s.deliver_as::oid, 0), "
	                "pg_catalog.bool_or(t.mode OPERATOR(pg_catalog.=) 'sync') "
	                "FROM dualwrite.tables t LEFT JOIN dualwrite.servers s "
	                "ON s.server OPERATOR(pg_catalog.=) t.target_server GROUP BY 1, 2 ORDER BY 1",
	                true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read dualwrite.tables");
	*n = static_cast<int>(SPI_processed);
	Server *servers = static_cast<Server *>(SPI_palloc(sizeof(Server) * (*n + 1)));
	for (int i = 0; i < *n; i++) {
		HeapTuple t = SPI_tuptable->vals[i];
		TupleDesc d = SPI_tuptable->tupdesc;
		bool isnull;
		char *name = SPI_getvalue(t, d, 1);
		servers[i].name = static_cast<char *>(SPI_palloc(strlen(name) + 1));
		strcpy(servers[i].name, name);
		servers[i].deliver_as = DatumGetObjectId(SPI_getbinval(t, d, 2, &isnull));
		servers[i].sync = DatumGetBool(SPI_getbinval(t, d, 3, &isnull)) && !isnull;
	}
	SPI_finish();
	return servers;
}

void
ResolveInDoubt()
{
	shm::DbSlot *slot = shm::SlotFor(MyDatabaseId, false);
	if (slot == nullptr)
		return;
	bool all = slot->resolve_all;
	int count = 0;
	Server *servers = Servers(&count);
	char prefix[128];
	pg_entry([&] {
		std::string p = core::GidPrefix(GetSystemIdentifier(), MyDatabaseId);
		/* A LIKE pattern: '_' is a wildcard (the prefix is digits and '_'). */
		std::string like;
		for (char c : p) {
			if (c == '_')
				like += '\\';
			like += c;
		}
		strlcpy(prefix, like.c_str(), sizeof(prefix));
	});

	int left = 0;
	TimestampTz oldest = 0;
	bool clean = true, any_sync = false;
	for (int i = 0; i < count && i < kMaxResolverConns; i++) {
		any_sync = any_sync || servers[i].sync;
		if (!servers[i].sync && !all)
			continue;
		/* As the worker: never through a mapping the server's owner could abuse. */
		if (OidIsValid(servers[i].deliver_as) &&
		    config::ServerTrustProblem(servers[i].name, servers[i].deliver_as) != nullptr) {
			clean = false;
			continue;
		}
		ResolveServer(servers[i].name, servers[i].deliver_as, prefix, &left, &oldest, &clean);
	}
	slot->in_doubt = left;
	slot->oldest_in_doubt = oldest;
	if (clean)
		slot->resolve_all = false;
	/* No sync table and nothing left: a database that only uses async mode
	 * keeps no extra connection open for the resolver. */
	if (!any_sync && left == 0)
		DropResolverConnections();
}

} // namespace pgdw::sync

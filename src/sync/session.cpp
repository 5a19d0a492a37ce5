/*-------------------------------------------------------------------------
 * session.cpp
 *    Sync mode's connections: one per backend and (server, delivering
 *    role), kept across transactions (a connection per commit would cost
 *    more than the commit), in the spirit of postgres_fdw's connection.c:
 *     - ALTER SERVER / USER MAPPING (syscache invalidation) marks them
 *       stale; a stale or broken one is closed and reopened at next use;
 *     - an error in the middle of a call drops it (its state is unknown);
 *     - backend exit closes them all (no leak under connection churn).
 *
 * IDENTIFICATION  src/sync/session.cpp
 *-------------------------------------------------------------------------
 */
#include "sync/internal.hpp"

#include "remote/connection.hpp"

extern "C" {
#include "foreign/foreign.h"
#include "storage/ipc.h"
#include "utils/inval.h"
#include "utils/syscache.h"
}

namespace pgdw::sync {

static constexpr int kMaxSessions = 16;
static Session sessions[kMaxSessions];
static bool stale[kMaxSessions];
static bool installed = false;

void
DropSession(Session *s)
{
	if (s->conn != nullptr)
		remote::Disconnect(s->conn); /* PQfinish: cannot fail */
	s->conn = nullptr;
	s->pending = false;
	list_free_deep(s->prepared);
	s->prepared = NIL;
}

extern "C" {
/* ALTER SERVER / USER MAPPING: reconnect before the next use. */
static void
syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	for (int i = 0; i < kMaxSessions; i++)
		if (sessions[i].conn != nullptr)
			stale[i] = true;
}

static void
close_all(int code, Datum arg)
{
	/* At exit.  A transaction aborted after this (AbortOutOfAnyTransaction
	 * runs later) finds no connection and leaves its prepared transaction
	 * to the resolver. */
	for (auto &s : sessions)
		if (s.conn != nullptr) {
			remote::Disconnect(s.conn);
			s.conn = nullptr;
		}
}
}

void
InstallSessions()
{
	if (installed)
		return;
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, syscache_callback, (Datum) 0);
	before_shmem_exit(close_all, (Datum) 0);
	installed = true;
}

void
CollectPending(Session *s)
{
	if (!s->pending)
		return;
	s->pending = false;
	PG_TRY();
	{
		(void) remote::WaitCommandUnlessMissing(s->conn, "COMMIT PREPARED"); /* missing: the resolver did it */
	}
	PG_CATCH();
	{
		/* The local transaction committed long ago: the resolver commits
		 * it remotely.  Say so, and go on with a new connection. */
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING, (errcode(edata->sqlerrcode),
		                  errmsg("pg_dualwrite: COMMIT PREPARED of an earlier sync transaction failed on server "
		                         "\"%s\": %s",
		                         s->server, edata->message),
		                  errdetail("Prepared transaction \"%s\" is committed by the resolver.", s->pending_gid)));
		FreeErrorData(edata);
		DropSession(s);
	}
	PG_END_TRY();
}

Session *
SessionFor(const char *server, Oid userid)
{
	InstallSessions();
	ForeignServer *fs = GetForeignServerByName(server, false);
	Session *s = nullptr;
	int idx = -1;
	for (int i = 0; i < kMaxSessions && s == nullptr; i++)
		if (sessions[i].serverid == fs->serverid && sessions[i].userid == userid) {
			s = &sessions[i];
			idx = i;
		}
	for (int i = 0; i < kMaxSessions && s == nullptr; i++)
		if (sessions[i].conn == nullptr) {
			s = &sessions[i];
			idx = i;
		}
	if (s == nullptr)
		ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
		                errmsg("pg_dualwrite keeps at most %d sync connections per session", kMaxSessions)));
	/* A nowait COMMIT PREPARED still to be read comes first (it may drop the
	 * connection).  Then a connection that ALTER SERVER / USER MAPPING made
	 * stale, or that the modern side closed since our last use (a restart:
	 * noticed without a round trip, test/t/021 section 4), is replaced
	 * instead of failing the transaction. */
	CollectPending(s);
	if (s->conn != nullptr && (stale[idx] || !remote::IsAlive(s->conn)))
		DropSession(s);
	if (s->conn == nullptr) {
		s->serverid = fs->serverid;
		s->userid = userid;
		strlcpy(s->server, server, sizeof(s->server));
		stale[idx] = false;
		/* replica: a pg_dualwrite on the modern side does not re-capture. */
		s->conn = remote::Connect(server, userid, 0, true);
		remote::KeepAcrossTransactions(s->conn);
	}
	return s;
}

bool
IsPrepared(Session *s, const char *name)
{
	ListCell *lc;
	foreach (lc, s->prepared)
		if (strcmp(static_cast<const char *>(lfirst(lc)), name) == 0)
			return true;
	return false;
}

void
NotePrepared(Session *s, const char *name)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	s->prepared = lappend(s->prepared, pstrdup(name));
	MemoryContextSwitchTo(old);
}

} // namespace pgdw::sync

/*-------------------------------------------------------------------------
 * internal.hpp
 *    What the files of src/sync share: the per-backend table cache
 *    (tables.cpp), the per-backend connections (session.cpp) and the
 *    shipping of one server's changes (ship.cpp).
 *
 * All of it is C-style: palloc'd state, trivially destructible locals,
 * PostgreSQL errors by ereport (no C++ object is alive across them).
 *
 * IDENTIFICATION  src/sync/internal.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "config/catalog.hpp"
#include "outbox/outbox.hpp"

#include <libpq-fe.h>

namespace pgdw::sync {

/* One sync table as this backend ships it (tables.cpp). */
struct Table {
	Oid relid;                       /* the flagged table */
	const config::TableConfig *cfg;  /* its delivery shape (cache context) */
	int policy;                      /* guc::SyncFailure */
	char *upsert_sql, *delete_sql, *truncate_target;
	char upsert_name[NAMEDATALEN], delete_name[NAMEDATALEN]; /* prepared statements */
	int nkeys;
};

/* The cached table (loaded on first use; NULL if not flagged). */
Table *TableFor(Oid relid);
/* The flagged table a captured relation belongs to (itself, or the root
 * of its partition tree). */
Oid FlaggedRoot(Relation rel);

/* One cached connection (session.cpp). */
struct Session {
	Oid serverid;
	Oid userid;
	char server[NAMEDATALEN];
	PGconn *conn;
	bool pending;       /* a COMMIT PREPARED sent without waiting (nowait) */
	char pending_gid[200];
	List *prepared;     /* names of statements prepared on conn (TopMemoryContext) */
};

/* The connection to `server` as `userid`, (re)connected as needed. */
Session *SessionFor(const char *server, Oid userid);
/* Forget the connection (its state is unknown after an error). */
void DropSession(Session *s);
bool IsPrepared(Session *s, const char *name);
void NotePrepared(Session *s, const char *name);
/* Collect a nowait COMMIT PREPARED's answer (a WARNING if it failed). */
void CollectPending(Session *s);
void InstallSessions();

/* The noted changes of the current transaction (txn.cpp). */
struct Noted {
	outbox::Position pos;
	Oid root;
};

/* Ship the noted changes of tables of `session`'s server (root in roots)
 * and PREPARE TRANSACTION gid.  Raises on any failure (ship.cpp). */
void ShipAndPrepare(Session *session, const Noted *noted, int n, const char *server, const char *gid);
/* Delete the shipped outbox rows (they are delivered now). */
void DeleteShipped(const Noted *noted, int n);

} // namespace pgdw::sync

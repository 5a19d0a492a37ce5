/*-------------------------------------------------------------------------
 * stream.cpp
 *    Delivery streams (see stream.hpp).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/worker/stream.cpp
 *-------------------------------------------------------------------------
 */
#include "worker/stream.hpp"

#include "boundary/boundary.hpp"
#include "core/apply_sql.hpp"
#include "remote/connection.hpp"
#include "remote/result.hpp"

extern "C" {
#include "access/transam.h"
#include "utils/inval.h"
#include "utils/syscache.h"
}

namespace pgdw::worker {

Stream streams[kMaxStreams];
Stream *current_stream = nullptr;

/* Set by syscache invalidation of a server or user mapping: reconnect. */
static bool options_changed = false;
static bool inval_registered = false;

static Stream *
FreeSlot(const char *server)
{
	for (auto &s : streams)
		if (s.server[0] == '\0') {
			memset(&s, 0, sizeof(Stream));
			strlcpy(s.server, server, NAMEDATALEN);
			return &s;
		}
	ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
	                errmsg("pg_dualwrite delivers at most %d streams (servers and held tables) per database",
	                       kMaxStreams)));
	pg_unreachable();
}

Stream *
StreamFor(const char *server)
{
	Stream *s = FindStream(server);
	return s != nullptr ? s : FreeSlot(server);
}

Stream *
HeldStreamFor(const char *server, Oid relid, int64 hold_id, const char *done, const char *cur, const char *lsn,
              const char *txid, int seq)
{
	for (auto &s : streams)
		if (s.server[0] != '\0' && s.held_relid == relid && s.hold_id == hold_id)
			return &s;
	Stream *s = FreeSlot(server);
	s->held_relid = relid;
	s->hold_id = hold_id;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	s->start_done = pstrdup(done);
	s->start_cur = cur != nullptr ? pstrdup(cur) : nullptr;
	MemoryContextSwitchTo(old);
	strlcpy(s->start_lsn, lsn != nullptr ? lsn : "0/0", sizeof(s->start_lsn));
	strlcpy(s->start_txid, txid != nullptr ? txid : "0", sizeof(s->start_txid));
	s->start_seq = seq;
	return s;
}

void
ReleaseStream(Stream *s)
{
	remote::Disconnect(s->conn);
	for (char *p : {s->done_snapshot, s->cur_snapshot, s->start_done, s->start_cur})
		if (p != nullptr)
			pfree(p);
	memset(s, 0, sizeof(Stream));
}

void
WriteProgressNow(Stream *s)
{
	const char *origin = Origin(s);
	const char *begin = BeginSql(s);
	const char *sql = pg_string([&] {
		return std::string(begin) +
		       core::ProgressUpdateSql(origin, s->done_snapshot, s->done_snapshot, "0/0", "0", 0) + "; COMMIT";
	});
	remote::Exec(s->conn, sql);
	s->version++;
}

void
SetProgress(Stream *s, const char *done, const char *cur, const char *lsn, const char *txid, int seq)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	if (s->done_snapshot)
		pfree(s->done_snapshot);
	if (s->cur_snapshot)
		pfree(s->cur_snapshot);
	s->done_snapshot = pstrdup(done);
	s->cur_snapshot = cur != nullptr ? pstrdup(cur) : nullptr;
	MemoryContextSwitchTo(old);
	strlcpy(s->pos_lsn, lsn != nullptr ? lsn : "0/0", sizeof(s->pos_lsn));
	strlcpy(s->pos_txid, txid != nullptr ? txid : "0", sizeof(s->pos_txid));
	s->pos_seq = seq;
}

extern "C" {
/* ALTER SERVER / ALTER USER MAPPING: take effect at the next round. */
static void
options_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	options_changed = true; /* cannot fail */
}
}

/* Drop every connection if a server or user mapping changed since. */
void
ApplyOptionChanges()
{
	if (!inval_registered) {
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, options_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, options_inval_callback, (Datum) 0);
		inval_registered = true;
	}
	if (!options_changed)
		return;
	options_changed = false;
	for (auto &s : streams) {
		remote::Disconnect(s.conn);
		s.conn = nullptr;
		s.progress_known = false;
		s.retry_at = 0; /* a fixed target deserves a retry now */
	}
}

/* The xmax of a pg_snapshot's text form "xmin:xmax:xip,...". */
static uint64
SnapshotXmax(const char *snapshot)
{
	const char *colon = strchr(snapshot, ':');
	return colon != nullptr ? strtoull(colon + 1, nullptr, 10) : 0;
}

/*
 * Guarantee 10: what the modern side records as delivered must exist
 * here.  Every range is made durable before it is shipped (DrainRange), so
 * a healthy legacy's next transaction id is never below a recorded
 * snapshot's xmax.  If it is, this legacy was restored from a backup or
 * lost WAL: new transactions would reuse ids the modern side counts as
 * delivered and be skipped forever.  Refuse, loudly, every round.
 */
static void
CheckNotBehind(const Stream *s, const char *origin)
{
	uint64 next = U64FromFullTransactionId(ReadNextFullTransactionId());
	uint64 recorded = SnapshotXmax(s->done_snapshot);
	if (s->cur_snapshot != nullptr)
		recorded = Max(recorded, SnapshotXmax(s->cur_snapshot));
	if (recorded <= next)
		return;
	ereport(ERROR,
	        (errcode(ERRCODE_DATA_CORRUPTED),
	         errmsg("legacy database is behind what server \"%s\" has recorded as delivered", s->server),
	         errdetail("The modern side recorded delivery up to transaction " UINT64_FORMAT
	                   ", but the next transaction id here is " UINT64_FORMAT
	                   ": this database was restored from a backup or lost committed WAL in a crash, so its new "
	                   "transactions would be taken for delivered ones.",
	                   recorded, next),
	         errhint("Nothing is delivered to this server until this is resolved.  Compare both sides, then "
	                 "delete the row with origin '%s' from _dualwrite.applied on the modern side to deliver "
	                 "from the current state on.",
	                 origin)));
}

/*
 * The progress table is ours, or we do not write to it.  CREATE ... IF NOT
 * EXISTS adopts whatever someone created first; its owner could add
 * triggers, rules or defaults that run as the delivering role, or rewrite
 * the progress row to skip or replay batches.
 */
static void
CheckProgressTableOwner(const Stream *s)
{
	/* One row of six text columns, or the server is not what it claims. */
	const remote::Shape shape = {"the owner of the progress table", 6, 1, 1};
	const char *sql = pg_string([&] { return core::ProgressOwnerCheckSql(); });
	PGresult *res = remote::QueryShaped(s->conn, sql, shape);
	char *schema_owner = pstrdup(remote::ValueText(s->conn, res, 0, 0, shape));
	char *table_owner = pstrdup(remote::ValueText(s->conn, res, 0, 1, shape));
	bool hooks = strcmp(remote::ValueText(s->conn, res, 0, 2, shape), "0") != 0 ||
	             strcmp(remote::ValueText(s->conn, res, 0, 3, shape), "0") != 0;
	bool plain = strcmp(remote::ValueText(s->conn, res, 0, 4, shape), "r") == 0;
	char *me = pstrdup(remote::ValueText(s->conn, res, 0, 5, shape));
	PQclear(res);
	if (strcmp(schema_owner, me) != 0 || strcmp(table_owner, me) != 0)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("modern server \"%s\": _dualwrite.applied is not owned by the delivering role \"%s\"",
		                       s->server, me),
		                errdetail("Schema _dualwrite is owned by \"%s\" and table _dualwrite.applied by \"%s\"; "
		                          "pg_dualwrite writes its progress only into objects of its own.",
		                          schema_owner, table_owner),
		                errhint("On the modern database, drop them, or check them and ALTER ... OWNER TO \"%s\".", me)));
	if (hooks || !plain)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("modern server \"%s\": _dualwrite.applied has triggers or rules, or is not a plain table",
		                       s->server),
		                errdetail("Code there would run as the delivering role with every batch."),
		                errhint("On the modern database, drop the triggers and rules of _dualwrite.applied.")));
}

/* Connect if needed and read the stream's progress from the modern side. */
void
EnsureConnected(Stream *s, const char *origin)
{
	if (s->conn != nullptr && PQstatus(s->conn) == CONNECTION_OK && s->progress_known)
		return;
	remote::Disconnect(s->conn);
	s->conn = nullptr;
	s->progress_known = false;
	s->conn = remote::Connect(s->server, s->userid);
	remote::KeepAcrossTransactions(s->conn);
	s->conn_gen++;
	remote::Exec(s->conn, pg_string([&] { return core::ProgressSchemaSql(); }));
	CheckProgressTableOwner(s);
	remote::Exec(s->conn, pg_string([&] { return core::ProgressUpgradeSql(); }));
	remote::Exec(s->conn, pg_string([&] {
		if (s->held_relid == InvalidOid)
			return core::ProgressRowSql(origin);
		return core::ProgressRowSql(origin, s->start_done, s->start_cur != nullptr ? s->start_cur : "",
		                            s->start_lsn, s->start_txid, s->start_seq);
	}));
	/* Checked before it is read (remote/result.hpp): whatever answers at
	 * the server's address must not crash the worker. */
	const remote::Shape shape = {"the progress row", 6, 0, 1};
	PGresult *res = remote::QueryShaped(s->conn, pg_string([&] { return core::ProgressSelectSql(origin); }), shape);
	if (PQntuples(res) != 1) {
		PQclear(res);
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
		                errmsg("progress row of origin \"%s\" missing on server \"%s\"", origin, s->server)));
	}
	s->version = strtoll(remote::ValueText(s->conn, res, 0, 5, shape), nullptr, 10);
	SetProgress(s, remote::ValueText(s->conn, res, 0, 0, shape), remote::ValueText(s->conn, res, 0, 1, shape, true),
	            remote::ValueText(s->conn, res, 0, 2, shape, true), remote::ValueText(s->conn, res, 0, 3, shape, true),
	            PQgetisnull(res, 0, 4) ? 0 : atoi(PQgetvalue(res, 0, 4)));
	PQclear(res);
	CheckNotBehind(s, origin);
	s->progress_known = true;
	/* The local copy may be behind (a crash between the remote and the
	 * local commit): bring it up to date this round, even if nothing new
	 * is delivered, so wait_for_delivery() and truncation see the truth. */
	s->dirty = true;
}

/* The key of this database's streams on the modern side. */
const char *
Origin(const Stream *s)
{
	if (s->held_relid != InvalidOid)
		return psprintf(UINT64_FORMAT ":%u:%s:%u:" INT64_FORMAT, GetSystemIdentifier(), MyDatabaseId, s->server,
		                s->held_relid, s->hold_id);
	return psprintf(UINT64_FORMAT ":%u:%s", GetSystemIdentifier(), MyDatabaseId, s->server);
}

/* "BEGIN; <progress check>; ": how every batch transaction starts. */
const char *
BeginSql(Stream *s)
{
	const char *origin = Origin(s);
	long long version = s->version;
	return pg_string([&] { return "BEGIN; " + core::ProgressCheckSql(origin, version) + "; "; });
}


Stream *
FindStream(const char *server)
{
	for (auto &s : streams)
		if (s.server[0] != '\0' && s.held_relid == InvalidOid && strcmp(s.server, server) == 0)
			return &s;
	return nullptr;
}

} // namespace pgdw::worker

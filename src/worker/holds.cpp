/*-------------------------------------------------------------------------
 * holds.cpp
 *    Held tables (see holds.hpp).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/worker/holds.cpp
 *-------------------------------------------------------------------------
 */
#include "worker/holds.hpp"

#include "boundary/boundary.hpp"
#include "core/failure_kind.hpp"
#include "worker/apply.hpp"

extern "C" {
#include "utils/lsyscache.h"
}

namespace pgdw::worker {

static Hold *holds = nullptr; /* the round's context */
static int nholds = 0;

/* What PrepareHold() decided, until WritePendingHold() writes it. */
constexpr int kMaxPending = 64;
static struct {
	bool active;
	char server[NAMEDATALEN];
	Oid relids[kMaxPending];
	int nrelids;
	char sqlstate[6];
	char *reason, *done, *cur; /* TopMemoryContext */
	char lsn[32], txid[32];
	int seq;
	bool pause; /* dualwrite.pause(), not a failure */
} pending;

static char *
CopyValue(HeapTuple tup, TupleDesc desc, int col)
{
	char *v = SPI_getvalue(tup, desc, col);
	if (v == nullptr)
		return nullptr;
	char *copy = static_cast<char *>(SPI_palloc(strlen(v) + 1));
	strcpy(copy, v);
	return copy;
}

void
LoadHolds()
{
	SPI_connect();
	if (SPI_execute("SELECT relid, server::text, hold_id, done_snapshot::text, cur_snapshot::text, pos_lsn::text, "
	                "pos_txid::text, pos_seq FROM dualwrite._held ORDER BY relid",
	                true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read dualwrite._held");
	nholds = static_cast<int>(SPI_processed);
	holds = static_cast<Hold *>(SPI_palloc(sizeof(Hold) * (nholds + 1)));
	for (int i = 0; i < nholds; i++) {
		HeapTuple t = SPI_tuptable->vals[i];
		TupleDesc d = SPI_tuptable->tupdesc;
		Hold &h = holds[i];
		bool isnull;
		h.relid = DatumGetObjectId(SPI_getbinval(t, d, 1, &isnull));
		strlcpy(h.server, SPI_getvalue(t, d, 2), NAMEDATALEN);
		h.hold_id = DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
		h.done = CopyValue(t, d, 4);
		h.cur = CopyValue(t, d, 5);
		char *lsn = SPI_getvalue(t, d, 6), *txid = SPI_getvalue(t, d, 7);
		strlcpy(h.lsn, lsn != nullptr ? lsn : "0/0", sizeof(h.lsn));
		strlcpy(h.txid, txid != nullptr ? txid : "0", sizeof(h.txid));
		Datum seq = SPI_getbinval(t, d, 8, &isnull);
		h.seq = isnull ? 0 : DatumGetInt32(seq);
	}
	SPI_finish();
}

const Hold *
FindHold(Oid relid)
{
	for (int i = 0; i < nholds; i++)
		if (holds[i].relid == relid)
			return &holds[i];
	return nullptr;
}

bool
ServerHasHolds(const char *server)
{
	for (int i = 0; i < nholds; i++)
		if (strcmp(holds[i].server, server) == 0)
			return true;
	return false;
}

void
ReleaseStaleHeldStreams()
{
	for (auto &s : streams) {
		if (s.server[0] == '\0' || s.held_relid == InvalidOid)
			continue;
		const Hold *h = FindHold(s.held_relid);
		if (h == nullptr || h->hold_id != s.hold_id)
			ReleaseStream(&s);
	}
}

void
RejoinCaughtUp(uint64 round)
{
	for (auto &f : streams) {
		if (f.server[0] == '\0' || f.held_relid == InvalidOid)
			continue;
		if (f.drained_round != round || f.failures > 0 || !f.progress_known || f.cur_snapshot != nullptr)
			continue;
		Stream *m = FindStream(f.server);
		if (m == nullptr || m->drained_round != round || m->failures > 0 || !m->progress_known ||
		    m->cur_snapshot != nullptr || m->done_snapshot == nullptr || f.done_snapshot == nullptr ||
		    strcmp(m->done_snapshot, f.done_snapshot) != 0)
			continue;
		/* Both delivered exactly up to the same snapshot.  The server's
		 * progress on the modern side may be older (an empty range writes
		 * nothing): write it, so that after any crash its next range starts
		 * where the held stream ended, then end the hold locally. */
		WriteProgressNow(m);
		Oid types[2] = {OIDOID, INT8OID};
		Datum values[2] = {ObjectIdGetDatum(f.held_relid), Int64GetDatum(f.hold_id)};
		SPI_connect();
		if (SPI_execute_with_args("DELETE FROM dualwrite._held WHERE relid = $1 AND hold_id = $2", 2, types, values,
		                          nullptr, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not end the hold of relation %u", f.held_relid);
		SPI_finish();
		m->dirty = true;
		char *name = get_rel_name(f.held_relid);
		ereport(LOG, (errmsg("pg_dualwrite: table \"%s\" is delivered again with the other tables of server \"%s\"",
		                     name != nullptr ? name : "?", f.server)));
	}
}

/* Remember a hold of `relids` at the confirmed progress of stream `s`. */
static void
Remember(const Stream *s, const Oid *relids, int n, const char *reason, const char *sqlstate, bool pause)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	for (char *p : {pending.reason, pending.done, pending.cur})
		if (p != nullptr)
			pfree(p);
	pending.reason = pstrdup(reason);
	pending.done = pstrdup(s->done_snapshot);
	pending.cur = s->cur_snapshot != nullptr ? pstrdup(s->cur_snapshot) : nullptr;
	MemoryContextSwitchTo(old);
	strlcpy(pending.server, s->server, NAMEDATALEN);
	pending.nrelids = Min(n, kMaxPending);
	memcpy(pending.relids, relids, sizeof(Oid) * pending.nrelids);
	strlcpy(pending.sqlstate, sqlstate, sizeof(pending.sqlstate));
	strlcpy(pending.lsn, s->pos_lsn, sizeof(pending.lsn));
	strlcpy(pending.txid, s->pos_txid, sizeof(pending.txid));
	pending.seq = s->pos_seq;
	pending.pause = pause;
	pending.active = true;
}

bool
PrepareHold(const Stream *s, const ErrorData *edata)
{
	if (s == nullptr || s->held_relid != InvalidOid || !s->progress_known || s->done_snapshot == nullptr)
		return false; /* a held table's own stream just backs off */
	const Oid *relids;
	int n = BlamedTables(&relids);
	if (n == 0)
		return false;
	const char *state = unpack_sql_state(edata->sqlerrcode);
	if (core::IsTransientSqlState(state))
		return false;
	/* The progress check fails with a cast error: that is the stream's. */
	if (edata->message != nullptr && strstr(edata->message, "moved on since it was read") != nullptr)
		return false;

	Remember(s, relids, n, edata->message != nullptr ? edata->message : "rejected by the modern side", state, false);
	return true;
}

bool
PreparePauseHold(const Stream *s, const Oid *relids, int n)
{
	if (s == nullptr || s->held_relid != InvalidOid || !s->progress_known || s->done_snapshot == nullptr || n == 0)
		return false;
	Remember(s, relids, n, "paused by dualwrite.pause()", "", true);
	return true;
}

bool
PrepareHoldPending()
{
	return pending.active;
}

bool
WritePendingHold()
{
	if (!pending.active)
		return false;
	pending.active = false;
	int64 hold_id = GetCurrentTimestamp(); /* unique per hold: a new row on the modern side */
	SPI_connect();
	for (int i = 0; i < pending.nrelids; i++) {
		Oid types[10] = {OIDOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
		bool open_range = pending.cur != nullptr;
		Datum values[10] = {ObjectIdGetDatum(pending.relids[i]),
		                   CStringGetTextDatum(pending.server),
		                   Int64GetDatum(hold_id),
		                   CStringGetTextDatum(pending.reason),
		                   CStringGetTextDatum(pending.sqlstate),
		                   CStringGetTextDatum(pending.done),
		                   open_range ? CStringGetTextDatum(pending.cur) : (Datum) 0,
		                   CStringGetTextDatum(pending.lsn),
		                   CStringGetTextDatum(pending.txid),
		                   Int32GetDatum(pending.seq)};
		char nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', open_range ? ' ' : 'n', ' ', ' ', ' '};
		/* A table disabled meanwhile is not held. */
		if (SPI_execute_with_args(
		        "INSERT INTO dualwrite._held (relid, server, hold_id, reason, sqlstate, done_snapshot, cur_snapshot, "
		        "pos_lsn, pos_txid, pos_seq) SELECT $1, $2::name, $3, $4, NULLIF($5, ''), $6::pg_snapshot, $7::pg_snapshot, "
		        "CASE WHEN $7 IS NULL THEN NULL ELSE $8::pg_lsn END, CASE WHEN $7 IS NULL THEN NULL ELSE $9::xid8 END, "
		        "CASE WHEN $7 IS NULL THEN NULL ELSE $10 END "
		        "WHERE EXISTS (SELECT 1 FROM dualwrite.tables t WHERE t.tbl::oid = $1) ON CONFLICT (relid) DO NOTHING",
		        10, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not hold relation %u", pending.relids[i]);
		char *name = get_rel_name(pending.relids[i]);
		if (pending.pause) {
			ereport(LOG, (errmsg("pg_dualwrite: delivery of table \"%s\" is paused", name != nullptr ? name : "?")));
			continue;
		}
		if (SPI_execute_with_args("UPDATE dualwrite._table_stats SET failures = failures + 1, last_error = $4, "
		                          "last_error_at = pg_catalog.now() WHERE relid = $1",
		                          4, types, values, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not count the failure of relation %u", pending.relids[i]);
		ereport(WARNING,
		        (errmsg("pg_dualwrite: table \"%s\" is held: server \"%s\" rejected its change",
		                name != nullptr ? name : "?", pending.server),
		         errdetail("%s (SQLSTATE %s)", pending.reason, pending.sqlstate),
		         errhint("Its changes wait in the outbox and are retried with backoff; the other tables of the server "
		                 "keep flowing.  Fix the cause on the modern side (dualwrite.status shows it), or disable "
		                 "the table.")));
	}
	SPI_finish();
	return true;
}

void
CommitPendingHold()
{
	if (!pending.active)
		return;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	WritePendingHold();
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

void
RecordHeldProgress(const Stream *s)
{
	Oid types[3] = {OIDOID, INT8OID, TEXTOID};
	Datum values[3] = {ObjectIdGetDatum(s->held_relid), Int64GetDatum(s->hold_id),
	                   CStringGetTextDatum(s->done_snapshot)};
	SPI_connect();
	if (SPI_execute_with_args("UPDATE dualwrite._held SET done_snapshot = $3::pg_snapshot, cur_snapshot = NULL, "
	                          "pos_lsn = NULL, pos_txid = NULL, pos_seq = NULL WHERE relid = $1 AND hold_id = $2",
	                          3, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the progress of held relation %u", s->held_relid);
	SPI_finish();
}

} // namespace pgdw::worker

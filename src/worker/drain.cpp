/*-------------------------------------------------------------------------
 * drain.cpp
 *    The drain round (see drain.hpp for the algorithm).
 *
 * The files of the worker's delivery path, by concern:
 *   drain.cpp    the round and the reading of each stream's range (here)
 *   stream.cpp   streams: connection, progress read back from the modern side
 *   shapes.cpp   targets and sources of a round (what goes where, decoding)
 *   apply.cpp    batch building and remote apply, pipelined
 *   failure.cpp  what a failed round leaves behind: backoff, counters
 *
 * Per-round palloc memory lives in round_context, the rows of the batch
 * being read in fetch_context; both are reset, never leaked.
 *
 * IDENTIFICATION  src/worker/drain.cpp
 *-------------------------------------------------------------------------
 */
#include "worker/drain.hpp"
#include "worker/tracking.hpp"

#include "boundary/boundary.hpp"
#include "config/catalog.hpp"
#include "config/guc.hpp"
#include "core/apply_sql.hpp"
#include "core/backoff.hpp"
#include "core/copy_text.hpp"
#include "core/quote.hpp"
#include "outbox/layout.hpp"
#include "outbox/outbox.hpp"
#include "outbox/reader.hpp"
#include "remote/connection.hpp"
#include "shmem/shmem.hpp"
#include "worker/apply.hpp"
#include "worker/holds.hpp"
#include "worker/shapes.hpp"
#include "worker/stream.hpp"

extern "C" {
#include "access/transam.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "catalog/pg_inherits.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/pg_lsn.h"
#include "utils/syscache.h"
}

namespace pgdw::worker {

static MemoryContext round_context = nullptr;
static uint64 round = 0; /* rounds run, for Stream::drained_round */
static MemoryContext fetch_context = nullptr; /* the rows of the batch being read */

/*
 * The end of the WAL inserted so far.  GetXLogInsertRecPtr() points past
 * the header of a page that holds no record yet, and flushing there fails
 * ("xlog flush request ... is not satisfied"): step back over the header,
 * to where the last record ended.
 */
static XLogRecPtr
InsertedUpTo()
{
	XLogRecPtr ptr = GetXLogInsertRecPtr();
	if (XLogSegmentOffset(ptr, wal_segment_size) == SizeOfXLogLongPHD)
		return ptr - SizeOfXLogLongPHD;
	if (ptr % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		return ptr - SizeOfXLogShortPHD;
	return ptr;
}

/*
 * The transactions whose first changes were sent in the open remote
 * transaction and whose last change was not (drain.hpp).  Few: each one was
 * running on the legacy side at the capture position reached, so there are
 * at most as many as legacy backends (and prepared transactions).
 */
struct OpenTxns {
	uint64 *txids;
	int n;
	int capacity;
	MemoryContext cxt; /* the range's: outlives the batches' fetch_context */
};

/* Account for change c, read in capture order: true if no transaction is
 * open after it (a transaction boundary, where a batch may commit). */
static bool
TrackOpen(OpenTxns *open, const outbox::Change &c)
{
	int i = 0;
	while (i < open->n && open->txids[i] != c.txid)
		i++;
	if (c.txn_last) {
		if (i < open->n)
			open->txids[i] = open->txids[--open->n];
	} else if (i == open->n) {
		if (open->n == open->capacity) {
			open->capacity = Max(16, open->capacity * 2);
			Size size = sizeof(uint64) * open->capacity;
			open->txids = static_cast<uint64 *>(open->txids == nullptr ? MemoryContextAlloc(open->cxt, size)
			                                                           : repalloc(open->txids, size));
		}
		open->txids[open->n++] = c.txid;
	}
	return open->n == 0;
}

/* Read the range (prev, cur] of one stream in commit order and apply it. */
static int64
DrainRange(Stream *s)
{
	/* The relations of this stream. */
	Oid *relids = static_cast<Oid *>(palloc(sizeof(Oid) * (nsources + 1)));
	int nrelids = 0;
	for (int i = 0; i < nsources; i++)
		if (targets[sources[i].target].stream == s)
			relids[nrelids++] = sources[i].relid;

	const char *prev = pstrdup(s->done_snapshot);
	const char *cur;
	if (s->cur_snapshot != nullptr)
		cur = pstrdup(s->cur_snapshot); /* finish the range a failure interrupted */
	else {
		/* Our REPEATABLE READ snapshot, which also decides MVCC visibility. */
		if (SPI_execute("SELECT pg_catalog.pg_current_snapshot()::text", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the current snapshot");
		cur = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	}
	/*
	 * Guarantee 10: nothing is shipped that a legacy crash could undo.  A
	 * transaction is visible in our snapshot once its commit record is
	 * inserted, but with synchronous_commit = off that record may not be
	 * on disk yet.  Every commit visible to us was inserted before this
	 * point, so flushing WAL up to the current insert position makes the
	 * whole range durable.  (Cheap: a no-op when nothing new was written.)
	 */
	XLogFlush(InsertedUpTo());

	outbox::RangeSpec spec;
	spec.relids = relids;
	spec.nrelids = nrelids;
	spec.prev = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(prev));
	spec.cur = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(cur));

	/* Room for a TRUNCATE statement's group beyond batch_size (below). */
	constexpr int kGroupSlack = 64;
	const uint64 capacity = static_cast<uint64>(guc::batch_size) + kGroupSlack;
	const Size max_bytes = static_cast<Size>(guc::batch_bytes_kb) * 1024;
	outbox::Change *changes = static_cast<outbox::Change *>(palloc(sizeof(outbox::Change) * (capacity + 1)));
	/* Where the next pass starts: after the last change sent (inside an
	 * open remote transaction, that is beyond the stream's progress). */
	XLogRecPtr read_lsn = DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(s->pos_lsn)));
	uint64 read_txid = DatumGetUInt64(DirectFunctionCall1(xid8in, CStringGetDatum(s->pos_txid)));
	int32 read_seq = s->pos_seq;
	outbox::Change last_sent = {};
	OpenTxns open = {nullptr, 0, 0, CurrentMemoryContext};
	int64 total = 0;
	bool more = true;
	while (more) {
		/* A pass is partial only when the range holds more rows than one
		 * pass may sort. */
		spec.pos_lsn = read_lsn;
		spec.pos_txid = read_txid;
		spec.pos_seq = read_seq;
		outbox::RangeScan *scan = outbox::BeginRangeScan(spec);
		for (;;) {
			/* Row copies live in fetch_context until the batch is encoded. */
			MemoryContext old = MemoryContextSwitchTo(fetch_context);
			uint64 n = 0;
			uint64 whole = 0; /* changes up to the last transaction boundary */
			Size bytes = 0;
			/* A batch ends after batch_size changes or batch_bytes of row
			 * images, whichever comes first (at least one change). */
			while (n < static_cast<uint64>(guc::batch_size) && bytes < max_bytes &&
			       outbox::NextChange(scan, &changes[n])) {
				if (changes[n].data != nullptr)
					bytes += VARSIZE(changes[n].data);
				if (TrackOpen(&open, changes[n++]))
					whole = n;
			}
			/* Never split the TRUNCATEs of one statement between batches. */
			while (n > 0 && n < capacity && changes[n - 1].op == outbox::kTruncate &&
			       outbox::NextChange(scan, &changes[n])) {
				if (changes[n].op != outbox::kTruncate || changes[n].txid != changes[n - 1].txid ||
				    changes[n].lsn != changes[n - 1].lsn) {
					outbox::UnreadChange(scan);
					break;
				}
				if (TrackOpen(&open, changes[n++]))
					whole = n;
			}
			MemoryContextSwitchTo(old);
			if (n == 0)
				break;
			/* Commit at the last transaction boundary of the batch; what
			 * follows it is read again for the next batch.  No boundary: the
			 * batch is a chunk of the open remote transaction. */
			if (whole > 0) {
				for (uint64 k = whole; k < n; k++)
					outbox::UnreadChange(scan);
				n = whole;
				open.n = 0; /* a boundary: nothing is open there */
			}
			total += ApplyBatch(s, changes, n, prev, cur, whole > 0);
			last_sent = changes[n - 1];
			last_sent.data = nullptr; /* freed below */
			read_lsn = last_sent.lsn;
			read_txid = last_sent.txid;
			read_seq = last_sent.seq;
			MemoryContextReset(fetch_context);
		}
		more = outbox::RangeTruncated(scan);
		outbox::EndRangeScan(scan);
	}
	/*
	 * The range holds whole transactions, so its last change ends them all
	 * and its last batch was committed above.  Should a transaction end
	 * have been missed, everything of the range is sent by now: committing
	 * makes all of it visible at once, still whole.
	 */
	if (RemoteXactOpen())
		total += CommitOpenXact(s, prev, cur, last_sent);
	total += FinishInFlight();
	/* The whole range is applied: it becomes the stream's done snapshot.
	 * An empty range needs no write anywhere (it held nothing). */
	SetProgress(s, cur, nullptr, nullptr, nullptr, 0);
	s->dirty = s->dirty || total > 0;
	return total;
}

/*
 * Deliver everything committed up to this round's snapshot.  A range that a
 * failure interrupted (known from the progress row read back on reconnect)
 * is finished first, then the new range: finishing an old range alone is
 * not a recovery, and must not reset the failure count.
 */
static int64
DrainStream(Stream *s)
{
	/* Checked every round: a server's owner may change after enable(). */
	const char *untrusted = OidIsValid(s->userid) ? config::ServerTrustProblem(s->server, s->userid) : nullptr;
	if (untrusted != nullptr)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("%s", untrusted),
		                errhint("Nothing is sent to this server until it is owned by the delivering role or a "
		                        "superuser.")));
	EnsureConnected(s, Origin(s));
	int64 total = 0;
	if (s->cur_snapshot != nullptr)
		total += DrainRange(s);
	return total + DrainRange(s);
}

/*
 * The round reads every flagged table's descriptor (and its key, from its
 * indexes) under AccessShareLock, kept to its end.  Waiting for one of those locks could deadlock with an
 * application transaction that locks several flagged tables in another
 * order (TRUNCATE a, b; LOCK ...), and the application would be the one
 * to get the error.  So they are all taken first, without waiting: if one
 * is busy, the round releases what it has and runs again shortly.  Once
 * held, the opens that follow do not wait.
 */
static bool
LockFlaggedTables()
{
	/* Their indexes too: reading the key (RelationGetIndexAttrBitmap) opens
	 * them, and TRUNCATE locks them as well. */
	/* The partitions from pg_inherits, not pg_partition_tree(): that one
	 * locks each of them, waiting, which is what this must not do. */
	if (SPI_execute("WITH RECURSIVE r(relid) AS (SELECT t.tbl::pg_catalog.oid FROM dualwrite.tables t UNION "
	                "SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN r ON i.inhparent = r.relid "
	                "JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid AND c.relispartition) "
	                "SELECT relid FROM r UNION "
	                "SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN r ON i.indrelid = r.relid ORDER BY 1",
	                true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read dualwrite.tables");
	uint64 n = SPI_processed;
	for (uint64 i = 0; i < n; i++) {
		bool isnull;
		Oid relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		if (!isnull && !ConditionalLockRelationOid(relid, AccessShareLock))
			return false; /* the transaction's end releases the others */
	}
	return true;
}

/* The stream of a held table that is paused. */
static bool
StreamIsPaused(const Stream *s)
{
	if (s->held_relid == InvalidOid)
		return false;
	for (auto &t : targets)
		if (t.stream == s)
			return t.cfg->paused;
	return false;
}

/* Tables of main stream `s` paused since the last round: remember their
 * hold at the stream's confirmed progress; true if there were any. */
static bool
HoldNewlyPaused(Stream *s)
{
	/* One hold at a time: another stream's pause this round goes first,
	 * this one is delivered as before and paused next round. */
	if (s->held_relid != InvalidOid || PrepareHoldPending())
		return false;
	Oid relids[64];
	int n = 0;
	for (auto &t : targets)
		if (t.stream == s && t.cfg->paused && n < 64)
			relids[n++] = t.cfg->relid;
	if (n == 0)
		return false;
	EnsureConnected(s, Origin(s));
	return PreparePauseHold(s, relids, n);
}

/* Record progress and counters locally (in the round's transaction). */
static void
RecordLocally()
{
	for (auto &s : streams) {
		if (s.server[0] == '\0' || s.unrecorded_failures == 0 || s.failures > 0)
			continue;
		/* Recovered: count the attempts that failed since the last write. */
		CountFailures(&s, s.unrecorded_failures, nullptr);
		s.unrecorded_failures = 0;
		s.recorded_error[0] = '\0';
	}
	for (auto &s : streams) {
		if (s.server[0] == '\0' || !s.dirty)
			continue;
		if (s.held_relid != InvalidOid) {
			RecordHeldProgress(&s);
			s.dirty = false;
			continue;
		}
		Oid types[2] = {TEXTOID, TEXTOID};
		Datum values[2] = {CStringGetTextDatum(s.server), CStringGetTextDatum(s.done_snapshot)};
		if (SPI_execute_with_args("INSERT INTO dualwrite._progress (server, done_snapshot) VALUES ($1::name, "
		                          "$2::pg_snapshot) ON CONFLICT (server) DO UPDATE SET done_snapshot = "
		                          "EXCLUDED.done_snapshot, cur_snapshot = NULL, pos_lsn = NULL, pos_txid = NULL, "
		                          "pos_seq = NULL, updated_at = pg_catalog.now()",
		                          2, types, values, nullptr, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record progress");
		s.dirty = false;
	}
	for (auto &t : targets) {
		if (t.applied == 0)
			continue;
		Oid types[2] = {OIDOID, INT8OID};
		Datum values[2] = {ObjectIdGetDatum(t.cfg->relid), Int64GetDatum(t.applied)};
		if (SPI_execute_with_args("INSERT INTO dualwrite._table_stats (relid, applied, last_applied_at) VALUES "
		                          "($1, $2, pg_catalog.now()) ON CONFLICT (relid) DO UPDATE SET applied = "
		                          "dualwrite._table_stats.applied + EXCLUDED.applied, last_applied_at = "
		                          "EXCLUDED.last_applied_at, last_error = NULL, last_error_at = NULL",
		                          2, types, values, nullptr, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record counters");
		t.applied = 0;
	}
}

RoundResult
DrainRound()
{
	RoundResult result = {false, false, 0, false, false};
	if (round_context == nullptr) {
		round_context = AllocSetContextCreate(TopMemoryContext, "pg_dualwrite round", ALLOCSET_DEFAULT_SIZES);
		fetch_context = AllocSetContextCreate(TopMemoryContext, "pg_dualwrite fetch", ALLOCSET_DEFAULT_SIZES);
	}
	MemoryContextReset(round_context);
	MemoryContextReset(fetch_context);
	current_stream = nullptr;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* One snapshot for the whole round: it closes the range. */
	XactIsoLevel = XACT_REPEATABLE_READ;
	SPI_connect();
	/* Before the snapshot: sync tables' backlog marks of transactions that
	 * have ended are covered by it (shmem/sync_tables.hpp). */
	shm::RoundStart(MyDatabaseId);
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pg_dualwrite: draining outbox");

	if (!OidIsValid(get_extension_oid("pg_dualwrite", true))) {
		result.no_extension = true;
	} else if (!LockFlaggedTables()) {
		result.busy = true; /* nothing held, nothing done: the next round soon */
	} else {
		MemoryContext old = MemoryContextSwitchTo(round_context);
		int n;
		config::TableConfig **cfgs = config::LoadAll(&n);
		LoadHolds();
		LoadShapes(cfgs, n);
		ResetApplyState(n);
		MemoryContextSwitchTo(old);
		BeginTracking();
		ReleaseStaleHeldStreams();
		round++;
		result.has_tables = n > 0;
		ApplyOptionChanges();
		TimestampTz now = GetCurrentTimestamp();
		for (auto &s : streams) {
			if (s.server[0] == '\0')
				continue;
			/* A server's stream also runs with all its tables held: they
			 * rejoin it when both have delivered up to the same snapshot. */
			bool used = s.held_relid == InvalidOid && ServerHasHolds(s.server);
			for (auto &t : targets)
				used = used || t.stream == &s;
			if (!used)
				continue;
			/* A paused table's own stream waits; a server's stream with a
			 * table paused since the last round first holds it (see
			 * config/switches.cpp): it ships nothing this round, so the
			 * hold is committed before anything goes without the table. */
			if (StreamIsPaused(&s))
				continue;
			if (s.failures > 0 && now < s.retry_at) {
				result.backing_off = true;
				continue;
			}
			current_stream = &s;
			if (HoldNewlyPaused(&s))
				continue;
			result.applied += DrainStream(&s);
			s.drained_round = round;
			/* Everything of the snapshot is delivered for its tables: a
			 * sync table's backlog up to RoundStart is gone. */
			for (auto &t : targets)
				if (t.stream == &s && t.cfg->problem == nullptr && !t.cfg->paused)
					shm::RoundDelivered(MyDatabaseId, t.cfg->relid);
			if (s.failures > 0) {
				s.recovered_after = s.failures;
				s.failures = 0;
			}
		}
		current_stream = nullptr;
		RejoinCaughtUp(round);
		/* Test fault point: the remote commits are done, the local record
		 * of them is not (the crash window the reconnect repairs). */
		if (result.applied > 0 && shm::TakeFault("after_remote_commit"))
			ereport(FATAL, (errmsg("pg_dualwrite: test fault point \"after_remote_commit\" reached")));
		RecordLocally();
		SaveTracking();
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	EndTracking(true);
	pgstat_report_activity(STATE_IDLE, nullptr);
	return result;
}

} // namespace pgdw::worker

/*-------------------------------------------------------------------------
 * rotate.cpp
 *    Outbox generation rotation and truncation (see rotate.hpp).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/outbox/rotate.cpp
 *-------------------------------------------------------------------------
 */
#include "outbox/rotate.hpp"

#include "config/guc.hpp"
#include "outbox/outbox.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
}

namespace pgdw::outbox {

static TimestampTz last_rotation = 0;

static BlockNumber
Blocks(Oid relid)
{
	Relation rel = table_open(relid, AccessShareLock);
	BlockNumber n = RelationGetNumberOfBlocks(rel);
	table_close(rel, AccessShareLock);
	return n;
}

/*
 * Is every change in generation g delivered, by a bound alone?  A change
 * whose transaction id lies below the xmin of a stream's done snapshot
 * was finished when that snapshot was taken: committed (so delivered) or
 * aborted (so invisible here).  If no visible change of g reaches the
 * smallest such xmin over every stream (servers' and held tables'), all
 * of g is delivered.  A plain scan of g without per-row function calls:
 * a fraction of the cost of the exact test below.  Unsure (false) when a
 * flagged table's server has no progress row yet.
 */
static bool
DeliveredByBound(int g)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "WITH b AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM dualwrite.tables t WHERE NOT EXISTS "
	         "(SELECT 1 FROM dualwrite._progress p WHERE p.server OPERATOR(pg_catalog.=) t.target_server)) "
	         "THEN NULL ELSE (SELECT pg_catalog.min(x) FROM (SELECT pg_catalog.pg_snapshot_xmin(done_snapshot) "
	         "FROM dualwrite._progress UNION ALL SELECT pg_catalog.pg_snapshot_xmin(done_snapshot) "
	         "FROM dualwrite._held) s(x)) END AS bound) "
	         "SELECT b.bound IS NOT NULL AND NOT EXISTS (SELECT 1 FROM dualwrite._outbox_%d o "
	         "WHERE o.txid OPERATOR(pg_catalog.>=) b.bound) FROM b",
	         g);
	if (SPI_execute(sql, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not check outbox generation %d", g);
	bool isnull;
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(d);
}

/*
 * Does generation g hold a change not yet delivered?  read_only = false
 * takes a new snapshot: after a lock, it sees every writer's outcome.
 *
 * The exact test (dualwrite._pending) reads g up to its first undelivered
 * change: while a large backlog drains, that is most of g, at every round.
 * So when the bound cannot decide, the exact test runs at most once per
 * max(1 s, 10 x its last duration) for each generation; meanwhile g counts
 * as pending.  That only delays a truncation (by seconds), never loses a
 * change, and keeps the test below a tenth of the worker's time.
 */
static TimestampTz next_exact[kGenerations];

static bool
HasPending(int g)
{
	if (DeliveredByBound(g))
		return false;
	TimestampTz start = GetCurrentTimestamp();
	if (start < next_exact[g])
		return true;
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT 1 FROM dualwrite._pending WHERE gen = %d LIMIT 1", g);
	if (SPI_execute(sql, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not check outbox generation %d", g);
	bool pending = SPI_processed > 0;
	TimestampTz end = GetCurrentTimestamp();
	next_exact[g] = pending ? end + Max(USECS_PER_SEC, 10 * (end - start)) : 0;
	return pending;
}

/*
 * Truncate generation g if every change in it is delivered.  Never waits.
 * Looked at without a lock first: taking AccessExclusiveLock assigns a
 * transaction id and writes WAL (the lock is logged for standbys), and a
 * generation still holding undelivered changes, e.g. while the target is
 * down, would otherwise cost both at every round.
 */
static bool
TryTruncate(int g)
{
	Oid relid = GenerationRelid(g);
	if (HasPending(g))
		return false;
	if (!ConditionalLockRelationOid(relid, AccessExclusiveLock))
		return false; /* a writer is still in it: later */
	if (HasPending(g))
		return false; /* lock released at commit */
	char sql[64];
	snprintf(sql, sizeof(sql), "TRUNCATE dualwrite._outbox_%d", g);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not truncate outbox generation %d", g);
	return true;
}

int
Maintain()
{
	shm::DbSlot *slot = shm::SlotFor(MyDatabaseId, false);
	if (slot == nullptr)
		return 0;
	int truncated = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	uint32 cur = pg_atomic_read_u32(&slot->capture_gen) % kGenerations;
	BlockNumber blocks[kGenerations];
	for (int g = 0; g < kGenerations; g++) {
		blocks[g] = Blocks(GenerationRelid(g));
		if (static_cast<uint32>(g) != cur && blocks[g] > 0 && TryTruncate(g)) {
			blocks[g] = 0;
			truncated++;
		}
	}
	/*
	 * Rotate to any empty generation.  The order does not matter (the
	 * reader scans all three and sorts), and a generation held back by a
	 * prepared transaction, which keeps its lock until COMMIT PREPARED, is
	 * simply skipped: capture goes on rotating between the other two.
	 */
	TimestampTz now = GetCurrentTimestamp();
	int next = -1;
	for (uint32 step = 1; step < kGenerations && next < 0; step++)
		if (blocks[(cur + step) % kGenerations] == 0)
			next = static_cast<int>((cur + step) % kGenerations);
	if (blocks[cur] > 0 && next >= 0 &&
	    TimestampDifferenceExceeds(last_rotation, now, guc::rotate_interval_s * 1000)) {
		pg_atomic_write_u32(&slot->capture_gen, static_cast<uint32>(next));
		last_rotation = now;
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	return truncated;
}

} // namespace pgdw::outbox

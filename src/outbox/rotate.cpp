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

/* Does generation g hold a change not yet delivered?  read_only = false
 * takes a new snapshot: after a lock, it sees every writer's outcome. */
static bool
HasPending(int g)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT 1 FROM dualwrite._pending WHERE gen = %d LIMIT 1", g);
	if (SPI_execute(sql, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not check outbox generation %d", g);
	return SPI_processed > 0;
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

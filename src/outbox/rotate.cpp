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
#include "worker/shmem.hpp"

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

/* Truncate generation g if every change in it is delivered.  Never waits. */
static bool
TryTruncate(int g)
{
	Oid relid = GenerationRelid(g);
	if (!ConditionalLockRelationOid(relid, AccessExclusiveLock))
		return false; /* a writer is still in it: later */
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT 1 FROM dualwrite._pending WHERE gen = %d LIMIT 1", g);
	/* read_only = false: a new snapshot, taken after the lock, sees every writer's outcome. */
	if (SPI_execute(sql, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not check outbox generation %d", g);
	if (SPI_processed > 0)
		return false; /* lock released at commit */
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
	TimestampTz now = GetCurrentTimestamp();
	uint32 next = (cur + 1) % kGenerations;
	if (blocks[cur] > 0 && blocks[next] == 0 &&
	    TimestampDifferenceExceeds(last_rotation, now, guc::rotate_interval_s * 1000)) {
		pg_atomic_write_u32(&slot->capture_gen, next);
		last_rotation = now;
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	return truncated;
}

} // namespace pgdw::outbox

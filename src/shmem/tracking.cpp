/*-------------------------------------------------------------------------
 * tracking.cpp
 *    Shared state of incremental reconcile (see tracking.hpp): requests in
 *    one small array and per-database round state, under the shared lock.
 *
 * IDENTIFICATION  src/shmem/tracking.cpp
 *-------------------------------------------------------------------------
 */
#include "shmem/tracking.hpp"

#include "shmem/shmem.hpp"

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
}

namespace pgdw::shm {

uint64
RequestTracking(Oid relid, int64 upto)
{
	Shared *sh = Get();
	DbSlot *slot = SlotFor(MyDatabaseId, true);
	if (sh == nullptr || slot == nullptr)
		return 0; /* no worker can run: nothing is applied meanwhile */
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	TrackRequest *free_entry = nullptr;
	bool have = false;
	for (auto &r : sh->track_requests) {
		if (r.dboid == MyDatabaseId && r.relid == relid && r.backend == MyProcPid) {
			have = true;
			r.upto = upto;
			r.lost = false;
		}
		if (r.dboid == InvalidOid && free_entry == nullptr)
			free_entry = &r;
	}
	if (!have && free_entry == nullptr) {
		LWLockRelease(sh->lock);
		ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
		                errmsg("pg_dualwrite runs at most %d full reconciles at once", kMaxTrackRequests)));
	}
	if (!have)
		*free_entry = TrackRequest{MyDatabaseId, relid, MyProcPid, false, upto};
	/* A round that began before the request does not record: wait for it. */
	uint64 wait_for = slot->tracking.in_round ? slot->tracking.round_seq + 1 : 0;
	LWLockRelease(sh->lock);
	return wait_for;
}

bool
WaitForRound(uint64 round, int timeout_ms)
{
	DbSlot *slot = SlotFor(MyDatabaseId, false);
	if (round == 0 || slot == nullptr)
		return true;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	for (;;) {
		Shared *sh = Get();
		LWLockAcquire(sh->lock, LW_SHARED);
		bool done = slot->tracking.round_seq >= round || !slot->tracking.in_round || slot->pid == 0;
		LWLockRelease(sh->lock);
		if (done)
			return true;
		if (GetCurrentTimestamp() >= deadline)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

void
DropTrackingRequests()
{
	Shared *sh = Get();
	if (sh == nullptr)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (auto &r : sh->track_requests)
		if (r.dboid == MyDatabaseId && r.backend == MyProcPid)
			r = TrackRequest{InvalidOid, InvalidOid, 0, false, 0};
	LWLockRelease(sh->lock);
}

bool
TrackingRequestLost(Oid relid)
{
	Shared *sh = Get();
	if (sh == nullptr)
		return false;
	bool lost = false;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (auto &r : sh->track_requests)
		lost = lost || (r.dboid == MyDatabaseId && r.relid == relid && r.backend == MyProcPid && r.lost);
	LWLockRelease(sh->lock);
	return lost;
}

bool
TrackingRoundStart(bool *restart)
{
	Shared *sh = Get();
	DbSlot *slot = SlotFor(MyDatabaseId, true);
	if (sh == nullptr || slot == nullptr)
		return false;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	TrackingState &t = slot->tracking;
	bool lost = !t.keys_known || t.keys_unsaved;
	*restart = !t.keys_known;
	t.round_seq++;
	t.in_round = true;
	/* A request is younger than this shared memory: only keys staged and
	 * lost since (a failed round) concern it, not the restart itself. */
	if (t.keys_unsaved)
		for (auto &r : sh->track_requests)
			if (r.dboid == MyDatabaseId)
				r.lost = true;
	LWLockRelease(sh->lock);
	return lost;
}

int64
TrackingRequestFloor(Oid relid)
{
	Shared *sh = Get();
	if (sh == nullptr)
		return -1;
	int64 floor = -1;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (auto &r : sh->track_requests)
		if (r.dboid == MyDatabaseId && r.relid == relid)
			floor = Max(floor, r.upto);
	LWLockRelease(sh->lock);
	return floor;
}

void
TrackingMarkLost(Oid relid)
{
	Shared *sh = Get();
	if (sh == nullptr)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (auto &r : sh->track_requests)
		if (r.dboid == MyDatabaseId && r.relid == relid)
			r.lost = true;
	LWLockRelease(sh->lock);
}

void
TrackingKeysStaged()
{
	DbSlot *slot = SlotFor(MyDatabaseId, false);
	if (slot != nullptr)
		slot->tracking.keys_unsaved = true; /* only this worker writes it while running */
}

void
TrackingRoundEnd(bool committed)
{
	Shared *sh = Get();
	DbSlot *slot = SlotFor(MyDatabaseId, false);
	if (sh == nullptr || slot == nullptr)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	if (committed) {
		slot->tracking.keys_known = true;
		slot->tracking.keys_unsaved = false;
	}
	slot->tracking.in_round = false;
	LWLockRelease(sh->lock);
}

} // namespace pgdw::shm

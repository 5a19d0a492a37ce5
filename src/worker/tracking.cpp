/*-------------------------------------------------------------------------
 * tracking.cpp
 *    Recording the keys of applied changes for incremental reconcile
 *    (tracking.hpp; the protocol is in verify/incremental.hpp).
 *
 * The worker only ever inserts records and deletes records at or below
 * a cleared_seq that a committed run has set (or all records of a table
 * whose baseline is untrusted and that no run is tracking): it never
 * touches what a running reconcile reads, so they never conflict.
 *
 * IDENTIFICATION  src/worker/tracking.cpp
 *-------------------------------------------------------------------------
 */
#include "worker/tracking.hpp"

#include "config/guc.hpp"
#include "core/copy_text.hpp"
#include "shmem/shmem.hpp"

namespace pgdw::worker {

/* Keys a round may hold in memory per table before the record is given
 * up (the next reconcile of that table is then full). */
constexpr size_t kMaxStagedKeyBytes = 64 * 1024 * 1024;
constexpr int kMaxTracked = 256;

/* Per tracked table, across rounds (process memory, plain data): what was
 * collected up to, and how many records there are above it (-1: unknown). */
struct Known {
	Oid relid;
	int64 gc_upto;
	int64 records;
};
static Known known[kMaxTracked];
static int nknown = 0;
static bool round_started = false;
static bool staged = false;

static Known *
KnownFor(Oid relid)
{
	for (int i = 0; i < nknown; i++)
		if (known[i].relid == relid)
			return &known[i];
	if (nknown == kMaxTracked)
		nknown = 0; /* forget all: estimates are recounted */
	known[nknown] = Known{relid, -2, -1};
	return &known[nknown++];
}

static void
Spi(const char *sql, int nargs, Oid *types, Datum *values, int expect)
{
	if (SPI_execute_with_args(sql, nargs, types, values, nullptr, false, 0) != expect)
		elog(ERROR, "pg_dualwrite: could not run: %s", sql);
}

void
BeginTracking()
{
	round_started = true;
	staged = false;
	bool restart = false;
	if (shm::TrackingRoundStart(&restart)) {
		Oid types[1] = {TEXTOID};
		Datum values[1] = {CStringGetTextDatum(
		    restart ? "the server restarted since the baseline (shared memory is new): keys changed just before "
		              "may not be recorded"
		            : "a delivery round failed after it applied changes: their keys may not be recorded")};
		Spi("UPDATE dualwrite._reconcile_state SET untrusted = $1 WHERE untrusted IS NULL", 1, types, values,
		    SPI_OK_UPDATE);
	}
	if (SPI_execute("SELECT relid, untrusted IS NULL, cleared_seq FROM dualwrite._reconcile_state", false, 0) !=
	    SPI_OK_SELECT)
		elog(ERROR, "pg_dualwrite: could not read the reconcile state");
	uint64 nstate = SPI_processed;
	SPITupleTable *state = SPI_tuptable;
	for (auto &t : targets) {
		Oid relid = t.cfg->relid;
		int64 floor = shm::TrackingRequestFloor(relid);
		bool have = false, trusted = false;
		int64 cleared = -1;
		for (uint64 r = 0; r < nstate; r++) {
			bool isnull;
			if (DatumGetObjectId(SPI_getbinval(state->vals[r], state->tupdesc, 1, &isnull)) != relid)
				continue;
			have = true;
			trusted = DatumGetBool(SPI_getbinval(state->vals[r], state->tupdesc, 2, &isnull));
			cleared = DatumGetInt64(SPI_getbinval(state->vals[r], state->tupdesc, 3, &isnull));
		}
		t.tracked = trusted || floor >= 0;
		t.dedupe_above = Max(trusted ? cleared : -1, floor);
		t.keys_overflow = false;
		if (!have && floor < 0)
			continue;
		/* Records a committed run has compared, or of a baseline nobody
		 * can use any more, go (once per new cleared_seq). */
		int64 gc_upto = trusted ? cleared : floor >= 0 ? floor : PG_INT64_MAX;
		Known *k = KnownFor(relid);
		if (have && gc_upto != k->gc_upto) {
			Oid types[2] = {OIDOID, INT8OID};
			Datum values[2] = {ObjectIdGetDatum(relid), Int64GetDatum(gc_upto)};
			Spi("DELETE FROM dualwrite._reconcile_dirty WHERE relid = $1 AND seq <= $2", 2, types, values,
			    SPI_OK_DELETE);
			k->gc_upto = gc_upto;
			k->records = -1;
		}
	}
}

void
StageKeyField(Target &t, const char *text, size_t len, bool first)
{
	if (!staged) {
		shm::TrackingKeysStaged(); /* before any remote commit of them */
		staged = true;
	}
	if (first && !t.keys.empty())
		t.keys.push_back('\n');
	else if (!first)
		t.keys.push_back('\t');
	core::AppendCopyField(t.keys, text, len);
	if (t.keys.size() > kMaxStagedKeyBytes) {
		t.keys_overflow = true;
		std::string().swap(t.keys);
	}
}

/* Exact number of records above dedupe_above, counting at most limit + 1. */
static int64
CountRecords(Oid relid, int64 above, int64 limit)
{
	Oid types[3] = {OIDOID, INT8OID, INT8OID};
	Datum values[3] = {ObjectIdGetDatum(relid), Int64GetDatum(above), Int64GetDatum(limit + 1)};
	Spi("SELECT pg_catalog.count(*) FROM (SELECT 1 FROM dualwrite._reconcile_dirty WHERE relid = $1 AND seq > $2 "
	    "LIMIT $3) AS c",
	    3, types, values, SPI_OK_SELECT);
	bool isnull;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static void
GiveUp(const Target &t, const char *why)
{
	Oid types[2] = {OIDOID, TEXTOID};
	Datum values[2] = {ObjectIdGetDatum(t.cfg->relid), CStringGetTextDatum(why)};
	Spi("UPDATE dualwrite._reconcile_state SET untrusted = $2 WHERE relid = $1 AND untrusted IS NULL", 2, types,
	    values, SPI_OK_UPDATE);
	shm::TrackingMarkLost(t.cfg->relid); /* a run tracking it now */
}

void
SaveTracking()
{
	for (auto &t : targets) {
		if (!t.tracked)
			continue;
		if (t.keys_overflow) {
			GiveUp(t, "more keys changed in one delivery round than the worker keeps in memory");
			continue;
		}
		if (t.keys.empty())
			continue;
		Known *k = KnownFor(t.cfg->relid);
		if (k->records < 0)
			k->records = CountRecords(t.cfg->relid, t.dedupe_above, guc::reconcile_track_max);
		Oid types[3] = {OIDOID, TEXTOID, INT8OID};
		Datum values[3] = {ObjectIdGetDatum(t.cfg->relid),
		                   PointerGetDatum(cstring_to_text_with_len(t.keys.data(), static_cast<int>(t.keys.size()))),
		                   Int64GetDatum(t.dedupe_above)};
		Spi("INSERT INTO dualwrite._reconcile_dirty (relid, key, seq) "
		    "SELECT $1, u.k, pg_catalog.nextval('dualwrite._reconcile_dirty_seq') "
		    "FROM (SELECT DISTINCT k FROM pg_catalog.unnest(pg_catalog.string_to_array($2, E'\\n')) AS k) AS u "
		    "WHERE NOT EXISTS (SELECT 1 FROM dualwrite._reconcile_dirty d "
		    "                  WHERE d.relid = $1 AND d.key = u.k AND d.seq > $3)",
		    3, types, values, SPI_OK_INSERT);
		k->records += static_cast<int64>(SPI_processed);
		std::string().swap(t.keys);
		if (k->records > guc::reconcile_track_max) {
			k->records = CountRecords(t.cfg->relid, t.dedupe_above, guc::reconcile_track_max);
			if (k->records > guc::reconcile_track_max)
				GiveUp(t, psprintf("more than %d keys changed since the last run (dualwrite.reconcile_track_max)",
				                   guc::reconcile_track_max));
		}
	}
}

void
EndTracking(bool committed)
{
	if (!round_started)
		return;
	round_started = false;
	if (!committed)
		nknown = 0; /* estimates of a rolled-back round: recount */
	shm::TrackingRoundEnd(committed);
}

} // namespace pgdw::worker

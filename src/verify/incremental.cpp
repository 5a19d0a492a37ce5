/*-------------------------------------------------------------------------
 * incremental.cpp
 *    The reconcile side of incremental re-validation (incremental.hpp
 *    states the protocol and why it is right).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals;
 * the key text is split by core/ behind pg_string()/pg_entry().
 *
 * IDENTIFICATION  src/verify/incremental.cpp
 *-------------------------------------------------------------------------
 */
#include "verify/incremental.hpp"

#include "boundary/boundary.hpp"
#include "core/copy_text.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "access/xact.h"
}

namespace pgdw::verify {

/* How long a run waits for the worker's round that was running when it
 * began; beyond it the run goes on, and its baseline is not trusted. */
constexpr int kRoundWaitMs = 60000;

extern "C" {
/* The run's request ends with its transaction (committed: the baseline
 * row takes over; aborted: nothing rests on it).  Cannot fail. */
static void
tracking_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
	    event == XACT_EVENT_PARALLEL_ABORT)
		shm::DropTrackingRequests();
}
}

static bool callback_registered = false;

static int64
SpiInt8(const char *sql, Oid relid, bool *isnull)
{
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(relid)};
	if (SPI_execute_with_args(sql, 1, types, values, nullptr, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not run: %s", sql);
	*isnull = true;
	if (SPI_processed == 0)
		return 0;
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
	return *isnull ? 0 : DatumGetInt64(d);
}

Tracking
BeginRun(Oid relid, bool full_requested)
{
	Tracking t = {0, 0, true, nullptr};
	SPI_connect();
	/* the mode, by the one rule (dualwrite._reconcile_next) */
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(relid)};
	if (SPI_execute_with_args("SELECT dualwrite._reconcile_next($1)", 1, types, values, nullptr, false, 1) !=
	        SPI_OK_SELECT ||
	    SPI_processed != 1)
		elog(ERROR, "could not read the reconcile state");
	char *next = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	MemoryContext spi = MemoryContextSwitchTo(TopTransactionContext);
	if (full_requested)
		t.reason = "requested (full => true)";
	else if (next == nullptr || strncmp(next, "incremental", 11) != 0)
		t.reason = next != nullptr && strncmp(next, "full: ", 6) == 0 ? pstrdup(next + 6) : "unknown state";
	MemoryContextSwitchTo(spi);
	bool isnull;
	if (t.reason == nullptr) {
		t.cleared = SpiInt8("SELECT cleared_seq FROM dualwrite._reconcile_state WHERE relid = $1", relid, &isnull);
		if (isnull)
			t.reason = "no baseline yet";
	}
	t.upto = SpiInt8("SELECT pg_catalog.nextval('dualwrite._reconcile_dirty_seq') WHERE $1 IS NOT NULL", relid,
	                 &isnull);
	SPI_finish();

	if (!callback_registered) {
		RegisterXactCallback(tracking_xact_callback, nullptr);
		callback_registered = true;
	}
	uint64 round = shm::RequestTracking(relid, t.upto);
	t.waited = shm::WaitForRound(round, kRoundWaitMs);
	if (!t.waited && t.reason == nullptr)
		t.reason = "the worker's round did not end within 60 s when the run began";
	return t;
}

void
CompareChangedKeys(Run *run, const Tracking &t)
{
	MemoryContext outer = CurrentMemoryContext;
	SPI_connect();
	/* every change committed before now is applied, so recorded (<= upto
	 * once the round that applied it ended: BeginRun waited for that) */
	if (SPI_execute("SELECT dualwrite.wait_for_delivery(interval '60 seconds')", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not wait for delivery");
	Oid types[3] = {OIDOID, INT8OID, INT8OID};
	Datum values[3] = {ObjectIdGetDatum(run->cfg->relid), Int64GetDatum(t.cleared), Int64GetDatum(t.upto)};
	if (SPI_execute_with_args("SELECT DISTINCT key FROM dualwrite._reconcile_dirty "
	                          "WHERE relid = $1 AND seq > $2 AND seq <= $3",
	                          3, types, values, nullptr, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the changed keys of table %s", run->cfg->target_display);
	int n = static_cast<int>(SPI_processed);
	MemoryContext spi = MemoryContextSwitchTo(outer);
	char ***keys = static_cast<char ***>(palloc(sizeof(char **) * (n + 1)));
	int nkey = run->nkey;
	for (int i = 0; i < n; i++) {
		char *text = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char **key = static_cast<char **>(palloc(sizeof(char *) * nkey));
		int got = pg_entry([&] { return static_cast<int>(core::SplitKeyText(text).size()); });
		for (int k = 0; k < nkey && k < got; k++)
			key[k] = pg_string([&] { return core::SplitKeyText(text)[k]; });
		if (got != nkey)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
			                errmsg("a recorded key of table %s has %d values, the key has %d", run->cfg->target_display,
			                       got, nkey),
			                errhint("Run dualwrite.reconcile(tbl, full => true).")));
		keys[i] = key;
	}
	MemoryContextSwitchTo(spi);
	SPI_finish();
	run->rows_compared = n;
	CompareKeys(run, keys, n, run);
}

void
EndRun(Run *run, const Tracking &t, TimestampTz started, bool repaired)
{
	const char *untrusted = nullptr;
	if (shm::TrackingRequestLost(run->cfg->relid))
		untrusted = "the worker may have lost changed keys during the last run (it failed or restarted)";
	else if (!t.waited)
		untrusted = "the worker's round did not end within 60 s when the last run began";
	SPI_connect();
	Oid relid = run->cfg->relid;
	if (t.reason != nullptr) {
		/* full: a new baseline (also after an incremental run that could not be) */
		Oid types[4] = {OIDOID, TIMESTAMPTZOID, TEXTOID, INT8OID};
		Datum values[4] = {ObjectIdGetDatum(relid), TimestampTzGetDatum(started),
		                   untrusted ? CStringGetTextDatum(untrusted) : (Datum) 0, Int64GetDatum(t.upto)};
		char nulls[4] = {' ', ' ', untrusted ? ' ' : 'n', ' '};
		if (SPI_execute_with_args("INSERT INTO dualwrite._reconcile_state (relid, baseline_at, untrusted, cleared_seq) "
		                          "VALUES ($1, $2, $3, $4) ON CONFLICT (relid) DO UPDATE SET baseline_at = "
		                          "EXCLUDED.baseline_at, untrusted = EXCLUDED.untrusted, cleared_seq = "
		                          "EXCLUDED.cleared_seq",
		                          4, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record the reconcile baseline");
	} else {
		Oid types[3] = {OIDOID, TEXTOID, INT8OID};
		Datum values[3] = {ObjectIdGetDatum(relid), untrusted ? CStringGetTextDatum(untrusted) : (Datum) 0,
		                   Int64GetDatum(t.upto)};
		char nulls[3] = {' ', untrusted ? ' ' : 'n', ' '};
		if (SPI_execute_with_args("UPDATE dualwrite._reconcile_state SET cleared_seq = GREATEST(cleared_seq, $3), "
		                          "untrusted = COALESCE(untrusted, $2) WHERE relid = $1",
		                          3, types, values, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record the reconcile state");
	}
	/* Differences left as they are stay changed keys for the next run. */
	if (!repaired && run->ndiffs > 0) {
		StringInfoData keys;
		initStringInfo(&keys);
		for (int i = 0; i < run->ndiffs; i++) {
			const char *text = pg_string([&] {
				std::string s;
				for (int k = 0; k < run->nkey; k++) {
					if (k)
						s.push_back('\t');
					core::AppendCopyField(s, run->diffs[i].key[k], strlen(run->diffs[i].key[k]));
				}
				return s;
			});
			appendStringInfo(&keys, "%s%s", i ? "\n" : "", text);
		}
		Oid types[2] = {OIDOID, TEXTOID};
		Datum values[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(keys.data)};
		if (SPI_execute_with_args("INSERT INTO dualwrite._reconcile_dirty (relid, key, seq) "
		                          "SELECT $1, k, pg_catalog.nextval('dualwrite._reconcile_dirty_seq') "
		                          "FROM (SELECT DISTINCT k FROM pg_catalog.unnest(pg_catalog.string_to_array($2, "
		                          "E'\\n')) AS k) AS u",
		                          2, types, values, nullptr, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record the differing keys");
	}
	SPI_finish();
}

} // namespace pgdw::verify

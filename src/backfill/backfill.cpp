/*-------------------------------------------------------------------------
 * backfill.cpp
 *    The procedure dualwrite.backfill(): checks, the state row
 *    dualwrite._backfill, the chunk loop with one transaction per chunk
 *    (and one remote transaction, committed first), progress NOTICEs.  The algorithm and its argument: backfill.hpp.
 *
 * Every check comes before anything is changed or committed: a table
 * that is not flagged, one whose configuration no longer fits, a modern
 * side that cannot be reached, a caller who may not, all fail with
 * nothing done.  The state row is written as the extension's owner (the
 * caller has no rights on pg_dualwrite's tables).
 *
 * A procedure, not a function: only a procedure may commit, and each
 * chunk must commit to be resumable.  For the same reason it has no SET
 * clause (that would make it atomic); each chunk transaction pins
 * search_path and row_security itself.
 *
 * Frames here hold only trivially destructible locals and call
 * PostgreSQL directly (boundary.hpp).
 *
 * IDENTIFICATION  src/backfill/backfill.cpp
 *-------------------------------------------------------------------------
 */
#include "backfill/backfill.hpp"
#include "backfill/ship.hpp"

#include "boundary/boundary.hpp"
#include "config/catalog.hpp"
#include "remote/connection.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "nodes/parsenodes.h"
#include "utils/syscache.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/datum.h"
}

namespace pgdw::backfill {

constexpr long kNoticeIntervalMs = 5000;

/* What the state row says. */
struct State {
	bool found;
	bool same_generation; /* recorded for the table's current enable() */
	char state;           /* 'r' running, 'f' finished */
	Oid part;             /* the leaf being copied; InvalidOid: the first */
	Datum last_key;       /* text[] or (Datum) 0 */
	int64 rows_done;
};

static void
Spi(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expected)
{
	int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed (%d): %s", rc, sql);
}

/* Read (and with lock, lock) the state row of relid; values in `out`. */
static State
ReadState(Oid relid, bool lock, MemoryContext out)
{
	State st = {false, false, 'r', InvalidOid, (Datum) 0, 0};
	config::OwnerScope scope = config::AsExtensionOwner();
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(relid)};
	Spi(lock ? "SELECT b.state, b.part_relid, b.last_key, b.rows_done, "
	           "b.enabled_at IS NOT DISTINCT FROM t.enabled_at "
	           "FROM dualwrite._backfill b LEFT JOIN dualwrite.tables t ON t.tbl::oid OPERATOR(pg_catalog.=) b.relid "
	           "WHERE b.relid OPERATOR(pg_catalog.=) $1 FOR UPDATE OF b"
	         : "SELECT b.state, b.part_relid, b.last_key, b.rows_done, "
	           "b.enabled_at IS NOT DISTINCT FROM t.enabled_at "
	           "FROM dualwrite._backfill b LEFT JOIN dualwrite.tables t ON t.tbl::oid OPERATOR(pg_catalog.=) b.relid "
	           "WHERE b.relid OPERATOR(pg_catalog.=) $1",
	    1, types, values, nullptr, SPI_OK_SELECT);
	config::Restore(scope);
	if (SPI_processed == 0)
		return st;
	HeapTuple t = SPI_tuptable->vals[0];
	TupleDesc d = SPI_tuptable->tupdesc;
	bool isnull;
	st.found = true;
	st.state = TextDatumGetCString(SPI_getbinval(t, d, 1, &isnull))[0];
	Datum part = SPI_getbinval(t, d, 2, &isnull);
	st.part = isnull ? InvalidOid : DatumGetObjectId(part);
	Datum key = SPI_getbinval(t, d, 3, &isnull);
	if (!isnull) {
		MemoryContext old = MemoryContextSwitchTo(out);
		st.last_key = datumCopy(key, false, -1);
		MemoryContextSwitchTo(old);
	}
	st.rows_done = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
	st.same_generation = DatumGetBool(SPI_getbinval(t, d, 5, &isnull));
	return st;
}

/* A new run from the start: the state row for the table's current enable(). */
static void
StartState(Oid relid, int batch_size, int64 estimate)
{
	config::OwnerScope scope = config::AsExtensionOwner();
	Oid types[4] = {OIDOID, INT4OID, INT8OID, INT4OID};
	Datum values[4] = {ObjectIdGetDatum(relid), Int32GetDatum(batch_size), Int64GetDatum(estimate),
	                   Int32GetDatum(MyProcPid)};
	Spi("INSERT INTO dualwrite._backfill AS b (relid, enabled_at, state, part_relid, last_key, rows_done, "
	    "rows_estimated, batch_size, chunks, pid, started_at, updated_at, finished_at, run_started_at, run_rows) "
	    "SELECT $1, t.enabled_at, 'running', NULL, NULL, 0, $3, $2, 0, $4, pg_catalog.clock_timestamp(), "
	    "pg_catalog.clock_timestamp(), NULL, pg_catalog.clock_timestamp(), 0 "
	    "FROM dualwrite.tables t WHERE t.tbl::oid OPERATOR(pg_catalog.=) $1 "
	    "ON CONFLICT (relid) DO UPDATE SET enabled_at = excluded.enabled_at, state = excluded.state, "
	    "part_relid = NULL, last_key = NULL, rows_done = 0, rows_estimated = excluded.rows_estimated, "
	    "batch_size = excluded.batch_size, chunks = 0, pid = excluded.pid, started_at = excluded.started_at, "
	    "updated_at = excluded.updated_at, finished_at = NULL, run_started_at = excluded.run_started_at, run_rows = 0",
	    4, types, values, nullptr, SPI_OK_INSERT);
	config::Restore(scope);
}

/* A resumed run: this session now drives it. */
static void
ResumeState(Oid relid, int batch_size, int64 estimate)
{
	config::OwnerScope scope = config::AsExtensionOwner();
	Oid types[4] = {OIDOID, INT4OID, INT8OID, INT4OID};
	Datum values[4] = {ObjectIdGetDatum(relid), Int32GetDatum(batch_size), Int64GetDatum(estimate),
	                   Int32GetDatum(MyProcPid)};
	Spi("UPDATE dualwrite._backfill SET batch_size = $2, rows_estimated = $3, pid = $4, "
	    "run_started_at = pg_catalog.clock_timestamp(), run_rows = 0, updated_at = pg_catalog.clock_timestamp() "
	    "WHERE relid OPERATOR(pg_catalog.=) $1",
	    4, types, values, nullptr, SPI_OK_UPDATE);
	config::Restore(scope);
}

/* After a chunk: where the next one starts (part InvalidOid: finished). */
static void
AdvanceState(Oid relid, Oid part, Datum last_key, int64 rows)
{
	config::OwnerScope scope = config::AsExtensionOwner();
	Oid types[4] = {OIDOID, OIDOID, TEXTARRAYOID, INT8OID};
	Datum values[4] = {ObjectIdGetDatum(relid), ObjectIdGetDatum(part), last_key, Int64GetDatum(rows)};
	char nulls[4] = {' ', OidIsValid(part) ? ' ' : 'n', last_key == (Datum) 0 ? 'n' : ' ', ' '};
	Spi("UPDATE dualwrite._backfill SET part_relid = $2, last_key = $3, rows_done = rows_done + $4, "
	    "run_rows = run_rows + $4, chunks = chunks + 1, updated_at = pg_catalog.clock_timestamp(), "
	    "state = CASE WHEN $2 IS NULL THEN 'finished' ELSE state END, "
	    "finished_at = CASE WHEN $2 IS NULL THEN pg_catalog.clock_timestamp() END "
	    "WHERE relid OPERATOR(pg_catalog.=) $1",
	    4, types, values, nulls, SPI_OK_UPDATE);
	config::Restore(scope);
}

/* Each chunk transaction: READ COMMITTED (FOR SHARE then reads the newest
 * version instead of failing), a pinned search_path, and no row security
 * (a policy that hid rows would make the copy incomplete: error instead). */
static void
BeginChunkTransaction()
{
	Spi("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", 0, nullptr, nullptr, nullptr, SPI_OK_UTILITY);
	Spi("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true), "
	    "pg_catalog.set_config('row_security', 'off', true)",
	    0, nullptr, nullptr, nullptr, SPI_OK_SELECT);
}

/* The plain tables holding the rows: the table itself, or its leaf
 * partitions in OID order. */
static Oid *
Leaves(Relation rel, int *count)
{
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE) {
		Oid *one = static_cast<Oid *>(palloc(sizeof(Oid)));
		one[0] = RelationGetRelid(rel);
		*count = 1;
		return one;
	}
	List *all = find_all_inheritors(RelationGetRelid(rel), AccessShareLock, nullptr);
	Oid *leaves = static_cast<Oid *>(palloc(sizeof(Oid) * (list_length(all) + 1)));
	int n = 0;
	ListCell *lc;
	foreach (lc, all) {
		Oid child = lfirst_oid(lc);
		if (get_rel_relkind(child) == RELKIND_RELATION)
			leaves[n++] = child;
	}
	std::sort(leaves, leaves + n);
	*count = n;
	return leaves;
}

static int64
Estimate(const Oid *leaves, int n)
{
	double total = 0;
	for (int i = 0; i < n; i++) {
		HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(leaves[i]));
		if (!HeapTupleIsValid(tup))
			continue;
		float4 reltuples = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->reltuples;
		ReleaseSysCache(tup);
		if (reltuples > 0)
			total += reltuples;
	}
	return static_cast<int64>(total);
}

/* The index in leaves of the first leaf to copy: `part` or, if it is gone,
 * the next one after it. */
static int
LeafIndex(const Oid *leaves, int n, Oid part, bool *same)
{
	*same = false;
	if (!OidIsValid(part))
		return 0;
	for (int i = 0; i < n; i++) {
		if (leaves[i] == part) {
			*same = true;
			return i;
		}
		if (leaves[i] > part)
			return i;
	}
	return n;
}

static void
Progress(const char *name, int64 done, int64 estimate, int64 run_rows, TimestampTz run_start, bool final)
{
	long secs;
	int usecs;
	TimestampDifference(run_start, GetCurrentTimestamp(), &secs, &usecs);
	double elapsed = secs + usecs / 1e6;
	double rate = elapsed > 0 ? run_rows / elapsed : 0;
	if (final) {
		ereport(NOTICE, (errmsg("backfill of table \"%s\" finished: %lld rows copied to the modern side, %lld in this run",
		                        name, static_cast<long long>(done), static_cast<long long>(run_rows)),
		                 errdetail("%.0f rows/s over %.1f s.", rate, elapsed)));
		return;
	}
	if (estimate > 0 && rate > 0 && done < estimate)
		ereport(NOTICE, (errmsg("backfill of table \"%s\": %lld of about %lld rows (%.0f%%), %.0f rows/s, ETA %.0f s",
		                        name, static_cast<long long>(done), static_cast<long long>(estimate),
		                        100.0 * done / estimate, rate, (estimate - done) / rate)));
	else
		ereport(NOTICE, (errmsg("backfill of table \"%s\": %lld rows, %.0f rows/s", name,
		                        static_cast<long long>(done), rate)));
}

/* A direct copy would deliver what the DBA (a pause) or a problem (a
 * hold) keeps waiting: refused, with what to do. */
static void
RefuseWaitingDelivery(Oid relid, const char *relname, const config::TableConfig *cfg)
{
	if (cfg->paused)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" is paused: its backfill would deliver rows while its delivery waits",
		                       relname),
		                errhint("Call dualwrite.resume('%s') first.", relname)));
	config::OwnerScope scope = config::AsExtensionOwner();
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(relid)};
	Spi("SELECT reason FROM dualwrite._held WHERE relid OPERATOR(pg_catalog.=) $1 "
	    "AND COALESCE(sqlstate, '') OPERATOR(pg_catalog.<>) ''", 1, types, values, nullptr,
	    SPI_OK_SELECT);
	config::Restore(scope);
	/* (A pause's own hold, sqlstate '', outlives resume() until the table's
	 * stream caught up: delivery runs then, so the copy may too.) */
	if (SPI_processed > 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("delivery of table \"%s\" is held: %s", relname,
		                       SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
		                errhint("Resolve the problem shown in dualwrite.status first; the backfill copies "
		                        "once the table is delivered again.")));
}

static void
Backfill(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("the table must not be NULL")));
	Oid relid = PG_GETARG_OID(0);
	int batch_size = PG_ARGISNULL(1) ? 10000 : PG_GETARG_INT32(1);
	bool restart = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	if (batch_size < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("batch_size must be at least 1")));
	const char *relname = get_rel_name(relid);
	if (relname == nullptr)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
	/* The caller's right first, before any lock. */
	if (!superuser() && !pg_class_ownercheck(relid, GetUserId()))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("must be owner of table %s to backfill it", quote_identifier(relname)),
		                errdetail("Only the table's owner or a superuser may call dualwrite.backfill() on it.")));

	bool atomic = fcinfo->context == nullptr || !IsA(fcinfo->context, CallContext) ||
	              castNode(CallContext, fcinfo->context)->atomic;
	MemoryContext proc_cxt = CurrentMemoryContext;
	SPI_connect_ext(atomic ? 0 : SPI_OPT_NONATOMIC);

	Relation rel = table_open(relid, AccessShareLock);
	if (!config::IsEnabled(relid))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" is not enabled for dual write", relname),
		                errhint("Call dualwrite.enable() first: the backfill relies on capture being on.")));
	int ncfg;
	config::TableConfig **cfgs = config::LoadAll(&ncfg);
	config::TableConfig *cfg = nullptr;
	for (int i = 0; i < ncfg; i++)
		if (cfgs[i]->relid == relid)
			cfg = cfgs[i];
	if (cfg == nullptr)
		elog(ERROR, "table \"%s\" vanished from dualwrite.tables", relname);
	if (cfg->problem != nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" cannot be backfilled: %s", relname, cfg->problem)));
	int nkeys = 0;
	const char **key_names = static_cast<const char **>(palloc(sizeof(char *) * (cfg->ncolumns + 1)));
	for (int i = 0; i < cfg->ncolumns; i++)
		if (cfg->columns[i].is_key)
			key_names[nkeys++] = cfg->columns[i].legacy_name;
	if (nkeys == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" has no key to backfill by", relname)));
	RefuseWaitingDelivery(relid, relname, cfg);
	if (atomic)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
		                errmsg("dualwrite.backfill() must be called with CALL outside a transaction block"),
		                errdetail("It commits after each chunk, so that it can resume after an interruption.")));

	int nleaves;
	Oid *leaves = Leaves(rel, &nleaves);
	int64 estimate = Estimate(leaves, nleaves);
	table_close(rel, NoLock);

	State st = ReadState(relid, false, proc_cxt);
	if (st.found && st.same_generation && st.state == 'f' && !restart) {
		ereport(NOTICE, (errmsg("table \"%s\" was already backfilled", relname),
		                 errhint("CALL dualwrite.backfill(..., restart => true) copies it again.")));
		SPI_finish();
		return;
	}
	bool resumed = st.found && st.same_generation && st.state != 'f' && !restart;
	if (resumed) {
		ResumeState(relid, batch_size, estimate);
		ereport(NOTICE, (errmsg("resuming the backfill of table \"%s\" after %lld rows", relname,
		                        static_cast<long long>(st.rows_done))));
	} else
		StartState(relid, batch_size, estimate);
	/* Connected before the first commit: a modern side that cannot be
	 * reached fails the call with nothing recorded. */
	OpenShip(cfg);
	SPI_commit();

	MemoryContext chunk_cxt = AllocSetContextCreate(proc_cxt, "backfill chunk", ALLOCSET_DEFAULT_SIZES);
	TimestampTz run_start = GetCurrentTimestamp();
	TimestampTz last_notice = run_start;
	int64 run_rows = 0;
	int64 chunks_this_run = 0;
	int64 done = resumed ? st.rows_done : 0;
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		MemoryContext old = MemoryContextSwitchTo(chunk_cxt);
		BeginChunkTransaction();
		/* The state row, locked: a second session on the same table
		 * continues from whatever chunk committed last. */
		State cur = ReadState(relid, true, chunk_cxt);
		if (!cur.found || !cur.same_generation || cur.state == 'f') {
			MemoryContextSwitchTo(old);
			break;
		}
		done = cur.rows_done;
		bool same;
		int idx = LeafIndex(leaves, nleaves, cur.part, &same);
		Datum lo = same ? cur.last_key : (Datum) 0;
		ChunkResult r = {0, (Datum) 0, true};
		Oid next_part = InvalidOid;
		Datum next_lo = (Datum) 0;
		if (idx < nleaves) {
			Relation leaf = try_table_open(leaves[idx], AccessShareLock);
			if (leaf != nullptr) {
				r = CopyChunk(leaf, cfg, key_names, nkeys, lo, batch_size);
				table_close(leaf, NoLock);
				/* Modern first, legacy second (backfill.hpp): the rows
				 * stay locked until the copy is committed there. */
				CommitShipChunk();
			}
			if (r.last) {
				next_part = idx + 1 < nleaves ? leaves[idx + 1] : InvalidOid;
			} else {
				next_part = leaves[idx];
				next_lo = r.next_lo;
			}
		}
		AdvanceState(relid, next_part, next_lo, r.rows);
		SPI_commit();
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunk_cxt);
		run_rows += r.rows;
		done += r.rows;
		chunks_this_run++;
		/* Tests: a real query cancel after the second chunk of a run. */
		if (chunks_this_run >= 2 && OidIsValid(next_part) && shm::TakeFault("backfill_cancel")) {
			QueryCancelPending = true;
			InterruptPending = true;
		}
		if (!OidIsValid(next_part))
			break;
		TimestampTz now = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(last_notice, now, kNoticeIntervalMs)) {
			Progress(relname, done, estimate, run_rows, run_start, false);
			last_notice = now;
		}
	}
	CloseShip();
	Progress(relname, done, estimate, run_rows, run_start, true);
	SPI_finish();
}

} // namespace pgdw::backfill

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_backfill);

PGDLLEXPORT Datum
dualwrite_backfill(PG_FUNCTION_ARGS)
{
	pgdw::pg_entry([&] { pgdw::backfill::Backfill(fcinfo); });
	PG_RETURN_VOID();
}
}

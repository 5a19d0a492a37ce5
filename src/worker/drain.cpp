/*-------------------------------------------------------------------------
 * drain.cpp
 *    The drain round (see drain.hpp for the algorithm).
 *
 * Memory and error discipline: every C++ object with a destructor (the
 * COPY buffers, SQL strings) lives in the file-static `targets` registry,
 * never on the stack, so a PostgreSQL ERROR may longjmp through these
 * frames to the worker's PG_TRY without skipping a destructor.  C++
 * exceptions (std::bad_alloc) propagate to the pg_entry() the worker runs
 * the round under.  Per-round palloc memory lives in round_context, per-
 * batch memory in batch_context; both are reset, never leaked.
 *
 * IDENTIFICATION  src/worker/drain.cpp
 *-------------------------------------------------------------------------
 */
#include "worker/drain.hpp"

#include "boundary/boundary.hpp"
#include "config/catalog.hpp"
#include "config/guc.hpp"
#include "core/apply_sql.hpp"
#include "core/backoff.hpp"
#include "core/copy_text.hpp"
#include "core/quote.hpp"
#include "outbox/outbox.hpp"
#include "outbox/reader.hpp"
#include "remote/connection.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "catalog/pg_inherits.h"
#include "commands/extension.h"
#include "utils/acl.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/pg_lsn.h"
#include "utils/syscache.h"
}

namespace pgdw::worker {

/* A delivery stream: the changes going to one foreign server. */
struct Stream {
	char server[NAMEDATALEN];
	Oid userid;           /* whose user mapping */
	PGconn *conn;         /* kept across rounds; NULL after a failure */
	uint32 conn_gen;      /* bumps on reconnect: temp staging tables are gone */
	bool progress_known;  /* done/cur/pos read from the modern side */
	long long version;    /* of the progress row, as last read or written */
	char *done_snapshot;  /* TopMemoryContext */
	char *cur_snapshot;   /* TopMemoryContext; NULL when no range is open */
	char pos_lsn[32];
	char pos_txid[32];
	int pos_seq;
	bool dirty;           /* local _progress must be rewritten */
	uint32 failures;      /* consecutive failed rounds */
	TimestampTz retry_at; /* do not try before */
	uint32 recovered_after; /* >0: the last round recovered after that many failures */
};

constexpr int kMaxStreams = 16;
static Stream streams[kMaxStreams];
static Stream *current_stream = nullptr; /* the stream a failure belongs to */

/* One flagged table's staging state; C++ members live here, not on stacks. */
struct Target {
	const config::TableConfig *cfg; /* round_context */
	core::TargetShape shape;
	std::string stage_create, copy_sql, direct_copy_sql, delete_sql, upsert_sql, truncate_sql;
	std::string buf;   /* COPY text of the current batch */
	int64 rows;        /* rows in buf */
	bool has_delete;   /* buf holds a delete */
	bool only_inserts; /* buf holds inserts only: try the direct COPY */
	uint32 stage_gen;  /* conn_gen the staging table was created under */
	int64 applied;     /* committed on the modern side this round */
	Stream *stream;
};
static std::vector<Target> targets;
static std::string direct_buf; /* a batch's rows without the staging columns */
static std::string redo_buf;   /* the in-flight direct COPY's rows, kept for the upsert fallback */

/* One captured relation (the flagged table, or one of its partitions). */
struct Source {
	Oid relid;
	int target;          /* index in targets */
	TupleDesc desc;
	AttrNumber *attnums; /* per sent column, attnum in this relation */
	FmgrInfo *out;       /* output function per sent column */
	Datum *values;
	bool *nulls;
};
static Source *sources = nullptr; /* round_context */
static int nsources = 0;

/*
 * A batch whose apply and COMMIT are sent but not yet confirmed.  While the
 * modern side applies batch k, the worker fetches and encodes batch k+1:
 * the two sides work in parallel.  Only one batch is ever in flight, and it
 * is confirmed before anything else uses the connection.
 */
struct InFlight {
	bool active;
	Stream *stream;
	const char *prev, *cur; /* the range (its strings outlive the batch) */
	char lsn[32], txid[32];
	int seq;
	uint64 rows;
	int fast_target; /* >= 0: sent as a direct COPY of that target (redo_buf) */
};
static InFlight in_flight;
static int64 *in_flight_counts = nullptr; /* per target, round_context */
static int64 *batch_counts = nullptr;     /* per target, round_context */

/* Set by syscache invalidation of a server or user mapping: reconnect. */
static bool options_changed = false;
static bool inval_registered = false;

static MemoryContext round_context = nullptr;
static MemoryContext batch_context = nullptr;
static MemoryContext fetch_context = nullptr; /* the rows of the batch being read */

static Stream *
StreamFor(const char *server)
{
	Stream *free_slot = nullptr;
	for (auto &s : streams) {
		if (s.server[0] != '\0' && strcmp(s.server, server) == 0)
			return &s;
		if (s.server[0] == '\0' && free_slot == nullptr)
			free_slot = &s;
	}
	if (free_slot == nullptr)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		                errmsg("pg_dualwrite delivers to at most %d servers per database", kMaxStreams)));
	memset(free_slot, 0, sizeof(Stream));
	strlcpy(free_slot->server, server, NAMEDATALEN);
	return free_slot;
}

static void
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
static void
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

/* Connect if needed and read the stream's progress from the modern side. */
static void
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
	remote::Exec(s->conn, pg_string([&] { return core::ProgressBootstrapSql(origin); }));
	PGresult *res = remote::Query(s->conn, pg_string([&] { return core::ProgressSelectSql(origin); }));
	if (PQntuples(res) != 1) {
		PQclear(res);
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
		                errmsg("progress row of origin \"%s\" missing on server \"%s\"", origin, s->server)));
	}
	s->version = strtoll(PQgetvalue(res, 0, 5), nullptr, 10);
	SetProgress(s, PQgetvalue(res, 0, 0), PQgetisnull(res, 0, 1) ? nullptr : PQgetvalue(res, 0, 1),
		            PQgetisnull(res, 0, 2) ? nullptr : PQgetvalue(res, 0, 2),
		            PQgetisnull(res, 0, 3) ? nullptr : PQgetvalue(res, 0, 3),
		            PQgetisnull(res, 0, 4) ? 0 : atoi(PQgetvalue(res, 0, 4)));
	PQclear(res);
	s->progress_known = true;
}

/* The key of this database's streams on the modern side. */
static const char *
Origin(const Stream *s)
{
	return psprintf(UINT64_FORMAT ":%u:%s", GetSystemIdentifier(), MyDatabaseId, s->server);
}

/* "BEGIN; <progress check>; ": how every batch transaction starts. */
static const char *
BeginSql(Stream *s)
{
	const char *origin = Origin(s);
	long long version = s->version;
	return pg_string([&] { return "BEGIN; " + core::ProgressCheckSql(origin, version) + "; "; });
}

/* Build targets and sources for every flagged table (and partition). */
static void
LoadShapes(config::TableConfig **cfgs, int n)
{
	targets.clear();
	targets.resize(n);
	/* Partitioned tables contribute one source per leaf partition. */
	List **per_table = static_cast<List **>(palloc0(sizeof(List *) * (n + 1)));
	int total = 0;
	for (int i = 0; i < n; i++) {
		per_table[i] = find_all_inheritors(cfgs[i]->relid, AccessShareLock, nullptr);
		total += list_length(per_table[i]);
	}
	sources = static_cast<Source *>(palloc0(sizeof(Source) * (total + 1)));
	in_flight_counts = static_cast<int64 *>(palloc0(sizeof(int64) * (n + 1)));
	batch_counts = static_cast<int64 *>(palloc0(sizeof(int64) * (n + 1)));
	in_flight.active = false;
	nsources = 0;
	for (int i = 0; i < n; i++) {
		Target &t = targets[i];
		t.cfg = cfgs[i];
		t.stream = StreamFor(cfgs[i]->target_server);
		if (t.stream->userid == InvalidOid)
			t.stream->userid = get_role_oid(cfgs[i]->enabled_by, false);
		pg_entry([&] {
			t.shape.schema = t.cfg->target_schema;
			t.shape.table = t.cfg->target_name;
			t.shape.columns.clear();
			t.shape.key.clear();
			for (int c = 0; c < t.cfg->ncolumns; c++) {
				t.shape.columns.emplace_back(t.cfg->columns[c].modern_name);
				if (t.cfg->columns[c].is_key)
					t.shape.key.push_back(c);
			}
			t.shape.stage = "dw_stage_" + std::to_string(t.cfg->relid);
			t.stage_create = core::StageCreateSql(t.shape);
			t.copy_sql = core::StageCopySql(t.shape);
			t.direct_copy_sql = core::DirectCopySql(t.shape);
			t.delete_sql = core::ApplyDeleteSql(t.shape);
			t.upsert_sql = core::ApplyUpsertSql(t.shape);
			t.truncate_sql = core::ApplyTruncateSql(t.shape);
		});
		ListCell *lc;
		foreach (lc, per_table[i]) {
			Oid relid = lfirst_oid(lc);
			Relation rel = table_open(relid, AccessShareLock); /* kept to transaction end */
			if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE) {
				table_close(rel, NoLock);
				continue; /* rows live in the leaves */
			}
			Source &src = sources[nsources++];
			src.relid = relid;
			src.target = i;
			src.desc = RelationGetDescr(rel);
			int ncols = t.cfg->ncolumns;
			src.attnums = static_cast<AttrNumber *>(palloc(sizeof(AttrNumber) * ncols));
			src.out = static_cast<FmgrInfo *>(palloc(sizeof(FmgrInfo) * ncols));
			src.values = static_cast<Datum *>(palloc(sizeof(Datum) * src.desc->natts));
			src.nulls = static_cast<bool *>(palloc(sizeof(bool) * src.desc->natts));
			for (int c = 0; c < ncols; c++) {
				/* Partitions may order columns differently: match by name. */
				AttrNumber attnum = get_attnum(relid, t.cfg->columns[c].legacy_name);
				if (attnum == InvalidAttrNumber)
					elog(ERROR, "column \"%s\" not found in relation %u", t.cfg->columns[c].legacy_name, relid);
				src.attnums[c] = attnum;
				Oid outfunc;
				bool varlena;
				getTypeOutputInfo(TupleDescAttr(src.desc, attnum - 1)->atttypid, &outfunc, &varlena);
				fmgr_info_cxt(outfunc, &src.out[c], round_context);
			}
			table_close(rel, NoLock);
		}
	}
}

static Source *
FindSource(Oid relid)
{
	for (int i = 0; i < nsources; i++)
		if (sources[i].relid == relid)
			return &sources[i];
	return nullptr;
}

/* Append one captured row image to its target's COPY buffer. */
static void
StageRow(Source *src, int64 ord, char op, bytea *image)
{
	Target &t = targets[src->target];
	const config::TableConfig *cfg = t.cfg;

	/* Deform from a MAXALIGNed copy: offsets inside the image assume it. */
	uint32 len = VARSIZE_ANY_EXHDR(image);
	char *aligned = static_cast<char *>(palloc(len));
	memcpy(aligned, VARDATA_ANY(image), len);
	HeapTupleData tup;
	tup.t_len = len;
	tup.t_data = reinterpret_cast<HeapTupleHeader>(aligned);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = src->relid;
	heap_deform_tuple(&tup, src->desc, src->values, src->nulls);

	char ordbuf[32];
	int ordlen = snprintf(ordbuf, sizeof(ordbuf), INT64_FORMAT "\t%c", ord, op);
	t.buf.append(ordbuf, ordlen);
	for (int c = 0; c < cfg->ncolumns; c++) {
		int att = src->attnums[c] - 1;
		t.buf.push_back('\t');
		/* A delete needs only its key. */
		if (src->nulls[att] || (op == outbox::kDelete && !cfg->columns[c].is_key)) {
			core::AppendCopyNull(t.buf);
			continue;
		}
		char *text = OutputFunctionCall(&src->out[c], src->values[att]);
		core::AppendCopyField(t.buf, text, strlen(text));
	}
	t.buf.push_back('\n');
	t.only_inserts = (t.rows == 0 || t.only_inserts) && op == outbox::kInsert;
	t.rows++;
	t.has_delete = t.has_delete || op == outbox::kDelete;
}

/* Send the staged rows of every target of `s` and apply them (inside the
 * stream's open remote transaction, which this starts if needed).  When the
 * transaction goes on after this (a TRUNCATE follows), the staging tables
 * are emptied: ON COMMIT DELETE ROWS empties them only at commit. */
static void
FlushTargets(Stream *s, bool *in_xact, bool clear_stage)
{
	const char *begin = BeginSql(s);
	for (auto &t : targets) {
		if (t.stream != s || t.rows == 0)
			continue;
		if (t.only_inserts) {
			/* Fast path: COPY into the target under a savepoint; if a key
			 * already exists there (e.g. backfilled), fall back to the upsert. */
			const char *sql = pg_string([&] {
				return std::string(*in_xact ? "" : begin) + "SAVEPOINT dw_fast; " + t.direct_copy_sql;
			});
			*in_xact = true;
			remote::BeginCopy(s->conn, sql);
			pg_entry([&] { core::StripLeadingFields(t.buf, 2, direct_buf); });
			remote::PutCopy(s->conn, direct_buf.data(), direct_buf.size());
			if (remote::EndCopyUnlessDuplicate(s->conn)) {
				remote::Exec(s->conn, "RELEASE SAVEPOINT dw_fast");
				t.rows = 0; /* applied */
				continue;
			}
			remote::Exec(s->conn, "ROLLBACK TO SAVEPOINT dw_fast; RELEASE SAVEPOINT dw_fast");
		}
		const char *sql = pg_string([&] {
			std::string q;
			if (!*in_xact)
				q += begin;
			if (t.stage_gen != s->conn_gen)
				q += t.stage_create + "; ";
			return q + t.copy_sql;
		});
		*in_xact = true;
		t.stage_gen = s->conn_gen;
		remote::BeginCopy(s->conn, sql);
		remote::PutCopy(s->conn, t.buf.data(), t.buf.size());
		remote::EndCopy(s->conn);
	}
	const char *apply_sql = pg_string([&] {
		std::string q;
		for (auto &t : targets) {
			if (t.stream != s || t.rows == 0)
				continue;
			if (t.has_delete)
				q += t.delete_sql + "; ";
			q += t.upsert_sql + "; ";
			if (clear_stage)
				q += "TRUNCATE pg_temp." + core::QuoteIdent(t.shape.stage) + "; ";
		}
		return q;
	});
	if (apply_sql[0] != '\0')
		remote::Exec(s->conn, apply_sql);
	for (auto &t : targets) {
		if (t.stream != s)
			continue;
		t.buf.clear();
		t.rows = 0;
		t.has_delete = false;
		t.only_inserts = false;
	}
}

/* The in-flight direct COPY failed on a duplicate key: apply its rows
 * (kept in redo_buf) through the staging table and the upsert instead. */
static void
RedoWithUpsert(Stream *s)
{
	Target &t = targets[in_flight.fast_target];
	const char *begin = BeginSql(s);
	const char *origin = Origin(s);
	const char *copy_sql = pg_string([&] {
		return std::string(begin) + (t.stage_gen != s->conn_gen ? t.stage_create + "; " : std::string()) +
		       t.copy_sql;
	});
	const char *apply_sql = pg_string([&] {
		return t.upsert_sql + "; " +
		       core::ProgressUpdateSql(origin, in_flight.prev, in_flight.cur, in_flight.lsn, in_flight.txid,
		                               in_flight.seq) +
		       "; COMMIT";
	});
	t.stage_gen = s->conn_gen;
	remote::BeginCopy(s->conn, copy_sql);
	remote::PutCopy(s->conn, redo_buf.data(), redo_buf.size());
	remote::EndCopy(s->conn);
	remote::Exec(s->conn, apply_sql);
}

/* Wait for the batch in flight to commit on the modern side; then advance
 * the stream's progress.  Returns the changes it applied. */
static int64
FinishInFlight()
{
	if (!in_flight.active)
		return 0;
	in_flight.active = false; /* if the wait fails, the round fails: all is re-read */
	Stream *s = in_flight.stream;
	if (in_flight.fast_target < 0)
		remote::WaitCommand(s->conn, "COMMIT");
	else if (!remote::WaitCommandUnlessDuplicate(s->conn, "COPY ...; COMMIT")) {
		/* A key already existed on the modern side (e.g. backfilled): the
		 * server skipped the rest of the string; apply the batch again
		 * through staging and the upsert, in a new transaction. */
		remote::Exec(s->conn, "ROLLBACK");
		RedoWithUpsert(s);
	}
	SetProgress(s, in_flight.prev, in_flight.cur, in_flight.lsn, in_flight.txid, in_flight.seq);
	s->version++;
	int64 total = 0;
	for (size_t i = 0; i < targets.size(); i++) {
		targets[i].applied += in_flight_counts[i];
		total += in_flight_counts[i];
		in_flight_counts[i] = 0;
	}
	shm::DbSlot *slot = shm::SlotFor(MyDatabaseId, false);
	if (slot != nullptr) {
		slot->last_batch_at = GetCurrentTimestamp();
		slot->applied_total += in_flight.rows;
	}
	return total;
}

/* The only target of `s` with staged rows, if those are all inserts; else -1. */
static int
SingleInsertOnlyTarget(Stream *s)
{
	int found = -1;
	for (size_t i = 0; i < targets.size(); i++) {
		if (targets[i].stream != s || targets[i].rows == 0)
			continue;
		if (found >= 0 || !targets[i].only_inserts)
			return -1;
		found = static_cast<int>(i);
	}
	return found;
}

/* Apply one fetched batch as one remote transaction, left in flight. */
static int64
ApplyBatch(Stream *s, const outbox::Change *changes, uint64 n, const char *prev, const char *cur)
{
	int64 *counts = batch_counts;
	int64 confirmed = 0;
	MemoryContext old = MemoryContextSwitchTo(batch_context);
	bool in_xact = false;
	int64 ord = 0;
	for (uint64 i = 0; i < n; i++) {
		const outbox::Change &c = changes[i];

		Source *src = FindSource(c.relid);
		if (src == nullptr)
			continue; /* table disabled since: its changes are discarded */
		Target &t = targets[src->target];
		if (c.op == outbox::kTruncate) {
			/* Everything staged before the TRUNCATE goes first. */
			confirmed += FinishInFlight();
			FlushTargets(s, &in_xact, true);
			const char *begin = BeginSql(s);
			const char *sql = pg_string([&] { return std::string(in_xact ? "" : begin) + t.truncate_sql; });
			in_xact = true;
			remote::Exec(s->conn, sql);
		} else if (c.data != nullptr)
			StageRow(src, ++ord, c.op, reinterpret_cast<bytea *>(c.data));
		counts[src->target]++;
	}
	/* The batch's end position: its last change (n > 0). */
	const outbox::Change &last = changes[n - 1];
	char last_lsn[32], last_txid[32];
	snprintf(last_lsn, sizeof(last_lsn), "%X/%X", static_cast<uint32>(last.lsn >> 32), static_cast<uint32>(last.lsn));
	snprintf(last_txid, sizeof(last_txid), UINT64_FORMAT, last.txid);
	int last_seq = last.seq;

	confirmed += FinishInFlight();
	const char *begin = BeginSql(s);
	const char *origin = Origin(s);
	int fast = in_xact ? -1 : SingleInsertOnlyTarget(s);
	if (fast >= 0) {
		/*
		 * One table, inserts only: the whole transaction in one string,
		 * COPY straight into the target, then progress and COMMIT.  We only
		 * wait for the COPY to start; the modern side loads the rows and
		 * commits while we read and encode the next batch.
		 */
		Target &t = targets[fast];
		const char *sql = pg_string([&] {
			return std::string(begin) + "SAVEPOINT dw_fast; " + t.direct_copy_sql + "; RELEASE SAVEPOINT dw_fast; " +
			       core::ProgressUpdateSql(origin, prev, cur, last_lsn, last_txid, last_seq) + "; COMMIT";
		});
		remote::BeginCopy(s->conn, sql);
		pg_entry([&] { core::StripLeadingFields(t.buf, 2, direct_buf); });
		remote::PutCopy(s->conn, direct_buf.data(), direct_buf.size());
		remote::SendCopyEnd(s->conn);
		pg_entry([&] {
			redo_buf.swap(t.buf); /* kept until the COMMIT is confirmed */
			t.buf.clear();
		});
		t.rows = 0;
		t.only_inserts = false;
	} else {
		FlushTargets(s, &in_xact, false);
		const char *commit_sql = pg_string([&] {
			return std::string(in_xact ? "" : begin) +
			       core::ProgressUpdateSql(origin, prev, cur, last_lsn, last_txid, last_seq) + "; COMMIT";
		});
		remote::SendCommand(s->conn, commit_sql);
	}
	in_flight.fast_target = fast;
	/* Progress advances when the COMMIT is confirmed (FinishInFlight). */
	in_flight.active = true;
	in_flight.stream = s;
	in_flight.prev = prev;
	in_flight.cur = cur;
	strlcpy(in_flight.lsn, last_lsn, sizeof(in_flight.lsn));
	strlcpy(in_flight.txid, last_txid, sizeof(in_flight.txid));
	in_flight.seq = last_seq;
	in_flight.rows = n;
	for (size_t i = 0; i < targets.size(); i++) {
		in_flight_counts[i] = counts[i];
		counts[i] = 0;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(batch_context);
	return confirmed;
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

	outbox::RangeSpec spec;
	spec.relids = relids;
	spec.nrelids = nrelids;
	spec.prev = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(prev));
	spec.cur = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(cur));

	outbox::Change *changes =
	    static_cast<outbox::Change *>(palloc(sizeof(outbox::Change) * (guc::batch_size + 1)));
	int64 total = 0;
	bool more = true;
	while (more) {
		/* Each pass starts after the last applied change (a pass is partial
		 * only when the range holds more rows than one pass may sort). */
		spec.pos_lsn = DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(s->pos_lsn)));
		spec.pos_txid = DatumGetUInt64(DirectFunctionCall1(xid8in, CStringGetDatum(s->pos_txid)));
		spec.pos_seq = s->pos_seq;
		outbox::RangeScan *scan = outbox::BeginRangeScan(spec);
		for (;;) {
			/* Row copies live in fetch_context until the batch is encoded. */
			MemoryContext old = MemoryContextSwitchTo(fetch_context);
			uint64 n = 0;
			while (n < static_cast<uint64>(guc::batch_size) && outbox::NextChange(scan, &changes[n]))
				n++;
			MemoryContextSwitchTo(old);
			if (n == 0)
				break;
			total += ApplyBatch(s, changes, n, prev, cur);
			MemoryContextReset(fetch_context);
		}
		more = outbox::RangeTruncated(scan);
		outbox::EndRangeScan(scan);
		total += FinishInFlight(); /* the next pass starts from its position */
	}
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
	/* A table without a usable key stops its stream (applying by an empty
	 * key would corrupt the target); the error shows in its status. */
	for (auto &t : targets)
		if (t.stream == s && t.cfg->key_problem != nullptr)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("%s", t.cfg->key_problem),
			                errhint("Call dualwrite.disable() and dualwrite.enable() on the table to deliver it by "
			                        "its current key.")));
	EnsureConnected(s, Origin(s));
	int64 total = 0;
	if (s->cur_snapshot != nullptr)
		total += DrainRange(s);
	return total + DrainRange(s);
}

/* Record progress and counters locally (in the round's transaction). */
static void
RecordLocally()
{
	for (auto &s : streams) {
		if (s.server[0] == '\0' || !s.dirty)
			continue;
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
		                          "EXCLUDED.last_applied_at, last_error = NULL",
		                          2, types, values, nullptr, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record counters");
		t.applied = 0;
	}
}

RoundResult
DrainRound()
{
	RoundResult result = {false, false, 0, false};
	if (round_context == nullptr) {
		round_context = AllocSetContextCreate(TopMemoryContext, "pg_dualwrite round", ALLOCSET_DEFAULT_SIZES);
		batch_context = AllocSetContextCreate(TopMemoryContext, "pg_dualwrite batch", ALLOCSET_DEFAULT_SIZES);
		fetch_context = AllocSetContextCreate(TopMemoryContext, "pg_dualwrite fetch", ALLOCSET_DEFAULT_SIZES);
	}
	MemoryContextReset(round_context);
	MemoryContextReset(batch_context);
	MemoryContextReset(fetch_context);
	current_stream = nullptr;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* One snapshot for the whole round: it closes the range. */
	XactIsoLevel = XACT_REPEATABLE_READ;
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pg_dualwrite: draining outbox");

	if (!OidIsValid(get_extension_oid("pg_dualwrite", true))) {
		result.no_extension = true;
	} else {
		MemoryContext old = MemoryContextSwitchTo(round_context);
		int n;
		config::TableConfig **cfgs = config::LoadAll(&n);
		LoadShapes(cfgs, n);
		MemoryContextSwitchTo(old);
		result.has_tables = n > 0;
		ApplyOptionChanges();
		TimestampTz now = GetCurrentTimestamp();
		for (auto &s : streams) {
			if (s.server[0] == '\0')
				continue;
			bool used = false;
			for (auto &t : targets)
				used = used || t.stream == &s;
			if (!used)
				continue;
			if (s.failures > 0 && now < s.retry_at) {
				result.backing_off = true;
				continue;
			}
			current_stream = &s;
			result.applied += DrainStream(&s);
			if (s.failures > 0) {
				s.recovered_after = s.failures;
				s.failures = 0;
			}
		}
		current_stream = nullptr;
		RecordLocally();
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, nullptr);
	return result;
}

const char *
OnRoundFailure(ErrorData *edata, bool *connection_problem, int *attempts, long *retry_ms)
{
	Stream *s = current_stream;
	current_stream = nullptr;
	in_flight.active = false; /* its outcome is read back from the modern side */
	for (auto &t : targets) {
		t.buf.clear();
		t.rows = 0;
		t.has_delete = false;
		t.applied = 0; /* counters of a failed round are dropped (advisory) */
	}
	*connection_problem = ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION;
	if (s == nullptr) {
		*attempts = 0;
		*retry_ms = guc::retry_backoff_min_ms;
		return nullptr;
	}
	/* The connection's state is unknown (maybe mid-transaction): drop it;
	 * reconnecting reads the true progress back from the modern side. */
	remote::Disconnect(s->conn);
	s->conn = nullptr;
	s->progress_known = false;
	s->failures++;
	*attempts = static_cast<int>(s->failures);
	*retry_ms = core::BackoffDelayMs(s->failures, guc::retry_backoff_min_ms, guc::retry_backoff_max_ms);
	s->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), *retry_ms);
	return s->server;
}

void
RecordFailure(const char *server, const char *message)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	Oid types[2] = {TEXTOID, TEXTOID};
	Datum values[2] = {CStringGetTextDatum(server), CStringGetTextDatum(message != nullptr ? message : "")};
	if (SPI_execute_with_args("UPDATE dualwrite._table_stats s SET failures = s.failures + 1, last_error = $2, "
	                          "last_error_at = pg_catalog.now() FROM dualwrite.tables t "
	                          "WHERE t.tbl::oid = s.relid AND t.target_server = $1::name",
	                          2, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the delivery failure");
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

const char *
TakeRecoveredServer(int *after_attempts)
{
	for (auto &s : streams)
		if (s.server[0] != '\0' && s.recovered_after > 0) {
			*after_attempts = static_cast<int>(s.recovered_after);
			s.recovered_after = 0;
			return s.server;
		}
	return nullptr;
}

} // namespace pgdw::worker

/*-------------------------------------------------------------------------
 * apply.cpp
 *    Batch building and remote apply (see apply.hpp).
 *
 * Memory and error discipline: every C++ object with a destructor (the
 * COPY buffers, SQL strings) lives in a file-static owner, never on the
 * stack, so a PostgreSQL ERROR may longjmp through these frames to the
 * worker's PG_TRY without skipping a destructor.  C++ exceptions
 * (std::bad_alloc) propagate to the pg_entry() the worker runs the round
 * under.  Per-batch palloc memory lives in batch_context, reset per batch.
 *
 * IDENTIFICATION  src/worker/apply.cpp
 *-------------------------------------------------------------------------
 */
#include "worker/apply.hpp"
#include "worker/tracking.hpp"

#include "boundary/boundary.hpp"
#include "core/apply_sql.hpp"
#include "core/copy_text.hpp"
#include "core/quote.hpp"
#include "outbox/image.hpp"
#include "outbox/outbox.hpp"
#include "remote/connection.hpp"
#include "shmem/shmem.hpp"
#include "worker/shapes.hpp"

namespace pgdw::worker {

static std::string direct_buf; /* a batch's rows without the staging columns */
static std::string redo_buf;   /* the in-flight direct COPY's rows, kept for the upsert fallback */
static std::vector<int> truncate_group; /* targets of one TRUNCATE statement */

/*
 * A batch whose apply and COMMIT are sent but not yet confirmed.  While the
 * modern side applies batch k, the worker fetches and encodes batch k+1:
 * the two sides work in parallel.  Only one batch is ever in flight, and it
 * is confirmed before anything else uses the connection.  A chunk of a
 * larger transaction that is one table's inserts is sent the same way (a
 * direct COPY under a savepoint, without COMMIT), so a large legacy
 * transaction is pipelined as well.
 */
struct InFlight {
	bool active;
	Stream *stream;
	const char *prev, *cur; /* the range (its strings outlive the batch) */
	char lsn[32], txid[32];
	int seq;
	uint64 rows;
	int fast_target; /* >= 0: sent as a direct COPY of that target (redo_buf) */
	bool chunk;      /* a chunk of an open remote transaction: no COMMIT */
	bool in_xact;    /* sent inside a remote transaction begun before */
};
static InFlight in_flight;

/*
 * A remote transaction that chunks of one legacy transaction (or of several
 * interleaved ones) were sent in, not yet committed: the next chunk or the
 * commit goes on in it (drain.hpp, whole transactions).
 */
struct OpenXact {
	bool active;  /* BEGIN was sent (and something applied) */
	Stream *stream;
	uint64 rows;  /* changes of the chunks sent so far */
};
static OpenXact open_xact;
static int64 *in_flight_counts = nullptr; /* per target, round-long */
static int64 *batch_counts = nullptr;     /* per target, round-long */
static MemoryContext batch_context = nullptr;

/*
 * The tables the remote call (or local decoding) in progress is about.  A
 * failure that one table's own statement raised can be pinned on it, and
 * that table held (holds.hpp) instead of stalling the whole server.  Empty
 * for the statements of the stream itself (BEGIN, progress, COMMIT).
 */
constexpr int kMaxBlamed = 64;
static Oid blamed[kMaxBlamed];
static int nblamed = 0;

static void
BlameNone()
{
	nblamed = 0;
}

static void
Blame(const Target &t)
{
	blamed[0] = t.cfg->relid;
	nblamed = 1;
}

static void
BlameAlso(const Target &t)
{
	for (int i = 0; i < nblamed; i++)
		if (blamed[i] == t.cfg->relid)
			return;
	if (nblamed < kMaxBlamed)
		blamed[nblamed++] = t.cfg->relid;
}

/*
 * A change of a table that cannot be delivered now (no usable key, or a
 * configuration that no longer fits it): that table's problem, so it is
 * held (holds.hpp) and the others go on.  Applying by an empty key would
 * corrupt the target.
 */
[[noreturn]] static void
RaiseTableProblem(const Target &t)
{
	Blame(t);
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("%s", t.cfg->problem),
	                errhint("Fix the table (or its column_map), or call dualwrite.disable() and dualwrite.enable() "
	                        "to deliver it as it is now.")));
	pg_unreachable();
}

int
BlamedTables(const Oid **relids)
{
	*relids = blamed;
	return nblamed;
}

void
ResetApplyState(int ntargets)
{
	in_flight_counts = static_cast<int64 *>(palloc0(sizeof(int64) * (ntargets + 1)));
	batch_counts = static_cast<int64 *>(palloc0(sizeof(int64) * (ntargets + 1)));
	in_flight.active = false;
	open_xact = OpenXact{};
	if (batch_context != nullptr)
		MemoryContextReset(batch_context);
}

void
AbandonBatches()
{
	in_flight.active = false;
	open_xact = OpenXact{}; /* the failure ends it: the modern side rolls it back */
	for (auto &t : targets) {
		t.buf.clear();
		t.rows = 0;
		t.has_delete = false;
		t.applied = 0; /* counters of a failed round are dropped (advisory) */
	}
}

/* Append one captured row image to its target's COPY buffer. */
static void
StageRow(Source *src, int64 ord, char op, bytea *image, uint32 layout)
{
	Target &t = targets[src->target];
	const config::TableConfig *cfg = t.cfg;

	if (src->desc == nullptr)
		elog(ERROR, "row change captured for partitioned table %u", src->relid);
	outbox::DeformImage(src->relid, src->desc, image, layout, src->values, src->nulls);

	char ordbuf[32];
	int ordlen = snprintf(ordbuf, sizeof(ordbuf), INT64_FORMAT "\t%c", ord, op);
	t.buf.append(ordbuf, ordlen);
	bool first_key = true;
	for (int c = 0; c < cfg->ncolumns; c++) {
		int att = src->attnums[c] - 1;
		t.buf.push_back('\t');
		/* A delete needs only its key. */
		if (src->nulls[att] || (op == outbox::kDelete && !cfg->columns[c].is_key)) {
			core::AppendCopyNull(t.buf);
			continue;
		}
		char *text = OutputFunctionCall(&src->out[c], src->values[att]);
		size_t len = strlen(text);
		core::AppendCopyField(t.buf, text, len);
		if (t.tracked && !t.keys_overflow && cfg->columns[c].is_key) {
			StageKeyField(t, text, len, first_key); /* incremental reconcile */
			first_key = false;
		}
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
		Blame(t);
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
	/* One command per target, so that a failure names its table. */
	for (auto &t : targets) {
		if (t.stream != s || t.rows == 0)
			continue;
		const char *apply_sql = pg_string([&] {
			std::string q;
			if (t.has_delete)
				q += t.delete_sql + "; ";
			q += t.upsert_sql;
			if (clear_stage)
				q += "; TRUNCATE pg_temp." + core::QuoteIdent(t.shape.stage);
			return q;
		});
		Blame(t);
		remote::Exec(s->conn, apply_sql);
	}
	BlameNone();
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
 * (kept in redo_buf) through the staging table and the upsert instead,
 * inside the open transaction (in_xact) or a new one; then the progress row
 * and COMMIT, unless it was a chunk (the transaction goes on: the staging
 * table is emptied). */
static void
RedoWithUpsert(Stream *s, bool in_xact)
{
	Target &t = targets[in_flight.fast_target];
	const char *begin = BeginSql(s);
	const char *origin = Origin(s);
	const char *copy_sql = pg_string([&] {
		return std::string(in_xact ? "" : begin) +
		       (t.stage_gen != s->conn_gen ? t.stage_create + "; " : std::string()) + t.copy_sql;
	});
	const char *apply_sql = pg_string([&] {
		if (in_flight.chunk)
			return t.upsert_sql + "; TRUNCATE pg_temp." + core::QuoteIdent(t.shape.stage);
		return t.upsert_sql + "; " +
		       core::ProgressUpdateSql(origin, in_flight.prev, in_flight.cur, in_flight.lsn, in_flight.txid,
		                               in_flight.seq) +
		       "; COMMIT";
	});
	t.stage_gen = s->conn_gen;
	Blame(t);
	remote::BeginCopy(s->conn, copy_sql);
	remote::PutCopy(s->conn, redo_buf.data(), redo_buf.size());
	remote::EndCopy(s->conn);
	remote::Exec(s->conn, apply_sql);
	BlameNone();
}

/* Wait for the batch in flight to commit on the modern side; then advance
 * the stream's progress.  Returns the changes it applied. */
int64
FinishInFlight()
{
	if (!in_flight.active)
		return 0;
	in_flight.active = false; /* if the wait fails, the round fails: all is re-read */
	Stream *s = in_flight.stream;
	/* A direct COPY's errors are its table's; a COMMIT's are the stream's. */
	if (in_flight.fast_target >= 0)
		Blame(targets[in_flight.fast_target]);
	else
		BlameNone();
	if (in_flight.fast_target < 0)
		remote::WaitCommand(s->conn, "COMMIT");
	else if (!remote::WaitCommandUnlessDuplicate(s->conn, in_flight.chunk ? "COPY ..." : "COPY ...; COMMIT")) {
		/* A key already existed on the modern side (e.g. backfilled): the
		 * server skipped the rest of the string; apply the batch again
		 * through staging and the upsert: in the open transaction, back
		 * at the savepoint before the COPY, or in a new transaction. */
		if (in_flight.in_xact)
			remote::Exec(s->conn, "ROLLBACK TO SAVEPOINT dw_fast; RELEASE SAVEPOINT dw_fast");
		else
			remote::Exec(s->conn, "ROLLBACK");
		RedoWithUpsert(s, in_flight.in_xact);
	}
	BlameNone();
	if (in_flight.chunk)
		return 0; /* applied, not committed: nothing to count yet */
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
		slot->batches++;
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

bool
RemoteXactOpen()
{
	return open_xact.active;
}

/* Send target `fast`'s staged inserts as a COPY straight into the target,
 * under a savepoint, between `head` and `tail` (SQL around it in the same
 * string), without waiting for the COPY to end. */
static void
SendDirectCopy(Stream *s, int fast, const char *head, const char *tail)
{
	Target &t = targets[fast];
	Blame(t);
	const char *sql =
	    pg_string([&] { return std::string(head) + "SAVEPOINT dw_fast; " + t.direct_copy_sql + tail; });
	remote::BeginCopy(s->conn, sql);
	pg_entry([&] { core::StripLeadingFields(t.buf, 2, direct_buf); });
	remote::PutCopy(s->conn, direct_buf.data(), direct_buf.size());
	remote::SendCopyEnd(s->conn);
	pg_entry([&] {
		redo_buf.swap(t.buf); /* kept until the COPY is confirmed */
		t.buf.clear();
	});
	t.rows = 0;
	t.only_inserts = false;
}

/* Send the transaction's progress row and COMMIT, left in flight: the
 * staged rows (direct COPY when they are one table's inserts and nothing
 * was sent before in this transaction), then progress, then COMMIT. */
static void
SendCommit(Stream *s, bool in_xact, const char *prev, const char *cur, const outbox::Change &last, uint64 rows)
{
	char last_lsn[32], last_txid[32];
	snprintf(last_lsn, sizeof(last_lsn), "%X/%X", static_cast<uint32>(last.lsn >> 32), static_cast<uint32>(last.lsn));
	snprintf(last_txid, sizeof(last_txid), UINT64_FORMAT, last.txid);
	int last_seq = last.seq;

	const char *begin = BeginSql(s);
	const char *origin = Origin(s);
	int fast = SingleInsertOnlyTarget(s);
	if (fast >= 0) {
		/*
		 * One table, inserts only: the rest of the transaction in one
		 * string, COPY straight into the target, then progress and COMMIT.
		 * We only wait for the COPY to start; the modern side loads the
		 * rows and commits while we read and encode the next batch.
		 */
		const char *tail = pg_string([&] {
			return "; RELEASE SAVEPOINT dw_fast; " +
			       core::ProgressUpdateSql(origin, prev, cur, last_lsn, last_txid, last_seq) + "; COMMIT";
		});
		SendDirectCopy(s, fast, in_xact ? "" : begin, tail);
	} else {
		FlushTargets(s, &in_xact, false);
		const char *commit_sql = pg_string([&] {
			return std::string(in_xact ? "" : begin) +
			       core::ProgressUpdateSql(origin, prev, cur, last_lsn, last_txid, last_seq) + "; COMMIT";
		});
		remote::SendCommand(s->conn, commit_sql);
	}
	in_flight.fast_target = fast;
	in_flight.chunk = false;
	in_flight.in_xact = in_xact;
	/* Progress advances when the COMMIT is confirmed (FinishInFlight). */
	in_flight.active = true;
	in_flight.stream = s;
	in_flight.prev = prev;
	in_flight.cur = cur;
	strlcpy(in_flight.lsn, last_lsn, sizeof(in_flight.lsn));
	strlcpy(in_flight.txid, last_txid, sizeof(in_flight.txid));
	in_flight.seq = last_seq;
	in_flight.rows = rows + open_xact.rows;
	for (size_t i = 0; i < targets.size(); i++) {
		in_flight_counts[i] = batch_counts[i];
		batch_counts[i] = 0;
	}
	open_xact = OpenXact{};
	BlameNone(); /* what follows (reading the next batch) is the stream's */
}

/* Apply one fetched batch; see apply.hpp. */
int64
ApplyBatch(Stream *s, const outbox::Change *changes, uint64 n, const char *prev, const char *cur, bool commit)
{
	int64 *counts = batch_counts;
	int64 confirmed = 0;
	if (batch_context == nullptr)
		batch_context = AllocSetContextCreate(TopMemoryContext, "pg_dualwrite batch", ALLOCSET_DEFAULT_SIZES);
	Assert(!open_xact.active || open_xact.stream == s);
	MemoryContext old = MemoryContextSwitchTo(batch_context);
	/* Chunks sent before in this remote transaction: it goes on. */
	bool in_xact = open_xact.active;
	int64 ord = 0;
	for (uint64 i = 0; i < n; i++) {
		const outbox::Change &c = changes[i];

		Source *src = FindSource(c.relid);
		if (src == nullptr)
			continue; /* table disabled since: its changes are discarded */
		if (targets[src->target].cfg->problem != nullptr)
			RaiseTableProblem(targets[src->target]);
		if (c.op == outbox::kTruncate) {
			/* Everything staged before the TRUNCATE goes first. */
			confirmed += FinishInFlight();
			FlushTargets(s, &in_xact, true);
			/* The tables one statement truncated (adjacent, same txid and
			 * lsn: outbox.hpp) go in one TRUNCATE, so that tables which
			 * reference each other on the modern side can be truncated. */
			std::vector<int> &group = truncate_group;
			pg_entry([&] { group.clear(); });
			uint64 j = i;
			for (; j < n && changes[j].op == outbox::kTruncate && changes[j].txid == c.txid &&
			       changes[j].lsn == c.lsn;
			     j++) {
				Source *gs = FindSource(changes[j].relid);
				if (gs == nullptr)
					continue;
				counts[gs->target]++;
				if (j == i)
					Blame(targets[gs->target]);
				else
					BlameAlso(targets[gs->target]);
				pg_entry([&] {
					if (std::find(group.begin(), group.end(), gs->target) == group.end())
						group.push_back(gs->target);
				});
			}
			i = j - 1;
			const char *begin = BeginSql(s);
			const char *sql = pg_string([&] {
				std::vector<const core::TargetShape *> shapes;
				for (int g : group)
					shapes.push_back(&targets[g].shape);
				return std::string(in_xact ? "" : begin) + core::ApplyTruncateSql(shapes);
			});
			in_xact = true;
			remote::Exec(s->conn, sql);
			BlameNone();
			continue;
		}
		if (c.data != nullptr) {
			Blame(targets[src->target]); /* an image it cannot decode */
			StageRow(src, ++ord, c.op, reinterpret_cast<bytea *>(c.data), c.layout);
			BlameNone();
		}
		counts[src->target]++;
	}

	confirmed += FinishInFlight();
	if (commit) {
		SendCommit(s, in_xact, prev, cur, changes[n - 1], n);
	} else {
		/* A chunk: applied in the remote transaction, which stays open.
		 * One table's inserts go as a direct COPY left in flight; others
		 * now (the staging tables are emptied for the next chunk). */
		int fast = SingleInsertOnlyTarget(s);
		if (fast >= 0) {
			SendDirectCopy(s, fast, in_xact ? "" : BeginSql(s), "; RELEASE SAVEPOINT dw_fast");
			in_flight = InFlight{};
			in_flight.active = true;
			in_flight.stream = s;
			in_flight.fast_target = fast;
			in_flight.chunk = true;
			in_flight.in_xact = true; /* a duplicate rolls back to the savepoint */
			in_xact = true;
		} else {
			FlushTargets(s, &in_xact, true);
		}
		open_xact.active = in_xact;
		open_xact.stream = s;
		open_xact.rows += n;
		BlameNone();
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(batch_context);
	return confirmed;
}

int64
CommitOpenXact(Stream *s, const char *prev, const char *cur, const outbox::Change &last)
{
	int64 confirmed = FinishInFlight();
	SendCommit(s, open_xact.active, prev, cur, last, 0);
	return confirmed;
}

} // namespace pgdw::worker

/*-------------------------------------------------------------------------
 * ship.cpp
 *    Shipping one transaction's changes of one target server (step 2 of
 *    sync.hpp): read each noted outbox row back, turn its image into text
 *    parameters and send BEGIN, one prepared statement per change and
 *    PREPARE TRANSACTION in one pipeline.
 *
 * Why per-change prepared statements in a pipeline, and not the worker's
 * COPY into a staging table plus one set-based apply: PREPARE TRANSACTION
 * refuses a transaction that touched a temporary table, and a permanent
 * staging table would serialise every writer on it; COPY also cannot run
 * inside a pipeline, so it would add round trips.  A pipeline costs one
 * round trip for any number of rows (README "Sync mode" has the figures).
 *
 * Frames hold only trivially destructible locals (errors longjmp).
 *
 * IDENTIFICATION  src/sync/ship.cpp
 *-------------------------------------------------------------------------
 */
#include "sync/internal.hpp"

#include "outbox/image.hpp"
#include "remote/connection.hpp"

extern "C" {
#include "access/detoast.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/xlog.h"
#include "storage/bufmgr.h"
#include "utils/pg_lsn.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace pgdw::sync {

/* One captured relation's decoding state, for this call. */
struct Source {
	Oid relid;
	Relation rel;
	Table *table;
	AttrNumber *attnums; /* per sent column */
	FmgrInfo *out;
	Datum *values;
	bool *nulls;
};

static Source *
SourceFor(Source *sources, int *nsources, Oid relid, Oid root)
{
	for (int i = 0; i < *nsources; i++)
		if (sources[i].relid == relid)
			return &sources[i];
	Source *s = &sources[(*nsources)++];
	s->relid = relid;
	s->table = TableFor(root);
	if (s->table == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" stopped being a sync table during the transaction", get_rel_name(root))));
	if (s->table->cfg->problem != nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" cannot be delivered: %s", get_rel_name(root), s->table->cfg->problem)));
	s->rel = table_open(relid, AccessShareLock);
	const config::TableConfig *cfg = s->table->cfg;
	TupleDesc desc = RelationGetDescr(s->rel);
	s->attnums = static_cast<AttrNumber *>(palloc(sizeof(AttrNumber) * (cfg->ncolumns + 1)));
	s->out = static_cast<FmgrInfo *>(palloc(sizeof(FmgrInfo) * (cfg->ncolumns + 1)));
	s->values = static_cast<Datum *>(palloc(sizeof(Datum) * (desc->natts + 1)));
	s->nulls = static_cast<bool *>(palloc(sizeof(bool) * (desc->natts + 1)));
	for (int c = 0; c < cfg->ncolumns; c++) {
		/* A partition may order its columns differently: by name. */
		AttrNumber att = relid == root ? cfg->columns[c].attnum : get_attnum(relid, cfg->columns[c].legacy_name);
		if (att == InvalidAttrNumber)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			                errmsg("column \"%s\" of table %s is missing in partition %s", cfg->columns[c].legacy_name,
			                       cfg->target_display, get_rel_name(relid))));
		s->attnums[c] = att;
		Oid outfunc;
		bool varlena;
		getTypeOutputInfo(TupleDescAttr(desc, att - 1)->atttypid, &outfunc, &varlena);
		fmgr_info(outfunc, &s->out[c]);
	}
	return s;
}

/* The outbox row of a noted change, pinned in *buf; false if it is not
 * visible to this transaction any more (a rolled-back subtransaction's) or
 * not the noted one (its capture_seq differs). */
static bool
FetchNoted(Relation *outboxes, const Noted &noted, LOCKMODE lock, HeapTupleData *tup, Buffer *buf)
{
	uint32 gen = noted.pos.gen;
	if (outboxes[gen] == nullptr)
		outboxes[gen] = table_open(outbox::GenerationRelid(gen), lock);
	tup->t_self = noted.pos.tid;
	/* SnapshotSelf: our own rows, minus those of rolled-back subtransactions. */
	if (!heap_fetch(outboxes[gen], SnapshotSelf, tup, buf, false))
		return false;
	bool isnull;
	if (DatumGetInt32(heap_getattr(tup, outbox::kSeq, RelationGetDescr(outboxes[gen]), &isnull)) != noted.pos.seq) {
		ReleaseBuffer(*buf);
		return false;
	}
	return true;
}

static void
CloseOutboxes(Relation *outboxes)
{
	for (int g = 0; g < outbox::kGenerations; g++)
		if (outboxes[g] != nullptr)
			table_close(outboxes[g], NoLock);
}

/* Prepare the table's statements on this connection once (pipelined). */
static void
EnsurePrepared(Session *session, Table *t)
{
	if (IsPrepared(session, t->upsert_name))
		return;
	remote::PipelinePrepare(session->conn, t->upsert_name, t->upsert_sql, t->cfg->ncolumns);
	remote::PipelinePrepare(session->conn, t->delete_name, t->delete_sql, t->nkeys);
	/* Noted now: if the pipeline fails, the session is dropped anyway. */
	NotePrepared(session, t->upsert_name);
}

/* Send one change: its image's sent columns as text parameters. */
static void
SendChange(Session *session, Source *src, char op, bytea *image, uint32 layout)
{
	const config::TableConfig *cfg = src->table->cfg;
	outbox::DeformImage(src->relid, RelationGetDescr(src->rel), image, layout, src->values, src->nulls);
	const char **params = static_cast<const char **>(palloc(sizeof(char *) * (cfg->ncolumns + 1)));
	int n = 0;
	for (int c = 0; c < cfg->ncolumns; c++) {
		if (op == outbox::kDelete && !cfg->columns[c].is_key)
			continue; /* a delete sends its key only, in column order = key order */
		int att = src->attnums[c] - 1;
		params[n++] = src->nulls[att] ? nullptr : OutputFunctionCall(&src->out[c], src->values[att]);
	}
	if (op == outbox::kDelete)
		remote::PipelineExecPrepared(session->conn, src->table->delete_name, n, params);
	else
		remote::PipelineExecPrepared(session->conn, src->table->upsert_name, n, params);
}

void
ShipAndPrepare(Session *session, const Noted *noted, int n, const char *server, const char *gid)
{
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_dualwrite sync row", ALLOCSET_DEFAULT_SIZES);
	Source *sources = static_cast<Source *>(palloc0(sizeof(Source) * (n + 1)));
	int nsources = 0;
	/* What one TRUNCATE statement truncated goes as one TRUNCATE (tables
	 * that reference each other on the modern side only go together). */
	StringInfoData truncate;
	initStringInfo(&truncate);
	XLogRecPtr truncate_lsn = InvalidXLogRecPtr;

	remote::PipelineBegin(session->conn);
	remote::PipelineExec(session->conn, "BEGIN");
	Relation outboxes[outbox::kGenerations] = {nullptr};
	for (int i = 0; i < n; i++) {
		Table *t = TableFor(noted[i].root);
		if (t == nullptr || strcmp(t->cfg->target_server, server) != 0)
			continue;
		HeapTupleData tup;
		Buffer buf;
		if (!FetchNoted(outboxes, noted[i], AccessShareLock, &tup, &buf))
			continue;
		MemoryContext old = MemoryContextSwitchTo(row_cxt);
		TupleDesc odesc = RelationGetDescr(outboxes[noted[i].pos.gen]);
		bool isnull;
		Oid relid = DatumGetObjectId(heap_getattr(&tup, outbox::kRelid, odesc, &isnull));
		char op = DatumGetChar(heap_getattr(&tup, outbox::kOp, odesc, &isnull));
		uint32 layout = static_cast<uint32>(DatumGetInt32(heap_getattr(&tup, outbox::kLayout, odesc, &isnull)));
		XLogRecPtr lsn = DatumGetLSN(heap_getattr(&tup, outbox::kLsn, odesc, &isnull));
		Datum data = heap_getattr(&tup, outbox::kData, odesc, &isnull);
		/* A copy: the buffer is released next. */
		bytea *image = isnull ? nullptr : reinterpret_cast<bytea *>(pg_detoast_datum_copy(reinterpret_cast<varlena *>(DatumGetPointer(data))));
		ReleaseBuffer(buf);

		if (truncate.len > 0 && (op != outbox::kTruncate || lsn != truncate_lsn)) {
			remote::PipelineExec(session->conn, truncate.data);
			resetStringInfo(&truncate);
		}
		MemoryContextSwitchTo(old);
		if (op == outbox::kTruncate) {
			appendStringInfoString(&truncate, truncate.len == 0 ? "TRUNCATE " : ", ");
			appendStringInfoString(&truncate, t->truncate_target);
			truncate_lsn = lsn;
		} else {
			Source *src = SourceFor(sources, &nsources, relid, noted[i].root);
			EnsurePrepared(session, src->table);
			old = MemoryContextSwitchTo(row_cxt);
			SendChange(session, src, op, image, layout);
			MemoryContextSwitchTo(old);
		}
		MemoryContextReset(row_cxt);
	}
	if (truncate.len > 0)
		remote::PipelineExec(session->conn, truncate.data);
	/*
	 * The gid names our transaction id.  Before the modern side can prepare
	 * under it, that id must be on disk here: otherwise a legacy crash could
	 * lose every record of it, recovery would hand the same id to a new
	 * transaction, and the resolver would settle the prepared transaction by
	 * that stranger's fate (test/t/019 section 1b).  The flush overlaps with
	 * the modern side applying the rows sent so far.
	 */
	remote::PipelineSend(session->conn);
	XLogFlush(XactLastRecEnd);
	char prepare[256];
	snprintf(prepare, sizeof(prepare), "PREPARE TRANSACTION '%s'", gid); /* digits and '_' only */
	remote::PipelineExec(session->conn, prepare);

	int failed_at;
	PGresult *failed = remote::PipelineEnd(session->conn, &failed_at);
	if (failed != nullptr)
		remote::RaiseResult(session->conn, failed, failed_at == 0 ? "BEGIN" : "sync changes");
	CloseOutboxes(outboxes);
	for (int i = 0; i < nsources; i++)
		table_close(sources[i].rel, NoLock);
	MemoryContextDelete(row_cxt);
}

void
DeleteShipped(const Noted *noted, int n)
{
	/* Rows inserted by the current command are invisible to its own delete. */
	CommandCounterIncrement();
	Relation outboxes[outbox::kGenerations] = {nullptr};
	for (int i = 0; i < n; i++) {
		HeapTupleData tup;
		Buffer buf;
		if (!FetchNoted(outboxes, noted[i], RowExclusiveLock, &tup, &buf))
			continue;
		ReleaseBuffer(buf);
		simple_heap_delete(outboxes[noted[i].pos.gen], &tup.t_self);
	}
	CloseOutboxes(outboxes);
}

} // namespace pgdw::sync

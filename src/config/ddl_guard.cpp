/*-------------------------------------------------------------------------
 * ddl_guard.cpp
 *    The event triggers that keep DDL from silently breaking the delivery
 *    of flagged tables:
 *
 *      dualwrite._on_sql_drop()           sql_drop
 *      dualwrite._on_ddl_command_start()  ddl_command_start of DROP INDEX
 *      dualwrite._on_ddl_command_end()    ddl_command_end of ALTER TABLE,
 *                                         ALTER TRIGGER, CREATE TABLE
 *      dualwrite._on_table_rewrite()      table_rewrite
 *
 * What they refuse:
 *  - a change of the replica-identity key of a flagged table or of one of
 *    its partitions (REPLICA IDENTITY, dropping or replacing the primary
 *    key or the identity index, attaching or creating a partition keyed
 *    otherwise): changes are delivered by the key dualwrite.enable()
 *    recorded in dualwrite.tables.key_attnums, and capture tells a key
 *    update from an update by the key of the partition a row is in.
 *    Refused for everybody: the way to change a key is disable, change,
 *    enable.
 *  - capture triggers disabled, set to ENABLE REPLICA or ENABLE ALWAYS,
 *    renamed or dropped (SPEC guarantee 8: a table's owner cannot switch
 *    its capture off).  Refused for everybody but superusers, who get a
 *    WARNING (and dualwrite.status.capture shows the state).
 *  - a table rewrite while changes of the table are undelivered: queued
 *    row images are decoded with the table's current column layout.
 *
 * They run for every role's DDL, so they are SECURITY DEFINER (an ordinary
 * role cannot read the dualwrite schema) with a pinned search_path, and
 * they do nothing a caller could abuse: read the catalog, delete the
 * catalog rows of tables the command drops, raise.  Commands that touch no
 * flagged table cost one catalog query at most, and most cost none: the
 * parse tree tells which commands can matter.
 *
 * Snapshots: the DDL command holds its lock, so every writer of the table
 * has finished, but the caller's snapshot may be older than that (a
 * REPEATABLE READ transaction that waited for the lock): what the guards
 * read from dualwrite.* they read under a snapshot taken now.
 *
 * Only commands that can take a key away are checked, and only the key of
 * the relations they can have changed (the altered table, its partitions
 * unless ONLY and nothing was attached, a created partition); the capture
 * triggers only after commands that can change them: a pg_restore, which
 * adds keys and triggers table by table, is never refused for the state of
 * a table it has not reached yet.
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/config/ddl_guard.cpp
 *-------------------------------------------------------------------------
 */
#include "config/ddl_guard.hpp"

#include "boundary/boundary.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "commands/event_trigger.h"
#include "nodes/bitmapset.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/syscache.h"
}

namespace pgdw::config::ddl {

/* "table public.t" or "partition public.p1". */
static const char *
Describe(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return psprintf("relation %u", relid);
	Form_pg_class form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
	const char *out = psprintf("%s %s", form->relispartition ? "partition" : "table",
	                           quote_qualified_identifier(get_namespace_name(form->relnamespace),
	                                                      NameStr(form->relname)));
	ReleaseSysCache(tup);
	return out;
}

static const char *
QualifiedName(Oid relid)
{
	char *name = get_rel_name(relid);
	if (name == nullptr)
		return psprintf("%u", relid);
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), name);
}

/* The columns of a relation's current replica-identity key, by name. */
static List *
CurrentKeyNames(Relation rel)
{
	Bitmapset *key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	List *names = NIL;
	int i = -1;
	while ((i = bms_next_member(key, i)) >= 0) {
		AttrNumber attnum = i + FirstLowInvalidHeapAttributeNumber;
		names = lappend(names, pstrdup(NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname)));
	}
	bms_free(key);
	return names;
}

/* Marks a recorded key column that was dropped (never a column's name). */
static const char kDroppedMark[] = "\x01";

/* The recorded key's column names (a dropped column never matches). */
static List *
RecordedKeyNames(Oid root, const int16 *key, int nkey)
{
	List *names = NIL;
	for (int i = 0; i < nkey; i++) {
		HeapTuple tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(root), Int16GetDatum(key[i]));
		Form_pg_attribute att = HeapTupleIsValid(tup) ? reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tup)) : nullptr;
		names = lappend(names, att != nullptr && !att->attisdropped ? pstrdup(NameStr(att->attname))
		                                                            : psprintf("%sdropped column %d", kDroppedMark, key[i]));
		if (att != nullptr)
			ReleaseSysCache(tup);
	}
	return names;
}

static bool
SameNames(List *a, List *b)
{
	if (list_length(a) != list_length(b))
		return false;
	ListCell *la;
	foreach (la, a) {
		bool found = false;
		ListCell *lb;
		foreach (lb, b)
			found = found || strcmp(static_cast<char *>(lfirst(la)), static_cast<char *>(lfirst(lb))) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* "(a, b)", or "(none)". */
static const char *
KeyDisplay(List *names)
{
	if (names == NIL)
		return "(none)";
	StringInfoData buf;
	initStringInfo(&buf);
	ListCell *lc;
	foreach (lc, names) {
		const char *name = static_cast<char *>(lfirst(lc));
		bool dropped = name[0] == kDroppedMark[0];
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "(", dropped ? name + 1 : quote_identifier(name));
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

static const char *
IdentityKind(Relation rel, bool has_key)
{
	switch (rel->rd_rel->relreplident) {
	case REPLICA_IDENTITY_FULL:
		return "REPLICA IDENTITY FULL, which has no key";
	case REPLICA_IDENTITY_NOTHING:
		return "REPLICA IDENTITY NOTHING";
	case REPLICA_IDENTITY_INDEX:
		return has_key ? "REPLICA IDENTITY USING INDEX" : "REPLICA IDENTITY USING INDEX, and the index is gone";
	default:
		return has_key ? "REPLICA IDENTITY DEFAULT: the primary key" : "REPLICA IDENTITY DEFAULT, without a primary key";
	}
}

const char *
IdentityKeyProblem(Oid root, const int16 *key, int nkey, List *relids)
{
	List *recorded = RecordedKeyNames(root, key, nkey);
	ListCell *lc;
	foreach (lc, relids) {
		/* The command (or enable) holds a lock on each of these already. */
		Relation rel = try_relation_open(lfirst_oid(lc), AccessShareLock);
		if (rel == nullptr)
			continue;
		List *current = CurrentKeyNames(rel);
		const char *problem = nullptr;
		if (!SameNames(current, recorded))
			problem = psprintf("%s is keyed by %s (%s), but changes of table %s are delivered by %s.",
			                   Describe(RelationGetRelid(rel)), KeyDisplay(current), IdentityKind(rel, current != NIL),
			                   QualifiedName(root), KeyDisplay(recorded));
		relation_close(rel, NoLock);
		if (problem != nullptr) {
			char *out = pstrdup(problem);
			out[0] = static_cast<char>(pg_toupper(static_cast<unsigned char>(out[0])));
			return out;
		}
	}
	return nullptr;
}

void
CheckPartitionKeys(Relation rel, const TableConfig *cfg, LOCKMODE lockmode)
{
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return;
	int16 *key = static_cast<int16 *>(palloc(sizeof(int16) * (cfg->ncolumns + 1)));
	int nkey = 0;
	for (int i = 0; i < cfg->ncolumns; i++)
		if (cfg->columns[i].is_key)
			key[nkey++] = cfg->columns[i].attnum;
	List *relids = find_all_inheritors(RelationGetRelid(rel), lockmode, nullptr);
	const char *problem = IdentityKeyProblem(RelationGetRelid(rel), key, nkey, relids);
	if (problem != nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("partitions of table \"%s\" are not all keyed like the table",
		                       RelationGetRelationName(rel)),
		                errdetail("%s", problem),
		                errhint("Give every partition the key of the partitioned table (REPLICA IDENTITY DEFAULT "
		                        "with the primary key, or REPLICA IDENTITY USING INDEX on its partition of the "
		                        "table's identity index).")));
}

/* ------------------------------------------------------------------ */

/* The guards' statements, prepared once per backend (DDL on unrelated
 * tables then costs an execution, not a parse and plan). */
enum Query {
	kCaptureProblem,
	kDdlCommands,
	kIdentityIndexes,
	kUnflagDropped,
	kDroppedOfFlagged,
	kDroppedIndexes,
	kRewriteFlagged,
	kRewritePending,
	kNumQueries
};
static SPIPlanPtr plans[kNumQueries];

/* Run a query under a snapshot taken now (see the file header). */
static uint64
RunLatest(Query q, const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	if (plans[q] == nullptr) {
		SPIPlanPtr plan = SPI_prepare(sql, nargs, types);
		if (plan == nullptr)
			elog(ERROR, "SPI_prepare failed (%d): %s", SPI_result, sql);
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed: %s", sql);
		plans[q] = plan;
	}
	int rc = SPI_execute_snapshot(plans[q], values, nullptr, GetLatestSnapshot(), InvalidSnapshot, false, false, 0);
	if (rc != expected)
		elog(ERROR, "SPI_execute_snapshot failed (%d): %s", rc, sql);
	return SPI_processed;
}

/* One flagged table a command touched. */
struct Touched {
	Oid root;       /* the flagged table */
	int16 *key;     /* recorded key_attnums; nkey < 0: none recorded */
	int nkey;
	Oid relid;      /* the relation the command named (root or partition) */
	char *object;   /* sql_drop: the dropped object's type */
	char *name;     /* sql_drop: the dropped trigger's name */
};

/* Copy the rows of a query returning (root oid, key int2[], relid oid[, text, text]). */
static Touched *
CollectTouched(uint64 n)
{
	Touched *out = static_cast<Touched *>(palloc0(sizeof(Touched) * (n + 1)));
	for (uint64 i = 0; i < n; i++) {
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;
		out[i].root = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		Datum key = SPI_getbinval(tup, desc, 2, &isnull);
		out[i].nkey = -1;
		if (!isnull) {
			Datum *elems;
			bool *nulls;
			int nelems;
			deconstruct_array_builtin(DatumGetArrayTypeP(key), INT2OID, &elems, &nulls, &nelems);
			out[i].key = static_cast<int16 *>(palloc(sizeof(int16) * (nelems + 1)));
			for (int k = 0; k < nelems; k++)
				out[i].key[k] = DatumGetInt16(elems[k]);
			out[i].nkey = nelems;
		}
		out[i].relid = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		if (desc->natts >= 5) {
			out[i].object = SPI_getvalue(tup, desc, 4);
			out[i].name = SPI_getvalue(tup, desc, 5);
		}
	}
	return out;
}

[[noreturn]] static void
RaiseKeyChange(Oid root, const char *detail)
{
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
	                errmsg("cannot change the key of dual-written table %s", QualifiedName(root)),
	                errdetail("%s", detail),
	                errhint("To change the key of a flagged table, call dualwrite.disable(), change the key on both "
	                        "databases, then call dualwrite.enable() again.")));
	pg_unreachable();
}

/* Refuse a capture change, or warn if a superuser made it. */
static void
RaiseCaptureChange(Oid root, const char *problem)
{
	char *detail = psprintf("%s.", problem);
	detail[0] = static_cast<char>(pg_toupper(static_cast<unsigned char>(detail[0])));
	if (superuser_arg(GetOuterUserId()))
		ereport(WARNING, (errmsg("capture of dual-written table %s is no longer complete", QualifiedName(root)),
		                  errdetail("%s", detail),
		                  errhint("Until the trigger is as dualwrite.enable() created it, changes of the table are not "
		                          "captured as they should be; dualwrite.status shows it in column capture.  To stop "
		                          "dual-writing the table, call dualwrite.disable().")));
	else
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("cannot change the capture triggers of dual-written table %s", QualifiedName(root)),
		                errdetail("%s", detail),
		                errhint("Only a superuser can.  To stop dual-writing the table, a superuser calls "
		                        "dualwrite.disable().")));
}

/* The capture triggers of `root` as the DDL guard checks them, or NULL. */
static const char *
CaptureProblem(Oid root)
{
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(root)};
	RunLatest(kCaptureProblem, "SELECT dualwrite._capture_problem($1::pg_catalog.regclass, false)", 1, types, values,
	          SPI_OK_SELECT);
	return SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : nullptr;
}

static EventTriggerData *
CheckEventTrigger(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "%s: not fired by event trigger manager", name);
	return reinterpret_cast<EventTriggerData *>(fcinfo->context);
}

/* Join clause: the flagged tables a relation is, or is a partition of. */
#define FLAGGED_OF(rel)                                                                                    \
	"dualwrite.tables t ON t.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) " rel                              \
	" OR t.tbl::pg_catalog.oid IN (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(" rel ") a)"

static Datum
OnDdlCommandEnd(FunctionCallInfo fcinfo)
{
	EventTriggerData *trig = CheckEventTrigger(fcinfo, "dualwrite._on_ddl_command_end");
	Node *tree = trig->parsetree;
	bool check_key = false, check_capture = false, recurse = false, attaching = false;

	if (IsA(tree, AlterTableStmt)) {
		AlterTableStmt *stmt = castNode(AlterTableStmt, tree);
		recurse = stmt->relation != nullptr && stmt->relation->inh;
		ListCell *lc;
		foreach (lc, stmt->cmds) {
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
			switch (cmd->subtype) {
			case AT_EnableTrig:
			case AT_EnableAlwaysTrig:
			case AT_EnableReplicaTrig:
			case AT_DisableTrig:
			case AT_EnableTrigAll:
			case AT_DisableTrigAll:
			case AT_EnableTrigUser:
			case AT_DisableTrigUser:
				check_capture = true;
				break;
			/* What can take a key away (adding a key never does: pg_restore
			 * adds the primary key of a partitioned table, ONLY, before its
			 * partitions' keys are attached, and must not be refused). */
			case AT_ReplicaIdentity:
			case AT_DropConstraint:
			case AT_DropColumn:
			case AT_AlterColumnType:
				check_key = true;
				break;
			case AT_AttachPartition:
				/* The new partition is in the subtree, ONLY or not (its name
				 * cannot be looked up here: the caller's search_path is not ours). */
				check_key = true;
				recurse = true;
				attaching = true;
				break;
			default:
				break;
			}
		}
	} else if (IsA(tree, RenameStmt) && castNode(RenameStmt, tree)->renameType == OBJECT_TRIGGER)
		check_capture = true;
	else if (IsA(tree, CreateStmt) && castNode(CreateStmt, tree)->partbound != nullptr)
		check_key = true; /* CREATE TABLE ... PARTITION OF */
	if (!check_key && !check_capture)
		return PointerGetDatum(nullptr);

	SPI_connect();
	uint64 n = RunLatest(kDdlCommands, "WITH c AS (SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands()), "
	                     "r AS (SELECT c.objid AS relid FROM c "
	                     "      WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
	                     "      UNION SELECT tg.tgrelid FROM c JOIN pg_catalog.pg_trigger tg "
	                     "      ON tg.oid OPERATOR(pg_catalog.=) c.objid "
	                     "      WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass) "
	                     "SELECT DISTINCT t.tbl::pg_catalog.oid, t.key_attnums, r.relid "
	                     "FROM r JOIN " FLAGGED_OF("r.relid"),
	                     0, nullptr, nullptr, SPI_OK_SELECT);
	Touched *touched = CollectTouched(n);
	List *capture_checked = NIL;
	for (uint64 i = 0; i < n; i++) {
		const Touched &t = touched[i];
		if (check_key && t.nkey >= 0) {
			List *relids = recurse ? find_all_inheritors(t.relid, AccessShareLock, nullptr) : list_make1_oid(t.relid);
			const char *problem = IdentityKeyProblem(t.root, t.key, t.nkey, relids);
			if (problem != nullptr)
				RaiseKeyChange(t.root, problem);
		}
		/* New partitions capture their own TRUNCATE (statement triggers
		 * are not cloned to partitions). */
		if (IsA(tree, CreateStmt) && t.relid != t.root)
			EnsureTruncateTriggers(t.relid);
		if (attaching)
			EnsureTruncateTriggers(t.relid);
		if (check_capture && !list_member_oid(capture_checked, t.root)) {
			capture_checked = lappend_oid(capture_checked, t.root);
			const char *problem = CaptureProblem(t.root);
			if (problem != nullptr)
				RaiseCaptureChange(t.root, problem);
		}
	}
	SPI_finish();
	return PointerGetDatum(nullptr);
}

/*
 * DROP INDEX: at sql_drop, nothing tells which table a dropped index was
 * on, so ddl_command_start notes the replica-identity indexes of flagged
 * tables and their partitions first, for the same command's sql_drop (in
 * TopTransactionContext, valid for that statement of that transaction).
 */
struct IdentityIndex {
	Oid index;
	Oid root;  /* the flagged table */
	Oid relid; /* the table or partition the index identifies */
	int16 *key;
	int nkey;
	char *relname; /* the index's name and schema */
	char *nspname;
};
static IdentityIndex *noted = nullptr;
static int nnoted = 0;
static Node *noted_for = nullptr;
static LocalTransactionId noted_in = InvalidLocalTransactionId;

static Datum
OnDdlCommandStart(FunctionCallInfo fcinfo)
{
	EventTriggerData *trig = CheckEventTrigger(fcinfo, "dualwrite._on_ddl_command_start");
	if (!IsA(trig->parsetree, DropStmt) || castNode(DropStmt, trig->parsetree)->removeType != OBJECT_INDEX)
		return PointerGetDatum(nullptr);
	DropStmt *stmt = castNode(DropStmt, trig->parsetree);
	nnoted = 0;
	noted_for = nullptr;
	SPI_connect();
	uint64 n = RunLatest(kIdentityIndexes,
	                     "SELECT t.tbl::pg_catalog.oid, t.key_attnums, c.oid, x.indexrelid, ic.relname, n.nspname "
	                     "FROM dualwrite.tables t "
	                     "CROSS JOIN LATERAL (SELECT t.tbl::pg_catalog.oid AS relid UNION SELECT pt.relid "
	                     "                    FROM pg_catalog.pg_partition_tree(t.tbl) pt) r "
	                     "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relid "
	                     "JOIN pg_catalog.pg_index x ON x.indrelid OPERATOR(pg_catalog.=) c.oid AND x.indisreplident "
	                     "JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) x.indexrelid "
	                     "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) ic.relnamespace "
	                     "WHERE c.relreplident OPERATOR(pg_catalog.=) 'i' AND t.key_attnums IS NOT NULL",
	                     0, nullptr, nullptr, SPI_OK_SELECT);
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	Touched *touched = CollectTouched(n);
	noted = static_cast<IdentityIndex *>(palloc0(sizeof(IdentityIndex) * (n + 1)));
	for (uint64 i = 0; i < n; i++) {
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;
		noted[i].root = touched[i].root;
		noted[i].key = touched[i].key;
		noted[i].nkey = touched[i].nkey;
		noted[i].relid = touched[i].relid;
		noted[i].index = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
		noted[i].relname = SPI_getvalue(tup, desc, 5);
		noted[i].nspname = SPI_getvalue(tup, desc, 6);
	}
	MemoryContextSwitchTo(old);
	nnoted = static_cast<int>(n);
	noted_for = trig->parsetree;
	noted_in = MyProc->lxid;
	/*
	 * DROP INDEX CONCURRENTLY commits before its sql_drop: refuse it now.
	 * The names cannot be resolved here (the caller's search_path is not
	 * ours), so an unqualified name matches an identity index of that name
	 * in any schema.
	 */
	ListCell *lc;
	foreach (lc, stmt->concurrent ? stmt->objects : NIL) {
		List *names = static_cast<List *>(lfirst(lc));
		const char *relname = strVal(llast(names));
		const char *nspname = list_length(names) > 1 ? strVal(list_nth(names, list_length(names) - 2)) : nullptr;
		for (int k = 0; k < nnoted; k++)
			if (strcmp(noted[k].relname, relname) == 0 && (nspname == nullptr || strcmp(noted[k].nspname, nspname) == 0))
				RaiseKeyChange(noted[k].root,
				               psprintf("Index %s is the replica identity of %s.",
				                        quote_qualified_identifier(noted[k].nspname, noted[k].relname),
				                        Describe(noted[k].relid)));
	}
	SPI_finish();
	return PointerGetDatum(nullptr);
}

static Datum
OnSqlDrop(FunctionCallInfo fcinfo)
{
	EventTriggerData *trig = CheckEventTrigger(fcinfo, "dualwrite._on_sql_drop");
	SPI_connect();
	/* A dropped table stops being flagged (its catalog row would dangle). */
	RunLatest(kUnflagDropped, "DELETE FROM dualwrite.tables t USING pg_catalog.pg_event_trigger_dropped_objects() d "
	          "WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
	          "AND d.objsubid OPERATOR(pg_catalog.=) 0 AND t.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid",
	          0, nullptr, nullptr, SPI_OK_DELETE);
	/* Capture triggers and constraints dropped from tables that stay. */
	uint64 n = RunLatest(kDroppedOfFlagged, "WITH d AS (SELECT d.object_type, d.address_names FROM "
	                     "           pg_catalog.pg_event_trigger_dropped_objects() d "
	                     "           WHERE d.object_type OPERATOR(pg_catalog.=) 'table constraint' "
	                     "              OR (d.object_type OPERATOR(pg_catalog.=) 'trigger' AND d.address_names[3] "
	                     "                  IN ('dualwrite_capture', 'dualwrite_capture_truncate'))), "
	                     "r AS (SELECT d.*, pg_catalog.to_regclass(pg_catalog.quote_ident(d.address_names[1]) "
	                     "           OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) "
	                     "           pg_catalog.quote_ident(d.address_names[2]))::pg_catalog.oid AS relid FROM d) "
	                     "SELECT t.tbl::pg_catalog.oid, t.key_attnums, r.relid, r.object_type, r.address_names[3] "
	                     "FROM r JOIN " FLAGGED_OF("r.relid"),
	                     0, nullptr, nullptr, SPI_OK_SELECT);
	Touched *touched = CollectTouched(n);
	/* Identity indexes ddl_command_start noted for this DROP INDEX. */
	if (noted_for == trig->parsetree && noted_in == MyProc->lxid && nnoted > 0) {
		uint64 m = RunLatest(kDroppedIndexes, "SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d "
		                     "WHERE d.object_type OPERATOR(pg_catalog.=) 'index'",
		                     0, nullptr, nullptr, SPI_OK_SELECT);
		for (uint64 i = 0; i < m; i++) {
			bool isnull;
			Oid index = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			for (int k = 0; k < nnoted; k++) {
				const IdentityIndex &x = noted[k];
				if (x.index != index)
					continue;
				const char *problem = IdentityKeyProblem(x.root, x.key, x.nkey, list_make1_oid(x.relid));
				if (problem != nullptr)
					RaiseKeyChange(x.root, problem);
			}
		}
	}
	for (uint64 i = 0; i < n; i++) {
		const Touched &t = touched[i];
		if (strcmp(t.object, "trigger") == 0)
			RaiseCaptureChange(t.root, psprintf("trigger %s was dropped from %s", t.name, Describe(t.relid)));
		else if (t.nkey >= 0) {
			const char *problem = IdentityKeyProblem(t.root, t.key, t.nkey, list_make1_oid(t.relid));
			if (problem != nullptr)
				RaiseKeyChange(t.root, problem);
		}
	}
	SPI_finish();
	return PointerGetDatum(nullptr);
}

static Datum
OnTableRewrite(FunctionCallInfo fcinfo)
{
	CheckEventTrigger(fcinfo, "dualwrite._on_table_rewrite");
	SPI_connect();
	/* Counted now, not under the caller's snapshot: changes committed while
	 * the rewrite waited for its lock are pending too (all writers of the
	 * table have finished: the rewrite holds AccessExclusiveLock). */
	uint64 n = RunLatest(kRewriteFlagged,
	                     "SELECT t.tbl::pg_catalog.oid, r.relid::pg_catalog.regclass::pg_catalog.text "
	                     "FROM pg_catalog.pg_event_trigger_table_rewrite_oid() r(relid) JOIN " FLAGGED_OF("r.relid"),
	                     0, nullptr, nullptr, SPI_OK_SELECT);
	if (n > 0) {
		bool isnull;
		Oid types[1] = {OIDOID};
		Datum values[1] = {SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)};
		char *rel = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		RunLatest(kRewritePending,
		          "SELECT pg_catalog.count(*) FROM dualwrite._pending p WHERE p.tbl::pg_catalog.oid "
		          "OPERATOR(pg_catalog.=) $1",
		          1, types, values, SPI_OK_SELECT);
		int64 pending = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (pending > 0)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			                errmsg("cannot rewrite table %s while %lld captured changes of it are undelivered", rel,
			                       static_cast<long long>(pending)),
			                errdetail("Queued changes are decoded with the table's current column layout."),
			                errhint("Wait until SELECT dualwrite.wait_for_delivery() returns true, then retry (apply "
			                        "the same change on the modern side too).")));
	}
	SPI_finish();
	return PointerGetDatum(nullptr);
}

} // namespace pgdw::config::ddl

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_on_sql_drop);
PG_FUNCTION_INFO_V1(dualwrite_on_ddl_command_start);
PG_FUNCTION_INFO_V1(dualwrite_on_ddl_command_end);
PG_FUNCTION_INFO_V1(dualwrite_on_table_rewrite);

PGDLLEXPORT Datum
dualwrite_on_sql_drop(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::ddl::OnSqlDrop(fcinfo); });
}

PGDLLEXPORT Datum
dualwrite_on_ddl_command_start(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::ddl::OnDdlCommandStart(fcinfo); });
}

PGDLLEXPORT Datum
dualwrite_on_ddl_command_end(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::ddl::OnDdlCommandEnd(fcinfo); });
}

PGDLLEXPORT Datum
dualwrite_on_table_rewrite(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::ddl::OnTableRewrite(fcinfo); });
}
}

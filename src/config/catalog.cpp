/*-------------------------------------------------------------------------
 * catalog.cpp
 *    dualwrite.tables and dualwrite.servers access, delivery shapes (see
 *    catalog.hpp).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/config/catalog.cpp
 *-------------------------------------------------------------------------
 */
#include "config/catalog.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/resowner.h"
#include "catalog/pg_inherits.h"
#include "foreign/foreign.h"
#include "utils/acl.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "nodes/bitmapset.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/varlena.h"
#include "utils/inval.h"
}

namespace pgdw::config {

/* typname and typcategory of a column's type, domains resolved to their base. */
static void
TypeNameAndCategory(Oid typid, const char **name, char *category)
{
	Oid base = getBaseType(typid);
	HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(base));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", base);
	Form_pg_type typ = reinterpret_cast<Form_pg_type>(GETSTRUCT(tup));
	*name = pstrdup(NameStr(typ->typname));
	*category = typ->typcategory;
	ReleaseSysCache(tup);
}

/* Apply column_map: set modern names, or NULL to leave a column out. */
static void
ApplyColumnMap(Relation rel, ColumnConfig *cols, int ncols, Jsonb *map)
{
	const char *relname = RelationGetRelationName(rel);
	if (!JB_ROOT_IS_OBJECT(map) || JB_ROOT_IS_SCALAR(map))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("column_map must be a JSON object"),
		                errhint("Example: '{\"legacy_column\": \"modern_column\", \"dropped_column\": null}'.")));
	JsonbIterator *it = JsonbIteratorInit(&map->root);
	JsonbValue v;
	JsonbIteratorToken tok;
	char *key = nullptr;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
		if (tok == WJB_KEY) {
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		ColumnConfig *col = nullptr;
		for (int i = 0; i < ncols; i++)
			if (strcmp(cols[i].legacy_name, key) == 0)
				col = &cols[i];
		if (col == nullptr)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
			                errmsg("column_map names column \"%s\", which table \"%s\" does not send", key, relname),
			                errdetail("Keys of column_map are legacy column names; generated columns are never sent.")));
		if (v.type == jbvNull) {
			if (col->is_key)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				                errmsg("key column \"%s\" of table \"%s\" cannot be left out", key, relname),
				                errdetail("Changes are applied by key on the modern side.")));
			col->modern_name = nullptr;
		} else if (v.type == jbvString && v.val.string.len > 0)
			col->modern_name = pnstrdup(v.val.string.val, v.val.string.len);
		else
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("column_map value for column \"%s\" must be a column name or null", key)));
	}
}

TableConfig *
BuildTableConfig(Relation rel, const char *server, const char *target_table, Jsonb *column_map, const int16 *key,
                 int nkey)
{
	TupleDesc desc = RelationGetDescr(rel);
	TableConfig *cfg = static_cast<TableConfig *>(palloc0(sizeof(TableConfig)));
	cfg->relid = RelationGetRelid(rel);
	cfg->target_server = pstrdup(server);

	if (target_table != nullptr) {
		List *names = stringToQualifiedNameList(target_table);
		if (list_length(names) == 1) {
			cfg->target_schema = get_namespace_name(RelationGetNamespace(rel));
			cfg->target_name = strVal(linitial(names));
		} else if (list_length(names) == 2) {
			cfg->target_schema = strVal(linitial(names));
			cfg->target_name = strVal(lsecond(names));
		} else
			ereport(ERROR, (errcode(ERRCODE_INVALID_NAME), errmsg("invalid target table name \"%s\"", target_table),
			                errhint("Give schema.table or table.")));
	} else {
		cfg->target_schema = get_namespace_name(RelationGetNamespace(rel));
		cfg->target_name = pstrdup(RelationGetRelationName(rel));
	}
	cfg->target_display = quote_qualified_identifier(cfg->target_schema, cfg->target_name);

	/* The key: as recorded by enable(), else the current replica identity. */
	Bitmapset *keyset = nullptr;
	if (nkey >= 0) {
		for (int i = 0; i < nkey; i++)
			keyset = bms_add_member(keyset, key[i] - FirstLowInvalidHeapAttributeNumber);
	} else
		keyset = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	int key_found = 0;
	ColumnConfig *cols = static_cast<ColumnConfig *>(palloc0(sizeof(ColumnConfig) * (desc->natts + 1)));
	int n = 0;
	for (int i = 0; i < desc->natts; i++) {
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped || att->attgenerated != '\0')
			continue; /* generated columns are computed by the modern side */
		ColumnConfig *c = &cols[n++];
		c->attnum = att->attnum;
		c->legacy_name = pstrdup(NameStr(att->attname));
		c->modern_name = c->legacy_name;
		c->is_key = bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, keyset);
		key_found += c->is_key ? 1 : 0;
		TypeNameAndCategory(att->atttypid, &c->type_name, &c->type_category);
		c->type_display = format_type_with_typemod(att->atttypid, att->atttypmod);
	}
	if (column_map != nullptr)
		ApplyColumnMap(rel, cols, n, column_map);
	/* Drop the columns mapped to null. */
	int kept = 0;
	for (int i = 0; i < n; i++)
		if (cols[i].modern_name != nullptr)
			cols[kept++] = cols[i];
	cfg->columns = cols;
	cfg->ncolumns = kept;
	/* Applied by key on the modern side: no key, no delivery (an empty key
	 * would make every row one key, e.g. DISTINCT ON () in the apply). */
	if (bms_is_empty(keyset))
		cfg->problem = psprintf("table %s has no key to deliver its changes by", quote_qualified_identifier(
		                                get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel)));
	else if (key_found != bms_num_members(keyset))
		cfg->problem = psprintf("a key column of table %s recorded by dualwrite.enable() is gone",
		                            quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
		                                                       RelationGetRelationName(rel)));
	return cfg;
}

const char *
KeyColumnList(const TableConfig *cfg)
{
	StringInfoData buf;
	initStringInfo(&buf);
	for (int i = 0; i < cfg->ncolumns; i++)
		if (cfg->columns[i].is_key)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", quote_identifier(cfg->columns[i].legacy_name));
	return buf.data;
}

/* Run one SPI statement with an oid parameter; returns SPI_processed. */
static uint64
SpiWithOid(const char *sql, Oid relid, int expected)
{
	Oid types[1] = {OIDOID};
	Datum values[1] = {ObjectIdGetDatum(relid)};
	int rc = SPI_execute_with_args(sql, 1, types, values, nullptr, false, 0);
	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed (%d): %s", rc, sql);
	return SPI_processed;
}

/*
 * The catalog (dualwrite.tables, .servers, _table_stats, _held) and the
 * capture triggers are changed as the extension's owner, never as the
 * caller: nobody is granted DML on the catalog, so nobody can forge who
 * enabled a table or who delivers a server, and a delegate with EXECUTE
 * on enable() needs no right on it.  The caller's own rights (owner of the
 * table, USAGE on the server, its own user mapping) are checked by the
 * callers before.  An error inside leaves the switch to the transaction's
 * abort, which restores the user.
 */
OwnerScope
AsExtensionOwner()
{
	OwnerScope scope;
	GetUserIdAndSecContext(&scope.user, &scope.sec);
	Oid nsp = get_namespace_oid("dualwrite", false);
	HeapTuple tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	Oid owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	SetUserIdAndSecContext(owner, scope.sec | SECURITY_LOCAL_USERID_CHANGE);
	return scope;
}

void
Restore(OwnerScope scope)
{
	SetUserIdAndSecContext(scope.user, scope.sec);
}

bool
IsEnabled(Oid relid)
{
	OwnerScope scope = AsExtensionOwner();
	SPI_connect();
	bool found = SpiWithOid("SELECT 1 FROM dualwrite.tables WHERE tbl::oid = $1", relid, SPI_OK_SELECT) > 0;
	SPI_finish();
	Restore(scope);
	return found;
}

bool
SetPaused(Oid relid, bool paused)
{
	OwnerScope scope = AsExtensionOwner();
	Oid types[2] = {OIDOID, BOOLOID};
	Datum values[2] = {ObjectIdGetDatum(relid), BoolGetDatum(paused)};
	SPI_connect();
	/* The old value: the row is locked by the UPDATE's FROM self-join. */
	if (SPI_execute_with_args("UPDATE dualwrite.tables t SET paused = $2 FROM (SELECT tbl, paused FROM "
	                          "dualwrite.tables WHERE tbl::oid = $1 FOR UPDATE) o WHERE t.tbl = o.tbl "
	                          "RETURNING o.paused",
	                          2, types, values, nullptr, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not update dualwrite.tables");
	bool found = SPI_processed == 1;
	bool was = false;
	if (found) {
		bool isnull;
		was = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	Restore(scope);
	/* Sync backends cache the configuration per table (src/sync/tables.cpp). */
	CacheInvalidateRelcacheByRelid(relid);
	if (!found)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
		                errmsg("table \"%s\" is not enabled for dual write",
		                       get_rel_name(relid) != nullptr ? get_rel_name(relid) : "?")));
	return was;
}

/* dualwrite.tables.key_attnums: the key changes are delivered by, for good. */
static void
RecordKey(Oid relid, const TableConfig *cfg)
{
	Datum *attnums = static_cast<Datum *>(palloc(sizeof(Datum) * (cfg->ncolumns + 1)));
	int n = 0;
	for (int i = 0; i < cfg->ncolumns; i++)
		if (cfg->columns[i].is_key)
			attnums[n++] = Int16GetDatum(cfg->columns[i].attnum);
	Oid types[2] = {OIDOID, INT2ARRAYOID};
	Datum values[2] = {ObjectIdGetDatum(relid), PointerGetDatum(construct_array_builtin(attnums, n, INT2OID))};
	if (SPI_execute_with_args("UPDATE dualwrite.tables SET key_attnums = $2 WHERE tbl::oid = $1", 2, types, values,
	                          nullptr, false, 0) != SPI_OK_UPDATE ||
	    SPI_processed != 1)
		elog(ERROR, "could not record the key of table %u in dualwrite.tables", relid);
}

void
InsertTableRow(Oid relid, const char *mode, const char *sync_failure, const TableConfig *cfg, Jsonb *column_map)
{
	Oid caller = GetUserId(); /* who enabled it: the caller, not the extension */
	OwnerScope scope = AsExtensionOwner();
	Oid types[7] = {OIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, OIDOID, TEXTOID};
	Datum values[7] = {ObjectIdGetDatum(relid),
	                   CStringGetTextDatum(mode),
	                   CStringGetTextDatum(cfg->target_server),
	                   CStringGetTextDatum(cfg->target_display),
	                   column_map != nullptr ? JsonbPGetDatum(column_map) : (Datum) 0,
	                   ObjectIdGetDatum(caller),
	                   sync_failure != nullptr ? CStringGetTextDatum(sync_failure) : (Datum) 0};
	char nulls[7] = {' ', ' ', ' ', ' ', column_map != nullptr ? ' ' : 'n', ' ', sync_failure != nullptr ? ' ' : 'n'};
	SPI_connect();
	if (SPI_execute_with_args("INSERT INTO dualwrite.tables (tbl, mode, target_server, target_table, column_map, "
	                          "enabled_by, sync_failure) VALUES ($1::regclass, $2, $3::name, $4, $5, $6::regrole, $7)",
	                          7, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record table in dualwrite.tables");
	RecordKey(relid, cfg);
	SpiWithOid("INSERT INTO dualwrite._table_stats (relid) VALUES ($1) ON CONFLICT (relid) DO UPDATE SET "
	           "applied = 0, failures = 0, last_applied_at = NULL, last_error = NULL, last_error_at = NULL",
	           relid, SPI_OK_INSERT);
	SPI_finish();
	Restore(scope);
}

static void
RunDdl(const char *fmt, Relation rel)
{
	const char *qualified =
	    quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel));
	SPI_connect();
	if (SPI_execute(psprintf(fmt, qualified), false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not run trigger DDL on %s", qualified);
	SPI_finish();
}

/* Statement triggers are not cloned to partitions (row triggers are):
 * the TRUNCATE trigger goes on the table and on each partition, so that
 * TRUNCATE of a single partition is captured too. */
static void
ForTableAndPartitions(Relation rel, const char *fmt)
{
	List *all = find_all_inheritors(RelationGetRelid(rel), ShareRowExclusiveLock, nullptr);
	ListCell *lc;
	foreach (lc, all) {
		Relation r = table_open(lfirst_oid(lc), NoLock);
		RunDdl(fmt, r);
		table_close(r, NoLock);
	}
}

/* The row trigger; its argument 'sync' tells capture to ship the change at
 * commit (src/sync).  Partitions get clones with the same argument. */
static void
CreateRowTrigger(Relation rel, bool sync, bool replace)
{
	RunDdl(sync ? (replace ? "CREATE OR REPLACE TRIGGER dualwrite_capture AFTER INSERT OR UPDATE OR DELETE ON %s "
	                         "FOR EACH ROW EXECUTE FUNCTION dualwrite._capture('sync')"
	                       : "CREATE TRIGGER dualwrite_capture AFTER INSERT OR UPDATE OR DELETE ON %s "
	                         "FOR EACH ROW EXECUTE FUNCTION dualwrite._capture('sync')")
	            : (replace ? "CREATE OR REPLACE TRIGGER dualwrite_capture AFTER INSERT OR UPDATE OR DELETE ON %s "
	                         "FOR EACH ROW EXECUTE FUNCTION dualwrite._capture()"
	                       : "CREATE TRIGGER dualwrite_capture AFTER INSERT OR UPDATE OR DELETE ON %s "
	                         "FOR EACH ROW EXECUTE FUNCTION dualwrite._capture()"),
	       rel);
}

void
CreateCaptureTriggers(Relation rel, bool sync)
{
	OwnerScope scope = AsExtensionOwner();
	CreateRowTrigger(rel, sync, false);
	/* BEFORE: a partition's rows are read before they are gone. */
	ForTableAndPartitions(rel, "CREATE TRIGGER dualwrite_capture_truncate BEFORE TRUNCATE ON %s "
	                           "FOR EACH STATEMENT EXECUTE FUNCTION dualwrite._capture_truncate()");
	Restore(scope);
}

void
ReplaceRowTrigger(Relation rel, bool sync)
{
	OwnerScope scope = AsExtensionOwner();
	CreateRowTrigger(rel, sync, true);
	Restore(scope);
}

void
SetModeRow(Oid relid, const char *mode, const char *sync_failure)
{
	OwnerScope scope = AsExtensionOwner();
	Oid types[3] = {OIDOID, TEXTOID, TEXTOID};
	Datum values[3] = {ObjectIdGetDatum(relid), CStringGetTextDatum(mode),
	                   sync_failure != nullptr ? CStringGetTextDatum(sync_failure) : (Datum) 0};
	char nulls[3] = {' ', ' ', sync_failure != nullptr ? ' ' : 'n'};
	SPI_connect();
	if (SPI_execute_with_args("UPDATE dualwrite.tables SET mode = $2, sync_failure = $3 "
	                          "WHERE tbl::oid OPERATOR(pg_catalog.=) $1",
	                          3, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update dualwrite.tables");
	SPI_finish();
	Restore(scope);
	CacheInvalidateRelcacheByRelid(relid); /* sync backends' cache (src/sync/tables.cpp) */
}

void
EnsureTruncateTriggers(Oid relid)
{
	List *all = find_all_inheritors(relid, ShareRowExclusiveLock, nullptr);
	ListCell *lc;
	foreach (lc, all) {
		Oid part = lfirst_oid(lc);
		SPI_connect();
		bool present = SpiWithOid("SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = "
		                          "'dualwrite_capture_truncate'",
		                          part, SPI_OK_SELECT) > 0;
		SPI_finish();
		if (present)
			continue;
		Relation r = table_open(part, NoLock);
		RunDdl("CREATE TRIGGER dualwrite_capture_truncate BEFORE TRUNCATE ON %s "
		       "FOR EACH STATEMENT EXECUTE FUNCTION dualwrite._capture_truncate()",
		       r);
		table_close(r, NoLock);
	}
}

void
DropCaptureTriggers(Relation rel)
{
	OwnerScope scope = AsExtensionOwner();
	RunDdl("DROP TRIGGER IF EXISTS dualwrite_capture ON %s", rel);
	ForTableAndPartitions(rel, "DROP TRIGGER IF EXISTS dualwrite_capture_truncate ON %s");
	Restore(scope);
}

int64
DeleteTableRow(Oid relid)
{
	OwnerScope scope = AsExtensionOwner();
	SPI_connect();
	SpiWithOid("SELECT count(*) FROM dualwrite._pending WHERE tbl::oid = $1", relid, SPI_OK_SELECT);
	bool isnull;
	int64 pending = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	uint64 deleted = SpiWithOid("DELETE FROM dualwrite.tables WHERE tbl::oid = $1", relid, SPI_OK_DELETE);
	SpiWithOid("DELETE FROM dualwrite._table_stats WHERE relid = $1", relid, SPI_OK_DELETE);
	SpiWithOid("DELETE FROM dualwrite._held WHERE relid = $1", relid, SPI_OK_DELETE);
	/* a later enable() starts without a reconcile baseline */
	SpiWithOid("DELETE FROM dualwrite._reconcile_state WHERE relid = $1", relid, SPI_OK_DELETE);
	SpiWithOid("DELETE FROM dualwrite._reconcile_dirty WHERE relid = $1", relid, SPI_OK_DELETE);
	/* The caller's lock waited for every writer of the table: all of its
	 * captured changes are settled.  Drop them, so enabling the table again
	 * later does not deliver changes from before this disable. */
	for (int g = 0; g < 3 && deleted > 0; g++) {
		char *sql = psprintf("DELETE FROM dualwrite._outbox_%d WHERE relid IN "
		                     "(SELECT $1 UNION SELECT relid FROM pg_catalog.pg_partition_tree($1::regclass))",
		                     g);
		SpiWithOid(sql, relid, SPI_OK_DELETE);
	}
	SPI_finish();
	Restore(scope);
	return deleted == 0 ? -1 : pending;
}

/*
 * BuildTableConfig() in a subtransaction: if it raises, the table gets a
 * configuration that says why (`problem`) and sends nothing.  The worker
 * then holds that table alone when it meets one of its changes.
 */
static TableConfig *
BuildOrExplain(Relation rel, const char *server, const char *target_table, Jsonb *map, const int16 *key, int nkey)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TableConfig *volatile cfg = nullptr;
	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		cfg = BuildTableConfig(rel, server, target_table, map, key, nkey);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		TableConfig *broken = static_cast<TableConfig *>(palloc0(sizeof(TableConfig)));
		broken->relid = RelationGetRelid(rel);
		broken->target_server = pstrdup(server);
		broken->target_schema = get_namespace_name(RelationGetNamespace(rel));
		broken->target_name = pstrdup(RelationGetRelationName(rel));
		broken->target_display = quote_qualified_identifier(broken->target_schema, broken->target_name);
		broken->problem = psprintf("the configuration of table %s no longer fits it: %s",
		                           quote_qualified_identifier(broken->target_schema, broken->target_name),
		                           edata->message);
		FreeErrorData(edata);
		cfg = broken;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return cfg;
}

TableConfig **
LoadAll(int *count, Oid only)
{
	/* As the extension's owner: a sync backend runs as the application's
	 * role, which has no right on dualwrite.tables. */
	OwnerScope scope = AsExtensionOwner();
	SPI_connect();
	/* The delivering role is the server's, whoever enabled the table. */
	Oid types[1] = {OIDOID};
	Datum args[1] = {ObjectIdGetDatum(only)};
	if (SPI_execute_with_args("SELECT t.tbl::oid, t.target_server::text, t.target_table, t.column_map, s.deliver_as::oid, "
	                          "t.key_attnums, t.paused, t.mode, t.sync_failure "
	                          "FROM dualwrite.tables t LEFT JOIN dualwrite.servers s "
	                          "ON s.server OPERATOR(pg_catalog.=) t.target_server "
	                          "WHERE $1 OPERATOR(pg_catalog.=) 0 OR t.tbl::oid OPERATOR(pg_catalog.=) $1 ORDER BY 1",
	                          1, types, args, nullptr, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read dualwrite.tables");
	int n = static_cast<int>(SPI_processed);
	/* SPI_palloc: the results must outlive SPI_finish (caller's context). */
	Oid *relids = static_cast<Oid *>(SPI_palloc(sizeof(Oid) * (n + 1)));
	char **servers = static_cast<char **>(SPI_palloc(sizeof(char *) * (n + 1)));
	char **targets = static_cast<char **>(SPI_palloc(sizeof(char *) * (n + 1)));
	Oid *delivers = static_cast<Oid *>(SPI_palloc(sizeof(Oid) * (n + 1)));
	Jsonb **maps = static_cast<Jsonb **>(SPI_palloc(sizeof(Jsonb *) * (n + 1)));
	int16 **keys = static_cast<int16 **>(SPI_palloc(sizeof(int16 *) * (n + 1)));
	int *nkeys = static_cast<int *>(SPI_palloc(sizeof(int) * (n + 1)));
	bool *paused = static_cast<bool *>(SPI_palloc(sizeof(bool) * (n + 1)));
	bool *sync = static_cast<bool *>(SPI_palloc(sizeof(bool) * (n + 1)));
	char **sync_failure = static_cast<char **>(SPI_palloc(sizeof(char *) * (n + 1)));
	for (int i = 0; i < n; i++) {
		HeapTuple t = SPI_tuptable->vals[i];
		TupleDesc d = SPI_tuptable->tupdesc;
		bool isnull;
		relids[i] = DatumGetObjectId(SPI_getbinval(t, d, 1, &isnull));
		servers[i] = static_cast<char *>(SPI_palloc(NAMEDATALEN * 2));
		strlcpy(servers[i], SPI_getvalue(t, d, 2), NAMEDATALEN * 2);
		char *target = SPI_getvalue(t, d, 3);
		targets[i] = static_cast<char *>(SPI_palloc(strlen(target) + 1));
		strcpy(targets[i], target);
		Datum deliver = SPI_getbinval(t, d, 5, &isnull);
		delivers[i] = isnull ? InvalidOid : DatumGetObjectId(deliver);
		Datum map = SPI_getbinval(t, d, 4, &isnull);
		maps[i] = nullptr;
		if (!isnull) {
			Jsonb *jb = DatumGetJsonbP(map);
			maps[i] = static_cast<Jsonb *>(SPI_palloc(VARSIZE(jb)));
			memcpy(maps[i], jb, VARSIZE(jb));
		}
		paused[i] = DatumGetBool(SPI_getbinval(t, d, 7, &isnull)) && !isnull;
		sync[i] = strcmp(SPI_getvalue(t, d, 8), "sync") == 0;
		char *failure = SPI_getvalue(t, d, 9);
		sync_failure[i] = nullptr;
		if (failure != nullptr) {
			sync_failure[i] = static_cast<char *>(SPI_palloc(strlen(failure) + 1));
			strcpy(sync_failure[i], failure);
		}
		Datum key = SPI_getbinval(t, d, 6, &isnull);
		nkeys[i] = -1; /* not recorded: the current replica identity */
		keys[i] = nullptr;
		if (!isnull) {
			Datum *elems;
			bool *elem_nulls;
			deconstruct_array_builtin(DatumGetArrayTypeP(key), INT2OID, &elems, &elem_nulls, &nkeys[i]);
			keys[i] = static_cast<int16 *>(SPI_palloc(sizeof(int16) * (nkeys[i] + 1)));
			for (int k = 0; k < nkeys[i]; k++)
				keys[i][k] = DatumGetInt16(elems[k]);
		}
	}
	SPI_finish();
	Restore(scope);

	TableConfig **all = static_cast<TableConfig **>(palloc0(sizeof(TableConfig *) * (n + 1)));
	int kept = 0;
	for (int i = 0; i < n; i++) {
		/* A table dropped since we read the catalog is skipped, not an error. */
		Relation rel = try_table_open(relids[i], AccessShareLock);
		if (rel == nullptr)
			continue;
		all[kept] = BuildOrExplain(rel, servers[i], targets[i], maps[i], keys[i], nkeys[i]);
		all[kept]->paused = paused[i];
		all[kept]->sync = sync[i];
		all[kept]->sync_failure = sync_failure[i];
		all[kept++]->deliver_as = delivers[i];
		table_close(rel, NoLock);
	}
	*count = kept;
	return all;
}

Oid
DeliveringRole(const char *server)
{
	OwnerScope scope = AsExtensionOwner();
	Oid types[1] = {TEXTOID};
	Datum values[1] = {CStringGetTextDatum(server)};
	SPI_connect();
	if (SPI_execute_with_args("SELECT deliver_as::oid FROM dualwrite.servers WHERE server = $1::name", 1, types,
	                          values, nullptr, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read dualwrite.servers");
	Oid role = InvalidOid;
	if (SPI_processed > 0) {
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		role = isnull ? InvalidOid : DatumGetObjectId(d);
	}
	SPI_finish();
	Restore(scope);
	return role;
}

void
SetDeliveringRole(const char *server, Oid role)
{
	OwnerScope scope = AsExtensionOwner();
	Oid types[2] = {TEXTOID, OIDOID};
	Datum values[2] = {CStringGetTextDatum(server), ObjectIdGetDatum(role)};
	SPI_connect();
	if (SPI_execute_with_args("INSERT INTO dualwrite.servers (server, deliver_as) VALUES ($1::name, $2::regrole) "
	                          "ON CONFLICT (server) DO UPDATE SET deliver_as = EXCLUDED.deliver_as, "
	                          "set_at = pg_catalog.now()",
	                          2, types, values, nullptr, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the delivering role in dualwrite.servers");
	SPI_finish();
	Restore(scope);
	/* Sync backends cache each table's delivering role (src/sync/tables.cpp);
	 * rare enough for the big hammer. */
	CacheInvalidateRelcacheAll();
}

bool
ServerInUse(const char *server)
{
	OwnerScope scope = AsExtensionOwner();
	Oid types[1] = {TEXTOID};
	Datum values[1] = {CStringGetTextDatum(server)};
	SPI_connect();
	if (SPI_execute_with_args("SELECT 1 FROM dualwrite.tables WHERE target_server = $1::name", 1, types, values,
	                          nullptr, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read dualwrite.tables");
	bool used = SPI_processed > 0;
	SPI_finish();
	Restore(scope);
	return used;
}

const char *
ServerTrustProblem(const char *server, Oid deliver_as)
{
	ForeignServer *fs = GetForeignServerByName(server, true);
	if (fs == nullptr)
		return psprintf("server \"%s\" does not exist", server);
	Oid owner = fs->owner;
	/* Whoever may change the server's options decides where the delivering
	 * role's credentials go: that must be the role itself, or a superuser. */
	if (superuser_arg(owner) || owner == deliver_as || (RoleExists(deliver_as) && has_privs_of_role(deliver_as, owner)))
		return nullptr;
	return psprintf("server \"%s\" is owned by role \"%s\", who could point it elsewhere and receive the "
	                "changes and credentials of the delivering role \"%s\"",
	                server, RoleDisplay(owner), RoleDisplay(deliver_as));
}

bool
RoleExists(Oid role)
{
	return OidIsValid(role) && SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role));
}

const char *
RoleDisplay(Oid role)
{
	char *name = OidIsValid(role) ? GetUserNameFromId(role, true) : nullptr;
	return name != nullptr ? name : psprintf("role with OID %u", role);
}

void
LockServers()
{
	Oid nsp = get_namespace_oid("dualwrite", false);
	Oid rel = get_relname_relid("servers", nsp);
	if (!OidIsValid(rel))
		elog(ERROR, "relation dualwrite.servers is missing");
	/* Self-exclusive, and compatible with the worker's reads. */
	LockRelationOid(rel, ShareRowExclusiveLock);
}

} // namespace pgdw::config

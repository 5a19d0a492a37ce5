/*-------------------------------------------------------------------------
 * enable.cpp
 *    dualwrite.enable() and dualwrite.disable(): flag a table after
 *    validating it against its modern target, and unflag it.
 *
 * enable() checks everything before it changes anything, and all of its
 * changes (catalog row, triggers) are in the caller's transaction: a
 * failed check leaves no trace.  It connects to the modern side to check
 * that the target table, its columns, their types and a unique key exist.
 *
 * These functions hold only trivially destructible locals and call
 * PostgreSQL directly; the only C++ code (the type rule of core/) runs
 * inside its own pg_entry() and calls no PostgreSQL function.
 *
 * IDENTIFICATION  src/config/enable.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "config/catalog.hpp"
#include "config/ddl_guard.hpp"
#include "config/guc.hpp"
#include "core/typecompat.hpp"
#include "remote/connection.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "access/reloptions.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_foreign_server.h"
#include "nodes/bitmapset.h"
#include "utils/jsonb.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
}

namespace pgdw::config {

/* The core type rule, behind its own boundary (it allocates std::strings). */
static bool
Compatible(const char *legacy_name, char legacy_cat, const char *modern_name, char modern_cat)
{
	return pg_entry([&] {
		return core::TypesCompatible(core::ColumnType{legacy_name, legacy_cat}, core::ColumnType{modern_name, modern_cat});
	});
}

/* The table must be an ordinary or partitioned, permanent, user table. */
static void
CheckRelation(Relation rel)
{
	const char *name = RelationGetRelationName(rel);
	char kind = rel->rd_rel->relkind;
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a table", name),
		                errdetail("pg_dualwrite captures ordinary and partitioned tables only.")));
	if (rel->rd_rel->relispartition)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is a partition", name),
		                errhint("Enable the partitioned table it belongs to; its partitions are captured with it.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("\"%s\" is a temporary table", name),
		                errdetail("Temporary tables cannot be dual-written.")));
	if (IsCatalogRelation(rel) || RelationGetNamespace(rel) == get_namespace_oid("dualwrite", true))
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" cannot be dual-written", name),
		                errdetail("System catalogs and pg_dualwrite's own tables are not captured.")));
	Bitmapset *key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	if (bms_is_empty(key))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" has no primary key", name),
		                errdetail("Changes are applied on the modern side by key."),
		                errhint("Add a primary key, or set REPLICA IDENTITY USING INDEX on a unique index of "
		                        "NOT NULL columns.")));
}

/* Run a remote catalog query; caller PQclears. */
static PGresult *
RemoteQuery(PGconn *conn, const char *fmt, const char *a, const char *b)
{
	char *sql = psprintf(fmt, a, b);
	PGresult *res = remote::Query(conn, sql);
	pfree(sql);
	return res;
}

/* Check the modern side of one table; raise the first problem found. */
static void
CheckTarget(Relation rel, const TableConfig *cfg, PGconn *conn)
{
	const char *target = cfg->target_display;
	PGresult *res = RemoteQuery(conn,
	                            "SELECT c.oid, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
	                            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
	                            quote_literal_cstr(cfg->target_schema), quote_literal_cstr(cfg->target_name));
	int found = PQntuples(res);
	char *target_oid = found > 0 ? pstrdup(PQgetvalue(res, 0, 0)) : nullptr;
	char relkind = found > 0 ? PQgetvalue(res, 0, 1)[0] : '\0';
	PQclear(res);
	if (found == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
		                errmsg("target table %s does not exist on server \"%s\"", target, cfg->target_server),
		                errhint("Create it in the modern database with the same columns and primary key, or pass "
		                        "target_table => 'schema.table'.")));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
		                errmsg("target %s on server \"%s\" is not a table", target, cfg->target_server)));

	res = RemoteQuery(conn,
	                  "SELECT a.attname, bt.typname, bt.typcategory, a.attgenerated <> '', "
	                  "pg_catalog.format_type(a.atttypid, a.atttypmod) "
	                  "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
	                  "JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype "
	                  "ELSE t.oid END WHERE a.attrelid = %s%s AND a.attnum > 0 AND NOT a.attisdropped",
	                  target_oid, "");
	int nremote = PQntuples(res);
	for (int i = 0; i < cfg->ncolumns; i++) {
		const ColumnConfig *col = &cfg->columns[i];
		int match = -1;
		for (int r = 0; r < nremote && match < 0; r++)
			if (strcmp(PQgetvalue(res, r, 0), col->modern_name) == 0)
				match = r;
		if (match < 0) {
			PQclear(res);
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
			                errmsg("column \"%s\" of table \"%s\" is missing on the modern side", col->modern_name,
			                       RelationGetRelationName(rel)),
			                errdetail("Target table %s on server \"%s\" has no column \"%s\".", target,
			                          cfg->target_server, col->modern_name),
			                errhint("Add the column to the modern table, or map it with column_map => "
			                        "'{\"%s\": \"other_column\"}' (null leaves it out).",
			                        col->legacy_name)));
		}
		bool generated = PQgetvalue(res, match, 3)[0] == 't';
		char *mtype = pstrdup(PQgetvalue(res, match, 1));
		char *mdisplay = pstrdup(PQgetvalue(res, match, 4));
		char mcat = PQgetvalue(res, match, 2)[0];
		if (generated) {
			PQclear(res);
			ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
			                errmsg("column \"%s\" of target table %s is a generated column", col->modern_name, target),
			                errhint("Leave it out with column_map => '{\"%s\": null}'.", col->legacy_name)));
		}
		if (!Compatible(col->type_name, col->type_category, mtype, mcat)) {
			PQclear(res);
			ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
			                errmsg("column \"%s\" of table \"%s\" has type %s, but modern column \"%s\" has type %s",
			                       col->legacy_name, RelationGetRelationName(rel), col->type_display, col->modern_name,
			                       mdisplay),
			                errdetail("Values travel as text; the modern type must read the legacy type's output "
			                          "without changing its meaning.")));
		}
	}
	PQclear(res);

	/* ON CONFLICT needs a unique index on exactly the key's columns. */
	res = RemoteQuery(conn,
	                  "SELECT i.indexrelid, a.attname FROM pg_catalog.pg_index i "
	                  "CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) AS k(attnum) "
	                  "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	                  "WHERE i.indrelid = %s%s AND i.indisunique AND i.indimmediate AND i.indisvalid "
	                  "AND i.indpred IS NULL AND i.indexprs IS NULL ORDER BY 1",
	                  target_oid, "");
	int nkey = 0;
	for (int i = 0; i < cfg->ncolumns; i++)
		nkey += cfg->columns[i].is_key ? 1 : 0;
	bool key_ok = false;
	for (int r = 0; r < PQntuples(res) && !key_ok;) {
		const char *index = PQgetvalue(res, r, 0);
		int width = 0, matched = 0;
		for (; r < PQntuples(res) && strcmp(PQgetvalue(res, r, 0), index) == 0; r++) {
			width++;
			for (int i = 0; i < cfg->ncolumns; i++)
				if (cfg->columns[i].is_key && strcmp(cfg->columns[i].modern_name, PQgetvalue(res, r, 1)) == 0)
					matched++;
		}
		key_ok = width == nkey && matched == nkey;
	}
	PQclear(res);
	if (!key_ok)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
		                errmsg("target table %s has no primary key or unique index on the key of \"%s\"", target,
		                       RelationGetRelationName(rel)),
		                errdetail("Changes are applied by key: the modern table needs a unique index on exactly the "
		                          "columns of the legacy primary key (%s).",
		                          KeyColumnList(cfg)),
		                errhint("Add the primary key to the modern table.")));
}

static Datum
Enable(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("table must not be null")));
	Oid relid = PG_GETARG_OID(0);
	const char *mode = PG_ARGISNULL(1) ? guc::ModeName(guc::default_mode) : text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *target_table = PG_ARGISNULL(2) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(2));
	Jsonb *column_map = PG_ARGISNULL(3) ? nullptr : PG_GETARG_JSONB_P(3);
	const char *server = PG_ARGISNULL(4) ? guc::target_server : NameStr(*PG_GETARG_NAME(4));

	if (strcmp(mode, "sync") == 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("sync mode is not available yet"),
		                errhint("Use mode => 'async': changes go to the outbox in the same transaction and the "
		                        "background worker delivers them.")));
	if (strcmp(mode, "async") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid mode \"%s\"", mode),
		                errhint("Valid modes are \"async\" and \"sync\".")));
	if (server == nullptr || server[0] == '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("no target server given"),
		                errhint("Pass target_server => 'name', or set dualwrite.target_server.")));
	ForeignServer *fs = GetForeignServerByName(server, true);
	if (fs == nullptr)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("server \"%s\" does not exist", server),
		                errhint("Create it with CREATE SERVER %s FOREIGN DATA WRAPPER dualwrite OPTIONS (host '...', "
		                        "port '...', dbname '...') and a USER MAPPING for it.",
		                        quote_identifier(server))));

	/* The lock CREATE TRIGGER takes, taken first so it is never upgraded. */
	Relation rel = table_open(relid, ShareRowExclusiveLock);
	CheckRelation(rel);
	if (IsEnabled(relid))
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
		                errmsg("table \"%s\" is already enabled for dual write", RelationGetRelationName(rel)),
		                errhint("Call dualwrite.disable() first to change its settings.")));

	TableConfig *cfg = BuildTableConfig(rel, server, target_table, column_map);
	ddl::CheckPartitionKeys(rel, cfg, ShareRowExclusiveLock);
	PGconn *conn = remote::Connect(server, GetUserId()); /* closed at transaction end */
	CheckTarget(rel, cfg, conn);
	remote::Disconnect(conn);

	InsertTableRow(relid, mode, cfg, column_map);
	CreateCaptureTriggers(rel);
	table_close(rel, NoLock);
	shm::WakeLauncher();
	PG_RETURN_VOID();
}

static Datum
Disable(FunctionCallInfo fcinfo)
{
	Oid relid = PG_GETARG_OID(0);
	Relation rel = table_open(relid, ShareRowExclusiveLock);
	int64 discarded = DeleteTableRow(relid);
	if (discarded < 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
		                errmsg("table \"%s\" is not enabled for dual write", RelationGetRelationName(rel))));
	DropCaptureTriggers(rel);
	if (discarded > 0)
		ereport(NOTICE, (errmsg_plural("%lld undelivered change of table \"%s\" was discarded",
		                               "%lld undelivered changes of table \"%s\" were discarded",
		                               static_cast<unsigned long>(discarded), static_cast<long long>(discarded),
		                               RelationGetRelationName(rel))));
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

} // namespace pgdw::config

extern "C" {
PG_FUNCTION_INFO_V1(dualwrite_enable);
PG_FUNCTION_INFO_V1(dualwrite_disable);
PG_FUNCTION_INFO_V1(dualwrite_fdw_validator);

PGDLLEXPORT Datum
dualwrite_enable(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::Enable(fcinfo); });
}

PGDLLEXPORT Datum
dualwrite_disable(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::Disable(fcinfo); });
}

PGDLLEXPORT Datum
dualwrite_fdw_validator(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] {
		List *options = untransformRelOptions(PG_GETARG_DATUM(0));
		pgdw::remote::ValidateOptions(options, PG_GETARG_OID(1));
		PG_RETURN_VOID();
	});
}
}

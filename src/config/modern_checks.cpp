/*-------------------------------------------------------------------------
 * modern_checks.cpp
 *    Modern-side validation (see modern_checks.hpp): the target table, its
 *    columns, types and key, and the privileges delivery needs there.
 *    Used by dualwrite.enable(), set_delivery_role() and check().
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals
 * (the type rule of core/ runs behind its own pg_entry()).
 *
 * IDENTIFICATION  src/config/modern_checks.cpp
 *-------------------------------------------------------------------------
 */
#include "config/modern_checks.hpp"

#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "core/typecompat.hpp"
#include "remote/connection.hpp"
#include "remote/result.hpp"
#include "shmem/shmem.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
}

namespace pgdw::config {


/* The privileges every target table needs, in GRANT order. */
static const char *const kTablePrivileges = "ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']";

/* The core type rule, behind its own boundary (it allocates std::strings). */
static bool
Compatible(const char *legacy_name, char legacy_cat, const char *modern_name, char modern_cat)
{
	return pg_entry([&] {
		return core::TypesCompatible(core::ColumnType{legacy_name, legacy_cat}, core::ColumnType{modern_name, modern_cat});
	});
}

/* Run a remote catalog query whose result must have `shape`; caller PQclears. */
static PGresult *
RemoteQuery(PGconn *conn, const remote::Shape &shape, const char *fmt, const char *a, const char *b)
{
	char *sql = psprintf(fmt, a, b);
	PGresult *res = remote::QueryShaped(conn, sql, shape);
	pfree(sql);
	return res;
}

[[noreturn]] static void
RaiseNoTarget(const TableConfig *cfg)
{
	ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
	                errmsg("target table %s does not exist on server \"%s\"", cfg->target_display, cfg->target_server),
	                errhint("Create it in the modern database with the same columns and primary key, or pass "
	                        "target_table => 'schema.table'.")));
	pg_unreachable();
}

void
CheckTarget(const char *legacy_name, const TableConfig *cfg, PGconn *conn)
{
	const char *target = cfg->target_display;
	/* Every value is checked as it is read (remote/result.hpp): a server
	 * that is not what it claims must not crash us. */
	const remote::Shape lookup = {psprintf("the lookup of target table %s", target), 2, 0, 1};
	PGresult *res = RemoteQuery(conn, lookup,
	                            "SELECT c.oid, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
	                            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
	                            quote_literal_cstr(cfg->target_schema), quote_literal_cstr(cfg->target_name));
	int found = PQntuples(res);
	char *target_oid = found > 0 ? pstrdup(remote::ValueOid(conn, res, 0, 0, lookup)) : nullptr;
	char relkind = found > 0 ? remote::ValueChar(conn, res, 0, 1, lookup) : '\0';
	PQclear(res);
	if (found == 0)
		RaiseNoTarget(cfg);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
		                errmsg("target %s on server \"%s\" is not a table", target, cfg->target_server)));

	const remote::Shape columns = {psprintf("the columns of target table %s", target), 5, 0,
	                               remote::kMaxResultRows};
	res = RemoteQuery(conn, columns,
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
			if (strcmp(remote::ValueText(conn, res, r, 0, columns), col->modern_name) == 0)
				match = r;
		if (match < 0) {
			PQclear(res);
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
			                errmsg("column \"%s\" of table \"%s\" is missing on the modern side", col->modern_name,
			                       legacy_name),
			                errdetail("Target table %s on server \"%s\" has no column \"%s\".", target,
			                          cfg->target_server, col->modern_name),
			                errhint("Add the column to the modern table, or map it with column_map => "
			                        "'{\"%s\": \"other_column\"}' (null leaves it out).",
			                        col->legacy_name)));
		}
		bool generated = remote::ValueBool(conn, res, match, 3, columns);
		char *mtype = pstrdup(remote::ValueText(conn, res, match, 1, columns));
		char *mdisplay = pstrdup(remote::ValueText(conn, res, match, 4, columns));
		char mcat = remote::ValueChar(conn, res, match, 2, columns);
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
			                       col->legacy_name, legacy_name, col->type_display, col->modern_name, mdisplay),
			                errdetail("Values travel as text; the modern type must read the legacy type's output "
			                          "without changing its meaning.")));
		}
	}
	PQclear(res);

	/* ON CONFLICT needs a unique index on exactly the key's columns. */
	const remote::Shape keys = {psprintf("the unique indexes of target table %s", target), 2, 0,
	                            remote::kMaxResultRows};
	res = RemoteQuery(conn, keys,
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
		const char *index = remote::ValueOid(conn, res, r, 0, keys);
		int width = 0, matched = 0;
		for (; r < PQntuples(res) && strcmp(remote::ValueOid(conn, res, r, 0, keys), index) == 0; r++) {
			width++;
			const char *attname = remote::ValueText(conn, res, r, 1, keys);
			for (int i = 0; i < cfg->ncolumns; i++)
				if (cfg->columns[i].is_key && strcmp(cfg->columns[i].modern_name, attname) == 0)
					matched++;
		}
		key_ok = width == nkey && matched == nkey;
	}
	PQclear(res);
	if (!key_ok)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
		                errmsg("target table %s has no primary key or unique index on the key of \"%s\"", target,
		                       legacy_name),
		                errdetail("Changes are applied by key: the modern table needs a unique index on exactly the "
		                          "columns of the legacy primary key (%s).",
		                          KeyColumnList(cfg)),
		                errhint("Add the primary key to the modern table.")));
}


void
CheckTargetPrivileges(const TableConfig *cfg, PGconn *conn)
{
	const char *sql =
	    psprintf("SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE'), "
	             "(SELECT pg_catalog.string_agg(p, ', ' ORDER BY o) FROM pg_catalog.unnest(%s) WITH ORDINALITY "
	             "AS u(p, o) WHERE NOT pg_catalog.has_table_privilege(c.oid, p)), "
	             "pg_catalog.quote_ident(current_user::text) "
	             "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	             "WHERE n.nspname = %s AND c.relname = %s",
	             kTablePrivileges, quote_literal_cstr(cfg->target_schema), quote_literal_cstr(cfg->target_name));
	const remote::Shape shape = {psprintf("the privileges on target table %s", cfg->target_display), 3, 0, 1};
	PGresult *res = remote::QueryShaped(conn, sql, shape);
	if (PQntuples(res) == 0) {
		PQclear(res);
		RaiseNoTarget(cfg);
	}
	bool usage = remote::ValueBool(conn, res, 0, 0, shape);
	const char *missing_value = remote::ValueText(conn, res, 0, 1, shape, true);
	char *missing = missing_value == nullptr ? nullptr : pstrdup(missing_value);
	char *user = pstrdup(remote::ValueText(conn, res, 0, 2, shape));
	PQclear(res);
	if (!usage)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("modern role %s may not use schema %s on server \"%s\"", user,
		                       quote_identifier(cfg->target_schema), cfg->target_server),
		                errdetail("Target table %s is in that schema.", cfg->target_display),
		                errhint("On the modern database run: GRANT USAGE ON SCHEMA %s TO %s;",
		                        quote_identifier(cfg->target_schema), user)));
	if (missing != nullptr)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("modern role %s lacks %s on target table %s on server \"%s\"", user, missing,
		                       cfg->target_display, cfg->target_server),
		                errdetail("Delivery needs SELECT, INSERT, UPDATE, DELETE and TRUNCATE on every target table."),
		                errhint("On the modern database run: GRANT %s ON %s TO %s;", missing, cfg->target_display,
		                        user)));
}

void
CheckTempPrivilege(const char *server, PGconn *conn)
{
	const remote::Shape shape = {"the TEMPORARY privilege check", 3, 1, 1};
	PGresult *res = remote::QueryShaped(conn,
	                                    "SELECT pg_catalog.has_database_privilege(pg_catalog.current_database(), "
	                                    "'TEMPORARY'), pg_catalog.quote_ident(pg_catalog.current_database()::text), "
	                                    "pg_catalog.quote_ident(current_user::text)",
	                                    shape);
	bool ok = remote::ValueBool(conn, res, 0, 0, shape);
	char *db = pstrdup(remote::ValueText(conn, res, 0, 1, shape));
	char *user = pstrdup(remote::ValueText(conn, res, 0, 2, shape));
	PQclear(res);
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("modern role %s may not create temporary tables on server \"%s\"", user, server),
		                errdetail("Each batch is staged in a temporary table on the modern side."),
		                errhint("On the modern database run: GRANT TEMPORARY ON DATABASE %s TO %s;", db, user)));
}

void
CheckPreparedTransactions(const char *server, PGconn *conn)
{
	const remote::Shape shape = {"the max_prepared_transactions check", 1, 1, 1};
	PGresult *res = remote::QueryShaped(conn, "SELECT pg_catalog.current_setting('max_prepared_transactions')", shape);
	int max = atoi(remote::ValueText(conn, res, 0, 0, shape));
	PQclear(res);
	if (max <= 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("server \"%s\" does not allow prepared transactions, which sync mode needs", server),
		                errdetail("max_prepared_transactions is 0 on the modern database; each sync transaction is "
		                          "prepared there before the local commit (two-phase commit)."),
		                errhint("Set max_prepared_transactions on the modern server to at least its "
		                        "max_connections and restart it, or use mode => 'async'.")));
}

void
CheckProgressPrivilege(const char *server, PGconn *conn)
{
	/*
	 * What the bootstrap the worker runs at every connection needs:
	 * CREATE SCHEMA IF NOT EXISTS checks CREATE on the database even when
	 * the schema exists, CREATE TABLE IF NOT EXISTS checks CREATE on the
	 * schema, and ALTER TABLE ... ADD COLUMN IF NOT EXISTS needs ownership.
	 */
	const remote::Shape shape = {"the progress table privilege check", 5, 1, 1};
	PGresult *res = remote::QueryShaped(
	    conn, "SELECT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE'), "
	          "n.oid IS NULL OR (pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND "
	          "pg_catalog.has_schema_privilege(n.oid, 'CREATE')), "
	          "c.oid IS NULL OR pg_catalog.pg_has_role(c.relowner, 'USAGE'), "
	          "pg_catalog.quote_ident(pg_catalog.current_database()::text), pg_catalog.quote_ident(current_user::text) "
	          "FROM (SELECT 1) AS one "
	          "LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = '_dualwrite' "
	          "LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = 'applied'",
	    shape);
	bool db_create = remote::ValueBool(conn, res, 0, 0, shape);
	bool schema_ok = remote::ValueBool(conn, res, 0, 1, shape);
	bool owner_ok = remote::ValueBool(conn, res, 0, 2, shape);
	char *db = pstrdup(remote::ValueText(conn, res, 0, 3, shape));
	char *user = pstrdup(remote::ValueText(conn, res, 0, 4, shape));
	PQclear(res);
	if (!db_create)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("modern role %s may not create the progress table on server \"%s\"", user, server),
		                errdetail("The worker keeps its progress in _dualwrite.applied and runs CREATE SCHEMA IF NOT "
		                          "EXISTS _dualwrite when it connects, which needs CREATE on the database."),
		                errhint("On the modern database run: GRANT CREATE ON DATABASE %s TO %s;", db, user)));
	if (!schema_ok)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("modern role %s may not use schema _dualwrite on server \"%s\"", user, server),
		                errdetail("The worker keeps its progress in _dualwrite.applied."),
		                errhint("On the modern database run: GRANT USAGE, CREATE ON SCHEMA _dualwrite TO %s;", user)));
	if (!owner_ok)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("modern role %s does not own the progress table _dualwrite.applied on server \"%s\"",
		                       user, server),
		                errdetail("The worker upgrades the table when it connects, which needs ownership."),
		                errhint("On the modern database run: ALTER TABLE _dualwrite.applied OWNER TO %s;", user)));
}

} // namespace pgdw::config

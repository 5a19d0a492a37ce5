/*-------------------------------------------------------------------------
 * enable.cpp
 *    dualwrite.enable() and dualwrite.disable(): flag a table after
 *    validating it against its modern target, and unflag it;
 *    dualwrite.set_delivery_role(): choose whose user mapping delivers.
 *
 * enable() checks everything before it changes anything, and all of its
 * changes (catalog rows, triggers) are in the caller's transaction: a
 * failed check leaves no trace.  It connects to the modern side through
 * the user mapping of the server's delivering role (dualwrite.servers; the
 * caller for the first table of a server) and checks, with check.cpp,
 * that the target table, its columns, their types and a unique key exist
 * and that the delivering role has the privileges delivery needs there.
 *
 * These functions hold only trivially destructible locals and call
 * PostgreSQL directly.
 *
 * IDENTIFICATION  src/config/enable.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "config/catalog.hpp"
#include "config/modern_checks.hpp"
#include "config/ddl_guard.hpp"
#include "config/guc.hpp"
#include "remote/connection.hpp"
#include "shmem/shmem.hpp"
#include "sync/sync.hpp"

extern "C" {
#include "access/reloptions.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_foreign_server.h"
#include "nodes/bitmapset.h"
#include "utils/acl.h"
#include "utils/jsonb.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
}

namespace pgdw::config {

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

/*
 * Who delivers the tables of `server`: its role in dualwrite.servers, or the
 * caller if it has none yet (the caller then becomes it).  A non-superuser
 * may not send a table to a server that delivers as a role whose
 * privileges it does not have: the table would ship under another role's
 * credentials.  Call with LockServers() held.
 */
static Oid
ChooseDeliveringRole(const char *server, const char *table, bool *is_new)
{
	Oid role = DeliveringRole(server);
	/* A dropped role that delivers nothing is stale: replace it. */
	if (OidIsValid(role) && !RoleExists(role) && !ServerInUse(server))
		role = InvalidOid;
	*is_new = !OidIsValid(role);
	if (*is_new)
		return GetUserId();
	if (!superuser() && (!RoleExists(role) || !has_privs_of_role(GetUserId(), role)))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("server \"%s\" delivers as role \"%s\"", server, RoleDisplay(role)),
		                errdetail("Every table of a server is delivered through the user mapping of one role; table "
		                          "\"%s\" would be shipped under the credentials of \"%s\".",
		                          table, RoleDisplay(role)),
		                errhint("Have role \"%s\" or a superuser enable the table, or send it to another server with "
		                        "target_server => '...'.",
		                        RoleDisplay(role))));
	return role;
}

/*
 * What the caller needs before enable() takes any lock: to own the table
 * (or be a superuser: CREATE TRIGGER needs as much) and USAGE on the
 * server it would send the table to.
 */
static void
CheckCallerPrivileges(Oid relid, ForeignServer *fs)
{
	const char *relname = get_rel_name(relid);
	if (relname == nullptr)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied to enable dual write of table \"%s\"", relname),
		                errdetail("Only the owner of the table or a superuser may enable it."),
		                errhint("Have the owner of table \"%s\" call dualwrite.enable().", relname)));
	if (pg_foreign_server_aclcheck(fs->serverid, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied for foreign server %s", fs->servername),
		                errdetail("Enabling table \"%s\" for server \"%s\" needs USAGE on the server.", relname,
		                          fs->servername),
		                errhint("A superuser or the server's owner can run GRANT USAGE ON FOREIGN SERVER %s TO ...;",
		                        quote_identifier(fs->servername))));
}

/* Everything delivery needs on the modern side that is not per table. */
static void
CheckServerPrivileges(const char *server, PGconn *conn)
{
	CheckTempPrivilege(server, conn);
	CheckProgressPrivilege(server, conn);
}

static void
CheckModeArguments(const char *mode, const char *sync_failure)
{
	if (strcmp(mode, "async") != 0 && strcmp(mode, "sync") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid mode \"%s\"", mode),
		                errhint("Valid modes are \"async\" and \"sync\".")));
	if (sync_failure != nullptr && guc::SyncFailureByName(sync_failure) < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid sync_failure \"%s\"", sync_failure),
		                errhint("Valid values are \"error\" and \"queue\", or NULL for the setting "
		                        "dualwrite.sync_failure.")));
	if (sync_failure != nullptr && strcmp(mode, "sync") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("sync_failure applies to mode \"sync\" only"),
		                errhint("Pass mode => 'sync', or leave sync_failure out.")));
}

/*
 * Switch the flagged table `rel` (locked ShareRowExclusive: no writer is
 * in the middle of a change of it) to `mode`.  False, changing nothing,
 * if it already has that mode and policy and !always.
 *
 * Why no change is lost or reordered: the row trigger is replaced under
 * the lock, so every change before it was captured the old way and every
 * change after it the new way.  async -> sync: the changes queued so far
 * were committed before any sync transaction of the table can ship, and
 * the table is marked as having a backlog until the worker delivered
 * them, so no sync transaction overtakes them (sync_tables.hpp).
 * sync -> async: a sync transaction is shipped (and, with
 * sync_remote_commit = wait, committed on the modern side) before its
 * locks go, so it precedes every change queued after the switch; with
 * nowait its prepared transaction's row locks order the worker's apply
 * after it.
 */
static bool
SwitchMode(Relation rel, const char *mode, const char *sync_failure, bool always)
{
	Oid relid = RelationGetRelid(rel);
	int n = 0;
	TableConfig **cfgs = LoadAll(&n, relid);
	if (n != 1)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
		                errmsg("table \"%s\" is not enabled for dual write", RelationGetRelationName(rel)),
		                errhint("Call dualwrite.enable() first.")));
	const TableConfig *cfg = cfgs[0];
	bool sync = strcmp(mode, "sync") == 0;
	bool same_policy = (sync_failure == nullptr) == (cfg->sync_failure == nullptr) &&
	                   (sync_failure == nullptr || strcmp(sync_failure, cfg->sync_failure) == 0);
	if (!always && sync == cfg->sync && same_policy)
		return false;
	if (sync && !cfg->sync) {
		PGconn *conn = remote::Connect(cfg->target_server, cfg->deliver_as); /* closed at transaction end */
		CheckPreparedTransactions(cfg->target_server, conn);
		remote::Disconnect(conn);
	}
	SetModeRow(relid, mode, sync_failure);
	if (sync != cfg->sync)
		ReplaceRowTrigger(rel, sync);
	if (sync && !cfg->sync)
		sync::MarkQueuedInThisTransaction(relid);
	return true;
}

/* dualwrite.set_mode(tbl, mode, sync_failure): see SwitchMode. */
static Datum
SetMode(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("table and mode must not be null")));
	Oid relid = PG_GETARG_OID(0);
	const char *mode = text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *sync_failure = PG_ARGISNULL(2) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(2));
	CheckModeArguments(mode, sync_failure);
	const char *relname = get_rel_name(relid);
	if (relname == nullptr)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
	if (!superuser() && !pg_class_ownercheck(relid, GetUserId()))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied to change the mode of table \"%s\"", relname),
		                errdetail("Only the owner of the table or a superuser may call dualwrite.set_mode() on it.")));
	Relation rel = table_open(relid, ShareRowExclusiveLock);
	(void) SwitchMode(rel, mode, sync_failure, true);
	table_close(rel, NoLock);
	PG_RETURN_VOID();
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

	const char *sync_failure = PG_NARGS() > 5 && !PG_ARGISNULL(5) ? text_to_cstring(PG_GETARG_TEXT_PP(5)) : nullptr;
	CheckModeArguments(mode, sync_failure);
	bool sync = strcmp(mode, "sync") == 0;
	if (server == nullptr || server[0] == '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("no target server given"),
		                errhint("Pass target_server => 'name', or set dualwrite.target_server.")));
	ForeignServer *fs = GetForeignServerByName(server, true);
	if (fs == nullptr)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("server \"%s\" does not exist", server),
		                errhint("Create it with CREATE SERVER %s FOREIGN DATA WRAPPER dualwrite OPTIONS (host '...', "
		                        "port '...', dbname '...') and a USER MAPPING for it.",
		                        quote_identifier(server))));

	/* Privileges first, so a role that may not enable the table cannot
	 * make us lock it (ownership and ACLs are read without a lock). */
	CheckCallerPrivileges(relid, fs);

	/* The lock CREATE TRIGGER takes, taken first so it is never upgraded. */
	Relation rel = table_open(relid, ShareRowExclusiveLock);
	CheckRelation(rel);
	if (IsEnabled(relid)) {
		/* enable() again with another mode or failure policy is set_mode(). */
		if (target_table == nullptr && column_map == nullptr && PG_ARGISNULL(4) &&
		    SwitchMode(rel, mode, sync_failure, false)) {
			table_close(rel, NoLock);
			PG_RETURN_VOID();
		}
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
		                errmsg("table \"%s\" is already enabled for dual write", RelationGetRelationName(rel)),
		                errhint("Call dualwrite.set_mode() to switch its mode, or dualwrite.disable() first to "
		                        "change its other settings.")));
	}

	LockServers();
	bool new_role;
	Oid deliver_as = ChooseDeliveringRole(server, RelationGetRelationName(rel), &new_role);

	const char *untrusted = ServerTrustProblem(server, deliver_as);
	if (untrusted != nullptr)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("%s", untrusted),
		                errhint("ALTER SERVER %s OWNER TO the delivering role or a superuser.", quote_identifier(server))));

	TableConfig *cfg = BuildTableConfig(rel, server, target_table, column_map);
	ddl::CheckPartitionKeys(rel, cfg, ShareRowExclusiveLock);
	cfg->deliver_as = deliver_as;
	/* Validated as it will be delivered: through the delivering role's mapping. */
	PGconn *conn = remote::Connect(server, deliver_as); /* closed at transaction end */
	CheckTarget(RelationGetRelationName(rel), cfg, conn);
	CheckTargetPrivileges(cfg, conn);
	CheckServerPrivileges(server, conn);
	if (sync)
		CheckPreparedTransactions(server, conn);
	remote::Disconnect(conn);

	if (new_role)
		SetDeliveringRole(server, deliver_as);
	InsertTableRow(relid, mode, sync_failure, cfg, column_map);
	CreateCaptureTriggers(rel, sync);
	/* Nothing of a newly flagged table is queued yet (sync_tables.hpp). */
	shm::ForgetBacklog(relid);
	table_close(rel, NoLock);
	shm::WakeLauncher();
	PG_RETURN_VOID();
}

/*
 * dualwrite.set_delivery_role(server, role): deliver every table of the
 * server through `role`'s user mapping from the worker's next round on.
 * Superuser only (it chooses whose credentials ship the rows).  The
 * modern side is validated through that mapping first, for every table of
 * the server, so a mistake does not stop delivery.
 */
static Datum
SetDeliveryRole(FunctionCallInfo fcinfo)
{
	const char *server = NameStr(*PG_GETARG_NAME(0));
	Oid role = PG_GETARG_OID(1);
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied to set the delivering role of server \"%s\"", server),
		                errdetail("Only superusers choose whose user mapping delivers the changes.")));
	if (GetForeignServerByName(server, true) == nullptr)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("server \"%s\" does not exist", server)));
	if (!RoleExists(role))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("role with OID %u does not exist", role)));

	LockServers();
	PGconn *conn = remote::Connect(server, role); /* closed at transaction end */
	CheckServerPrivileges(server, conn);
	int n;
	TableConfig **cfgs = LoadAll(&n);
	for (int i = 0; i < n; i++) {
		if (strcmp(cfgs[i]->target_server, server) != 0)
			continue;
		CheckTarget(get_rel_name(cfgs[i]->relid), cfgs[i], conn);
		CheckTargetPrivileges(cfgs[i], conn);
	}
	remote::Disconnect(conn);
	SetDeliveringRole(server, role);
	shm::WakeLauncher();
	PG_RETURN_VOID();
}

static Datum
Disable(FunctionCallInfo fcinfo)
{
	Oid relid = PG_GETARG_OID(0);
	/* The catalog is changed as the extension's owner: the caller's own
	 * right comes first (and before any lock). */
	if (!superuser() && !pg_class_ownercheck(relid, GetUserId()))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("must be owner of table %s to stop dual-writing it",
		                       get_rel_name(relid) != nullptr ? quote_identifier(get_rel_name(relid)) : "?"),
		                errdetail("Only the table's owner or a superuser may call dualwrite.disable() on it.")));
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
PG_FUNCTION_INFO_V1(dualwrite_set_delivery_role);
PG_FUNCTION_INFO_V1(dualwrite_set_mode);

PGDLLEXPORT Datum
dualwrite_set_mode(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::SetMode(fcinfo); });
}

PGDLLEXPORT Datum
dualwrite_set_delivery_role(PG_FUNCTION_ARGS)
{
	return pgdw::pg_entry([&] { return pgdw::config::SetDeliveryRole(fcinfo); });
}

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

/*-------------------------------------------------------------------------
 * catalog.hpp
 *    The flagged-table catalog (dualwrite.tables), the delivering role of
 *    each target server (dualwrite.servers), and the shape of each table's
 *    delivery: which columns go where, which form the key, whose user
 *    mapping ships it.
 *
 * All structures are palloc'd in the current memory context; functions
 * raise PostgreSQL errors.
 *
 * IDENTIFICATION  src/config/catalog.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

extern "C" {
#include "utils/jsonb.h"
}

namespace pgdw::config {

/* One legacy column that is sent. */
struct ColumnConfig {
	AttrNumber attnum;       /* in the flagged (parent) table */
	const char *legacy_name;
	const char *modern_name;
	const char *type_name;   /* pg_type.typname of the (base) type */
	char type_category;      /* pg_type.typcategory */
	const char *type_display; /* format_type, for messages */
	bool is_key;
};

/* How one flagged table is delivered. */
struct TableConfig {
	Oid relid;
	const char *target_server;
	const char *target_schema;
	const char *target_name;
	const char *target_display; /* schema.name, quoted as needed */
	Oid deliver_as;             /* dualwrite.servers: whose user mapping delivers
	                             * (InvalidOid if the server has no row) */
	int ncolumns;
	ColumnConfig *columns;      /* sent columns, in attnum order */
	bool paused;                /* dualwrite.pause(): its delivery waits */
	bool sync;                  /* mode = 'sync' */
	const char *sync_failure;   /* 'error' | 'queue', or NULL: dualwrite.sync_failure */
	const char *problem;        /* why the table cannot be delivered now (its key, or its
	                             * configuration no longer fits the table), or NULL */
};

/*
 * Work out the delivery shape of `rel`: its non-generated columns renamed or
 * left out by column_map, its key, and the target name (target_table, or the
 * legacy schema and name).  The key is `key` (the attribute numbers
 * dualwrite.tables.key_attnums recorded) when nkey >= 0, else the table's
 * current replica-identity key.  Raises on a bad map; a key that is empty or
 * names a column no longer sent sets problem.
 */
TableConfig *BuildTableConfig(Relation rel, const char *server, const char *target_table, Jsonb *column_map,
                              const int16 *key = nullptr, int nkey = -1);

/* "a, b" — the key's legacy column names, for messages. */
const char *KeyColumnList(const TableConfig *cfg);

bool IsEnabled(Oid relid);
/* dualwrite.tables.paused of a flagged table; returns the previous value,
 * or raises if the table is not flagged. */
bool SetPaused(Oid relid, bool paused);
void InsertTableRow(Oid relid, const char *mode, const char *sync_failure, const TableConfig *cfg, Jsonb *column_map);
/* sync: the row trigger gets the argument 'sync' (capture/trigger.cpp). */
void CreateCaptureTriggers(Relation rel, bool sync);
/* Replace the row trigger for a new mode (dualwrite.set_mode). */
void ReplaceRowTrigger(Relation rel, bool sync);
/* Set mode and sync_failure of a flagged table's catalog row. */
void SetModeRow(Oid relid, const char *mode, const char *sync_failure);
/* Delete the catalog row; returns the number of undelivered changes, or -1 if not enabled. */
int64 DeleteTableRow(Oid relid);
void DropCaptureTriggers(Relation rel);
/* A partition created or attached under a flagged table: give it (and its
 * own partitions) the TRUNCATE trigger, which is not cloned like row
 * triggers are.  Idempotent. */
void EnsureTruncateTriggers(Oid relid);

/* Every flagged table's configuration (relations are opened with AccessShareLock).
 * A table whose configuration no longer fits it (a renamed column that
 * column_map names, ...) gets `problem` set instead of raising: one
 * table's DDL must not stop the delivery of the others. */
TableConfig **LoadAll(int *count, Oid only = InvalidOid);

/*
 * The delivering role of `server` from dualwrite.servers: InvalidOid if it
 * has no row.  The OID may name a role dropped since (see RoleExists).
 */
Oid DeliveringRole(const char *server);

/* Record (insert or replace) the delivering role of `server`. */
void SetDeliveringRole(const char *server, Oid role);

/* Does dualwrite.tables send any table to `server`? */
bool ServerInUse(const char *server);

/* Does a role with this OID exist (InvalidOid: no)? */
bool RoleExists(Oid role);

/* Why `server` cannot be trusted with `deliver_as`'s user mapping (its
 * owner is neither a superuser nor that role), or NULL. */
const char *ServerTrustProblem(const char *server, Oid deliver_as);

/* The role's name, or "role with OID n" once it was dropped (for messages). */
const char *RoleDisplay(Oid role);

/* Run as the extension's owner (the owner of schema dualwrite) until
 * Restore(): pg_dualwrite's own tables are changed that way, never with
 * the caller's rights (see catalog.cpp).  An error in between leaves the
 * switch to the transaction's abort, which restores the user. */
struct OwnerScope {
	Oid user;
	int sec;
};
OwnerScope AsExtensionOwner();
void Restore(OwnerScope scope);

/*
 * Serialise enable() and set_delivery_role(): the first enable() onto a
 * server decides its delivering role, so two of them must not race.
 */
void LockServers();

} // namespace pgdw::config

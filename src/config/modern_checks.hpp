/*-------------------------------------------------------------------------
 * modern_checks.hpp
 *    Validation of the modern side, shared by dualwrite.enable(),
 *    dualwrite.set_delivery_role() and the dualwrite.check() preflight.
 *
 * Each function checks one thing over a connection made with the
 * delivering role's user mapping and raises the problem it finds (with a
 * hint that says what to create or GRANT).  enable() lets the error end
 * the call; check() runs each one in a subtransaction and turns the error
 * into a row.  They hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/config/modern_checks.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "config/catalog.hpp"

namespace pgdw::config {

/* Target table of `cfg` exists, is a table, has the sent columns with
 * compatible types and a unique index on exactly the key. */
void CheckTarget(const char *legacy_name, const TableConfig *cfg, PGconn *conn);

/* The modern role may use the target's schema and has SELECT, INSERT,
 * UPDATE, DELETE and TRUNCATE on the target table. */
void CheckTargetPrivileges(const TableConfig *cfg, PGconn *conn);

/* The modern role may create temporary tables (each batch is staged in one). */
void CheckTempPrivilege(const char *server, PGconn *conn);

/* Sync mode prepares its remote transactions: the modern server must
 * allow prepared transactions (max_prepared_transactions > 0). */
void CheckPreparedTransactions(const char *server, PGconn *conn);

/* The modern role may run the progress-table bootstrap (_dualwrite.applied). */
void CheckProgressPrivilege(const char *server, PGconn *conn);

} // namespace pgdw::config

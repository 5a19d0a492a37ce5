/*-------------------------------------------------------------------------
 * ddl_guard.hpp
 *    DDL on flagged tables: the event triggers that refuse what would
 *    break delivery (see ddl_guard.cpp), and the replica-identity key rule
 *    shared with dualwrite.enable().
 *
 * Functions raise PostgreSQL errors; results are palloc'd.
 *
 * IDENTIFICATION  src/config/ddl_guard.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "config/catalog.hpp"

namespace pgdw::config::ddl {

/*
 * The first relation among `relids` (the flagged table `root` and/or its
 * partitions) whose current replica-identity key is not the columns of
 * `key` (attribute numbers of root), described for an errdetail; NULL if
 * they all match.
 */
const char *IdentityKeyProblem(Oid root, const int16 *key, int nkey, List *relids);

/*
 * dualwrite.enable(): every partition of `rel` (locked on the way in
 * `lockmode`, the lock enable holds on rel) must be keyed like `rel`, whose
 * key is the key columns of `cfg`: capture tells a key update by the key
 * of the partition a row is in.  Raises otherwise.
 */
void CheckPartitionKeys(Relation rel, const TableConfig *cfg, LOCKMODE lockmode);

} // namespace pgdw::config::ddl

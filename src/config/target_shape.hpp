/*-------------------------------------------------------------------------
 * target_shape.hpp
 *    The modern table a flagged table's configuration describes, as the
 *    SQL builders of src/core (apply_sql.hpp) take it: target schema and
 *    name, the sent columns by their modern names, the key.  One place for
 *    the worker's, the sync path's and the backfill's statements.
 *
 * C++: call it inside pg_entry() / pg_string() (boundary.hpp).
 *
 * IDENTIFICATION  src/config/target_shape.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "config/catalog.hpp"
#include "core/apply_sql.hpp"

namespace pgdw::config {

/* The target's shape; `stage` names the session's staging table for it. */
core::TargetShape TargetShapeOf(const TableConfig &cfg);

} // namespace pgdw::config

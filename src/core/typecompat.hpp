/*-------------------------------------------------------------------------
 * typecompat.hpp
 *    Whether a legacy column may be delivered into a modern column.
 *
 * Values travel as text (COPY text format), so "compatible" means: the
 * modern column's input function accepts the legacy column's output
 * without silently changing its meaning.
 *
 * IDENTIFICATION  src/core/typecompat.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include <string>

namespace pgdw::core {

struct ColumnType {
	std::string name; /* pg_type.typname (of the base type for domains) */
	char category;    /* pg_type.typcategory */
};

/*
 * Same type name: compatible.  Modern string column (category S): accepts
 * any text.  Both numeric (category N): compatible (a value out of range
 * fails at apply time, visibly).  Anything else, e.g. timestamptz into
 * timestamp (would drop the offset) or int into boolean: incompatible.
 */
bool TypesCompatible(const ColumnType &legacy, const ColumnType &modern);

/*
 * May reconcile compare keys of these types (format_type names of the base
 * types) by range and by text?  Both sides must order the values alike
 * and print them alike: the same type, or two integer types, or text and
 * varchar (whose collations the caller compares).
 */
bool KeyOrderCompatible(const std::string &legacy, const std::string &modern);

} // namespace pgdw::core


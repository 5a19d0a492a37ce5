/*-------------------------------------------------------------------------
 * typecompat.cpp
 *    Column type compatibility rule (see typecompat.hpp).
 *
 * IDENTIFICATION  src/core/typecompat.cpp
 *-------------------------------------------------------------------------
 */
#include "core/typecompat.hpp"

namespace pgdw::core {

bool
TypesCompatible(const ColumnType &legacy, const ColumnType &modern)
{
	if (legacy.name == modern.name)
		return true;
	if (modern.category == 'S')
		return true;
	return legacy.category == 'N' && modern.category == 'N';
}

static int
OrderFamily(const std::string &t)
{
	if (t == "smallint" || t == "integer" || t == "bigint")
		return 1;
	if (t == "text" || t == "character varying")
		return 2;
	return 0;
}

bool
KeyOrderCompatible(const std::string &legacy, const std::string &modern)
{
	if (legacy == modern)
		return true;
	int f = OrderFamily(legacy);
	return f != 0 && f == OrderFamily(modern);
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

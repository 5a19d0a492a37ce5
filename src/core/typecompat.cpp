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

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

/*-------------------------------------------------------------------------
 * failure_kind.cpp
 *    Classifying delivery errors (see failure_kind.hpp).
 *
 * IDENTIFICATION  src/core/failure_kind.cpp
 *-------------------------------------------------------------------------
 */
#include "core/failure_kind.hpp"

#include <cstring>

namespace pgdw::core {

bool
IsTransientSqlState(const char *s)
{
	if (s == nullptr || std::strlen(s) != 5)
		return true;
	/* Whole classes. */
	static const char *const classes[] = {
		"08", /* connection exception */
		"40", /* transaction rollback: serialization failure, deadlock */
		"53", /* insufficient resources: disk full, out of memory, too many connections */
		"57", /* operator intervention: cancel, admin shutdown, crash shutdown */
		"58", /* system error: I/O */
		"25", /* invalid transaction state (e.g. read-only transaction on a standby) */
		"XX", /* internal error */
	};
	for (const char *c : classes)
		if (std::strncmp(s, c, 2) == 0)
			return true;
	/* Single conditions of other classes. */
	static const char *const states[] = {
		"55P03", /* lock_not_available (lock_timeout) */
		"55006", /* object_in_use */
		"HV00N", /* fdw_unable_to_establish_connection */
	};
	for (const char *st : states)
		if (std::strcmp(s, st) == 0)
			return true;
	return false;
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

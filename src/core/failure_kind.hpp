/*-------------------------------------------------------------------------
 * failure_kind.hpp
 *    Is a delivery error worth retrying as it is, or does it belong to a
 *    table that must be set aside so the others keep flowing?
 *
 * Transient: the same work can succeed later without anyone changing
 * anything (the connection, a serialization failure or deadlock, a lock
 * or statement timeout, resources, an operator's cancel or shutdown).
 * Everything else that one table's statement raised (a constraint, a
 * permission, a missing column, bad data) is that table's problem: the
 * table is held in a stream of its own, retried with backoff, and the
 * server's other tables go on (guarantee 5's "other keys keep flowing").
 *
 * IDENTIFICATION  src/core/failure_kind.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

namespace pgdw::core {

/* sqlstate: the five-character SQLSTATE ("08006"); anything else (NULL,
 * wrong length) counts as transient, the safe side: nothing is held. */
bool IsTransientSqlState(const char *sqlstate);

} // namespace pgdw::core

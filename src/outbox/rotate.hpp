/*-------------------------------------------------------------------------
 * rotate.hpp
 *    Reclaiming outbox space without VACUUM: capture writes to one of three
 *    generations; the worker switches capture to the next (empty) one every
 *    dualwrite.outbox_rotate_interval and truncates an old one once all of
 *    its changes are delivered.
 *
 * Why this loses nothing: TRUNCATE runs only under an AccessExclusiveLock
 * taken with a conditional (non-waiting) request.  Every transaction that
 * inserted into the generation holds RowExclusiveLock until it ends, so
 * once we hold the lock every row in it is committed or aborted, and we
 * check under that lock, with a fresh snapshot, that none is pending.  A
 * writer that still believes the old generation is current simply waits
 * for the lock and then inserts into the (now empty) table, where the next
 * round finds it: the worker reads all generations, always.
 *
 * IDENTIFICATION  src/outbox/rotate.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::outbox {

/* Truncate drained generations and rotate if due.  Runs its own transaction.
 * Returns the number of generations truncated. */
int Maintain();

} // namespace pgdw::outbox

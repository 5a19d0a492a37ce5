/*-------------------------------------------------------------------------
 * ship.hpp
 *    The modern side of a backfill run: one connection (as the server's
 *    delivering role, session_replication_role = replica like the worker),
 *    and per chunk one remote transaction that receives the chunk's rows
 *    while they are read.
 *
 * A chunk goes as a COPY straight into the target under a savepoint,
 * streamed as the rows are read (the modern side inserts while the legacy
 * side reads and locks the next ones).  If a key is there already (a
 * captured change delivered it, or an earlier try of the same chunk), the
 * COPY fails on the duplicate and the chunk, kept in memory, goes through
 * a staging table and INSERT ... ON CONFLICT DO UPDATE instead: the same
 * statements as the worker's (core/apply_sql.hpp), so the result is the
 * same as applying the copy as a captured insert.  A deadlock or a
 * serialization failure against the worker's own remote transaction on
 * the same keys is retried a few times.  The order of all this against
 * captured changes: backfill.hpp.
 *
 * Memory: one chunk's COPY text (at most dualwrite.batch_bytes; the chunk
 * stops early above it, chunk.cpp), in file-static buffers, so PostgreSQL
 * errors may longjmp through the callers (boundary.hpp).
 *
 * IDENTIFICATION  src/backfill/ship.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "config/catalog.hpp"

namespace pgdw::backfill {

/* Connect for a run on cfg's table; the connection survives the chunks'
 * commits and closes if a transaction aborts.  Raises on failure. */
void OpenShip(const config::TableConfig *cfg);
void CloseShip();

/* Start the chunk's remote transaction and its COPY. */
void BeginShipChunk();

/* Add one row: the sent columns' values in column_map order (output
 * functions `out`, text output pinned by the caller). */
void ShipRow(const Datum *values, const bool *nulls, FmgrInfo *out, int ncolumns);

/* Send the rows added since the last call (the modern side works on them
 * while the caller reads more). */
void ShipPending();

/* Bytes of COPY text of the chunk so far. */
size_t ShippedBytes();

/* End the COPY and commit the chunk on the modern side (through the upsert
 * if a key was there already).  Returns once the COMMIT is confirmed. */
void CommitShipChunk();

} // namespace pgdw::backfill

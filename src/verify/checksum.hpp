/*-------------------------------------------------------------------------
 * checksum.hpp
 *    Table checksums on both sides: the legacy table in C++ (canonical.hpp),
 *    the modern table in generated plain SQL (core::TableChecksumSql).
 *    Both give (row count, sum of row SHA-256 digests mod 2^256): equal
 *    figures mean equal row sets with overwhelming probability, and the
 *    figures of disjoint key ranges add up, so ranges can be computed in
 *    any order (reconcile splits only ranges whose figures differ).
 *
 * These raise PostgreSQL errors; callers hold only trivially destructible
 * locals.
 *
 * IDENTIFICATION  src/verify/checksum.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "config/catalog.hpp"
#include "pg/pg.hpp"

namespace pgdw::verify {

struct Checksum {
	int64 rows;
	unsigned char sum[32]; /* big-endian, mod 2^256 */
};

/* The flagged table's configuration; a clear error if it is not flagged
 * or its configuration no longer fits. */
config::TableConfig *LoadFlaggedTable(Oid relid);

/* Figures of the legacy table, optionally of the key range [from, to)
 * (text[] of key values, NULL: unbounded). */
Checksum LegacyChecksum(const config::TableConfig *cfg, ArrayType *from, ArrayType *to);

/* The plain SQL that computes the same figures on the modern table. */
char *ModernChecksumSql(const config::TableConfig *cfg, ArrayType *from, ArrayType *to);

/* Run ModernChecksumSql over the server's delivering connection. */
Checksum RemoteChecksum(const config::TableConfig *cfg, ArrayType *from, ArrayType *to);

} // namespace pgdw::verify

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

/* The building blocks reconcile uses: a condition over alias t (legacy or
 * modern column names) for [from, to) or, when from == to, for one key;
 * the figures of the rows it selects on either side; a connection to the
 * modern side owned by the transaction.  bytes (may be NULL) is increased
 * by what crosses the network. */
char *RangeCondition(const config::TableConfig *cfg, char **from, char **to, bool modern);
Checksum LegacyFigures(const config::TableConfig *cfg, const char *cond);
/* The figures per group: `group` is an int expression over alias t in
 * [0, ngroups) (NULL: one group), out[g] its figures (reconcile's buckets). */
void LegacyGroupedFigures(const config::TableConfig *cfg, const char *cond, const char *group, int ngroups,
                          Checksum *out);
char *ModernFiguresSql(const config::TableConfig *cfg, const char *cond);
PGconn *ConnectModern(const config::TableConfig *cfg);
Checksum RemoteFigures(const config::TableConfig *cfg, PGconn *conn, const char *cond, int64 *bytes);

struct ColumnCodec;
/* Codecs of the delivered columns, sorted; codec.source = index in cfg->columns. */
ColumnCodec *TableCodecs(Relation rel, const config::TableConfig *cfg);

} // namespace pgdw::verify

/*-------------------------------------------------------------------------
 * reconcile.hpp
 *    The parts of dualwrite.reconcile() (reconcile.cpp is the entry):
 *    comparing rows (leaf.cpp), bisecting a whole table (bisect.cpp),
 *    comparing the changed keys only (incremental.cpp), the fast bucket
 *    figures (fingerprint.cpp) and repairing
 *    (repair.cpp).
 *
 * A run finds differences in two steps: candidates (from bisection or
 * from the changed keys), then Recheck(): every candidate is compared
 * again after dualwrite.wait_for_delivery(), so a change that was in
 * flight is not reported (live writes: no false positives).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/verify/reconcile.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "verify/checksum.hpp"

namespace pgdw::verify {

struct Difference {
	char **key; /* key values as text, one per key column */
	char kind;  /* 'm'issing, 'e'xtra, 'd'ifferent */
	char **columns;
	int ncolumns;
};

struct Run {
	const config::TableConfig *cfg;
	ColumnCodec *codecs; /* sorted; source = index in cfg->columns */
	int nkey;
	int *keycols; /* indexes in cfg->columns of the key columns */
	PGconn *conn;
	bool fingerprints;       /* buckets compared by fingerprints (else SHA-256 figures) */
	bool *modern_plain_text; /* per codec: the modern column is text or varchar */
	int64 bytes;         /* across the network (approximate) */
	int64 rows_compared; /* legacy rows (full) or keys (incremental) */
	Difference *diffs;
	int ndiffs, maxdiffs;
};

void AddDiff(Run *run, char **key, char kind, char **columns, int ncolumns);

/* leaf.cpp: compare the rows of the key range [from, to) (from == to: one
 * key), or of a list of keys, on both sides; differences go to `out`. */
void CompareRange(Run *run, char **from, char **to, Run *out);
void CompareKeys(Run *run, char ***keys, int nkeys, Run *out);
/* Keep only the differences that persist after delivery. */
void Recheck(Run *run);

/* bisect.cpp: candidates of the whole table (a full run); counts the
 * legacy rows in rows_compared. */
void Bisect(Run *run);

/* fingerprint.cpp: the fast bucket figures (core/fingerprint.hpp).
 * ChooseFigures() sets run->fingerprints (dualwrite.reconcile_figures,
 * the modern server's version) and reads what it needs of the modern
 * columns; FingerprintQuery() is the query for either side (text columns
 * g, row_count, figure); LegacyFingerprints() runs it on legacy, out[g]
 * per group; ParseFingerprint() reads one modern result row. */
void ChooseFigures(Run *run);
char *FingerprintQuery(const Run *run, bool modern, const char *cond, const char *group);
void LegacyFingerprints(const Run *run, const char *cond, const char *group, int ngroups, Checksum *out);
bool ParseFingerprint(const char *count, const char *figure, Checksum *out);

/* repair.cpp: append the repair of d to the outbox (caller's transaction). */
void Repair(Run *run, const Difference &d);

/* The modern figures of one row of a result: (count text, hex sum). */
bool ParseFigures(const char *count, const char *hex, Checksum *out);

/* Legacy row digest: the canonical row of the cfg->ncolumns values of
 * `tup` at columns offset+1.. (codec.source order) hashed into digest;
 * buf is scratch. */
void RowDigest(const ColumnCodec *codecs, int ncolumns, HeapTuple tup, TupleDesc desc, int offset, StringInfo buf,
               unsigned char digest[32]);

} // namespace pgdw::verify

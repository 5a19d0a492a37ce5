/*-------------------------------------------------------------------------
 * fingerprint.hpp
 *    The bucket fingerprints reconcile's bisection compares (verify/
 *    bisect.cpp): one query, the same on both sides (only the column
 *    names differ), that gives per bucket (row count, sum of 64-bit row
 *    fingerprints).  The canonical SHA-256 (canonical.hpp) stays the
 *    judge of single rows (leaf.cpp); fingerprints only decide which key
 *    ranges need a closer look.
 *
 * Why not the SHA-256 figures: the canonical row built in plain SQL costs
 * ~100 function calls a row (81k rows/s on this machine); a fingerprint is
 * one hash_record_extended() over the values themselves (~1M rows/s), so a
 * reconcile of equal tables costs one fast pass of each side.
 *
 * Why it is right.  A column's element is chosen so that its built-in
 * hash is a function of the CANONICAL value (equal canonical values give
 * equal fingerprints: equal tables are never suspected) and, distinct
 * canonical values differ unless the 64-bit hash collides (a difference is
 * missed with probability ~2^-64 per bucket compared):
 *    Int        ::int8     hashint8 (int2/int4/int8 hash alike anyway)
 *    Numeric    ::numeric  hash_numeric ignores scale: 1.50 = 1.5 = canonical
 *    Float      ::float8 and (= 0 AND sign bit set): hashfloat8 folds -0 into
 *               0 and every NaN into one, canonical keeps -0 apart
 *    Timestamp(tz), Date, Time, Bool   the value: their hashes are of the
 *               stored integer (the instant; no time zone enters)
 *    Text       the output text COLLATE "C" (jsonb's hash would equate 1.0
 *               and 1, enum hashes are of OIDs, a nondeterministic
 *               collation would equate 'a' and 'A'): format('%s'), or ::text
 *               where the type is text or varchar (the same bytes, cheaper)
 *    Bpchar     the text without trailing blanks, COLLATE "C"
 *    Bytea      the bytes
 *    Interval, arrays   the canonical field bytes (interval's hash equates
 *               1 mon and 30 days; array hashes ignore bounds)
 * A row's fingerprint mixes its elements (hash_record_extended) and then
 * once more (hashint8extended), so a bucket's sum does not decompose into
 * per-column sums (two rows swapping one column's values change it).
 * NULL is its own element value (hash_record gives it 0).  Needs
 * PostgreSQL 14+ on the modern side (hash_record_extended); older servers,
 * or dualwrite.reconcile_figures = sha256, use the SHA-256 figures.
 *
 * IDENTIFICATION  src/core/fingerprint.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "core/canonical.hpp"

#include <string>
#include <vector>

namespace pgdw::core {

struct FingerprintColumn {
	std::string modern_name; /* canonical order: by modern name, bytewise */
	std::string ref;         /* the column's name on the side queried */
	ValueKind kind;
	bool is_array;
	bool plain_text; /* text or varchar (or a domain over them): ::text is its output */
};

/*
 * A query over `relation` (quoted) returning text columns (g, row_count,
 * figure): one row per value of `group` (an int expression over alias t;
 * "" for one row g = '0', present even without rows); figure is the
 * decimal sum of the rows' fingerprints.  `where` is "" or a condition
 * over t.
 */
std::string FingerprintSql(const std::vector<FingerprintColumn> &cols, const std::string &relation,
                           const std::string &where, const std::string &group);

/* The decimal figure as a 128-bit two's complement big-endian integer (a
 * sum of at most 2^63 signed 64-bit values fits); false if malformed. */
bool ParseFigure128(const char *dec, unsigned char out[16]) noexcept;

} // namespace pgdw::core

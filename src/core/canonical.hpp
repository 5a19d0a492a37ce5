/*-------------------------------------------------------------------------
 * canonical.hpp
 *    The PostgreSQL-free half of the canonical row encoding that
 *    dualwrite.row_checksum/table_checksum hash (src/verify/) and that the
 *    generated SQL of dualwrite.checksum_sql reproduces on a modern
 *    database without pg_dualwrite.  README.md, "Canonical row form",
 *    is the normative description; in short:
 *
 *    row    = field(name) field(value) ... for each delivered column, in
 *             byte order of the MODERN column name (after column_map), so
 *             column order on either side does not matter;
 *    field  = 'N'                          for SQL NULL
 *           | 'V' len:uint32 big-endian bytes   otherwise (so '' != NULL);
 *    digest = SHA-256(row);
 *    table  = (row count, sum of all digests as 256-bit big-endian
 *             unsigned integers, mod 2^256).
 *
 *    The sum, not xor: xor cancels a digest that occurs twice (two equal
 *    rows of a keyless table, or one row missing on one side and present
 *    twice on the other look equal), a sum mod 2^256 does not; both are
 *    order-independent, so chunks can be summed in any order.  The SQL
 *    side sums eight 32-bit limbs in bigint (exact below 2^31 rows) and
 *    propagates carries once at the end.
 *
 *    Per value kind the payload is (both sides produce the same bytes):
 *      TEXT      the type's text output, UTF-8 (text, varchar, enum
 *                labels, jsonb's canonical output, uuid, json as stored...)
 *      BPCHAR    text output without trailing blanks (char(n) semantics)
 *      BOOL      "t" | "f"
 *      INT       decimal text
 *      NUMERIC   decimal text without trailing fractional zeros
 *                (1.50 -> 1.5, 2.000 -> 2), "NaN", "Infinity", "-Infinity"
 *      FLOAT     the 8 IEEE-754 bytes (big-endian) of the value as float8
 *                (float4 widens exactly); every NaN -> 7ff8000000000000;
 *                -0 and 0 DIFFER (an application can see the sign), as do
 *                Infinity and -Infinity
 *      TIMESTAMP(TZ)  microseconds since 1970-01-01 00:00 UTC (timestamptz:
 *                the instant, whatever zone wrote it), decimal; "infinity",
 *                "-infinity"
 *      DATE      days since 1970-01-01, decimal; "infinity", "-infinity"
 *      TIME      microseconds since midnight, decimal
 *      INTERVAL  "months:days:microseconds", decimal fields
 *      BYTEA     the bytes
 *      ARRAY     field(dims) field(element)... where dims is "" for an
 *                empty array, else "[lb:ub]" per dimension; elements in
 *                storage order, each by its element kind
 *    Domains are encoded as their base type.
 *
 * IDENTIFICATION  src/core/canonical.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgdw::core {

enum class ValueKind : char {
	Text = 'T',
	Bpchar = 'C',
	Bool = 'B',
	Int = 'I',
	Numeric = 'N',
	Float = 'F',
	Timestamp = 'S',   /* timestamp without time zone */
	Timestamptz = 'Z',
	Date = 'D',
	Time = 'H',
	Interval = 'V',
	Bytea = 'Y',
};

/* Field markers. */
constexpr unsigned char kFieldNull = 'N';
constexpr unsigned char kFieldValue = 'V';
constexpr size_t kFieldHeader = 5; /* 'V' + uint32 length */

/* 'V' and the big-endian length of a value field. */
void FieldHeader(uint32_t len, unsigned char out[kFieldHeader]) noexcept;

/*
 * Numeric text (as numeric_out prints it: [-]digits[.digits], or NaN,
 * Infinity, -Infinity) without trailing fractional zeros.  Writes at most
 * len bytes to out; returns the length written.
 */
size_t NormalizeNumericText(const char *in, size_t len, char *out) noexcept;

/* The canonical 8 bytes of a float8 (NaN folded, -0 kept). */
void EncodeFloat8(double v, unsigned char out[8]) noexcept;

/* PostgreSQL epoch (2000-01-01) to Unix epoch. */
constexpr int64_t kPgEpochShiftUsecs = INT64_C(946684800000000);
constexpr int32_t kPgEpochShiftDays = 10957;

/* Decimal text of v into out (at least 21 bytes); returns the length. */
size_t Int64Text(int64_t v, char *out) noexcept;

/* acc += digest (mod 2^256), both 32-byte big-endian. */
void Add256(unsigned char acc[32], const unsigned char digest[32]) noexcept;

/* One delivered column as the modern side sees it, for the SQL generator. */
struct CanonicalColumn {
	std::string modern_name;
	ValueKind kind;
	bool is_array; /* an array whose elements are of `kind` */
};

/* Columns in canonical order: by modern name, bytewise. */
void SortCanonical(std::vector<CanonicalColumn> &cols);

/* SQL expression (bytea) of one field for a column reference `ref`. */
std::string FieldSql(const CanonicalColumn &col, const std::string &ref);

/*
 * A query over `relation` (already quoted, e.g. "s"."t") returning one row
 * (row_count bigint, checksum bytea) equal to dualwrite.table_checksum.
 * `where` is "" or an SQL condition over the alias t.
 */
std::string TableChecksumSql(const std::vector<CanonicalColumn> &cols, const std::string &relation,
                             const std::string &where);

/*
 * The same figures per group: one row (g, row_count, checksum) per value
 * of `group`, an SQL expression over alias t (reconcile's buckets); groups
 * without rows are absent.
 */
std::string GroupedChecksumSql(const std::vector<CanonicalColumn> &cols, const std::string &relation,
                               const std::string &where, const std::string &group);

/*
 * A query over `relation` returning, per row: the key columns as text
 * (format('%s'), in the order given), then one hex SHA-256 per column of
 * field(name) field(value), columns in canonical order (reconcile's leaf
 * comparison: a row differs where any column digest differs).
 */
std::string RowFieldsSql(const std::vector<CanonicalColumn> &cols, const std::vector<std::string> &key,
                         const std::string &relation, const std::string &where);

} // namespace pgdw::core

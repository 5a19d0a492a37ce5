/*-------------------------------------------------------------------------
 * canonical.cpp
 *    PostgreSQL-free parts of the canonical row encoding (canonical.hpp):
 *    framing, numeric and float normalisation, the 256-bit sum, and the
 *    SQL that computes the same figures on a database without pg_dualwrite.
 *
 * IDENTIFICATION  src/core/canonical.cpp
 *-------------------------------------------------------------------------
 */
#include "core/canonical.hpp"

#include "core/quote.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace pgdw::core {

void
FieldHeader(uint32_t len, unsigned char out[kFieldHeader]) noexcept
{
	out[0] = kFieldValue;
	out[1] = static_cast<unsigned char>(len >> 24);
	out[2] = static_cast<unsigned char>(len >> 16);
	out[3] = static_cast<unsigned char>(len >> 8);
	out[4] = static_cast<unsigned char>(len);
}

size_t
NormalizeNumericText(const char *in, size_t len, char *out) noexcept
{
	memcpy(out, in, len);
	const char *dot = static_cast<const char *>(memchr(in, '.', len));
	/* NaN, Infinity, integers: as printed.  numeric_out never uses exponents. */
	if (dot == nullptr)
		return len;
	size_t end = len;
	while (end > 0 && out[end - 1] == '0')
		end--;
	if (end > 0 && out[end - 1] == '.')
		end--;
	/* "-0.000" cannot come out of numeric_out (numeric has no -0), but be safe. */
	if (end == 2 && out[0] == '-' && out[1] == '0') {
		out[0] = '0';
		end = 1;
	}
	return end;
}

void
EncodeFloat8(double v, unsigned char out[8]) noexcept
{
	uint64_t bits;
	if (std::isnan(v))
		bits = UINT64_C(0x7ff8000000000000);
	else
		memcpy(&bits, &v, sizeof bits);
	for (int i = 7; i >= 0; i--) {
		out[i] = static_cast<unsigned char>(bits & 0xff);
		bits >>= 8;
	}
}

size_t
Int64Text(int64_t v, char *out) noexcept
{
	char tmp[24];
	size_t n = 0;
	/* unsigned arithmetic: INT64_MIN has no positive counterpart */
	uint64_t u = v < 0 ? UINT64_C(0) - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
	do {
		tmp[n++] = static_cast<char>('0' + u % 10);
		u /= 10;
	} while (u != 0);
	size_t k = 0;
	if (v < 0)
		out[k++] = '-';
	while (n > 0)
		out[k++] = tmp[--n];
	return k;
}

void
Add256(unsigned char acc[32], const unsigned char digest[32]) noexcept
{
	unsigned carry = 0;
	for (int i = 31; i >= 0; i--) {
		unsigned s = static_cast<unsigned>(acc[i]) + digest[i] + carry;
		acc[i] = static_cast<unsigned char>(s & 0xff);
		carry = s >> 8;
	}
}

void
SortCanonical(std::vector<CanonicalColumn> &cols)
{
	std::sort(cols.begin(), cols.end(), [](const CanonicalColumn &a, const CanonicalColumn &b) {
		return a.modern_name < b.modern_name; /* std::string: bytewise (char_traits compare) */
	});
}

namespace {

std::string
Hex(const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	std::string s;
	s.reserve(n * 2);
	for (size_t i = 0; i < n; i++) {
		s += digits[p[i] >> 4];
		s += digits[p[i] & 0xf];
	}
	return s;
}

/* bytea constant */
std::string
Bytes(const std::string &hex)
{
	return "decode('" + hex + "','hex')";
}

std::string
Utf8(const std::string &textExpr)
{
	return "convert_to(" + textExpr + ",'UTF8')";
}

/* The payload (bytea, non-NULL for a non-NULL value) of a scalar e. */
std::string
Payload(ValueKind kind, const std::string &e)
{
	const std::string x = "(" + e + ")";
	switch (kind) {
	case ValueKind::Text:
		/* format('%s') prints with the type's output function, as the C++
		 * side does; ::text would not for every type (inet's text() adds
		 * the mask, bool's cast says "true") */
		return Utf8("format('%s', " + x + ")");
	case ValueKind::Bpchar:
		return Utf8("rtrim(" + x + "::text,' ')");
	case ValueKind::Bool:
		return Utf8("CASE WHEN " + x + "::boolean THEN 't' ELSE 'f' END");
	case ValueKind::Int:
		return Utf8(x + "::int8::text");
	case ValueKind::Numeric:
		return Utf8("trim_scale(" + x + "::numeric)::text");
	case ValueKind::Float:
		return "CASE WHEN " + x + "::float8 = 'NaN'::float8 THEN " + Bytes("7ff8000000000000") + " ELSE float8send(" +
		       x + "::float8) END";
	case ValueKind::Timestamptz:
	case ValueKind::Timestamp: {
		const std::string t = x + (kind == ValueKind::Timestamptz ? "::timestamptz" : "::timestamp");
		return Utf8("CASE WHEN isfinite(" + t + ") THEN (extract(epoch FROM " + t + ") * 1000000)::int8::text ELSE " +
		            t + "::text END");
	}
	case ValueKind::Date: {
		const std::string d = x + "::date";
		return Utf8("CASE WHEN isfinite(" + d + ") THEN (" + d + " - DATE '1970-01-01')::text ELSE " + d +
		            "::text END");
	}
	case ValueKind::Time:
		return Utf8("(extract(epoch FROM " + x + "::time) * 1000000)::int8::text");
	case ValueKind::Interval: {
		const std::string v = x + "::interval";
		return Utf8("(extract(year FROM " + v + ") * 12 + extract(month FROM " + v + "))::int8::text || ':' || " +
		            "extract(day FROM " + v + ")::int8::text || ':' || " + "(extract(hour FROM " + v +
		            ") * 3600000000 + extract(minute FROM " + v + ") * 60000000 + extract(microseconds FROM " + v +
		            "))::int8::text");
	}
	case ValueKind::Bytea:
		return x + "::bytea";
	}
	return Utf8("format('%s', " + x + ")");
}

/* field(payload) for a value expression e that may be NULL. */
std::string
Field(const std::string &e, const std::string &payload)
{
	return "CASE WHEN num_nulls(" + e + ") > 0 THEN " + Bytes("4e") + " ELSE " + Bytes("56") + " || int4send(length(" +
	       payload + ")) || " + payload + " END";
}

std::string
ConstField(const std::string &bytes)
{
	unsigned char h[kFieldHeader];
	FieldHeader(static_cast<uint32_t>(bytes.size()), h);
	return Bytes(Hex(h, sizeof h) + Hex(reinterpret_cast<const unsigned char *>(bytes.data()), bytes.size()));
}

} // namespace

std::string
FieldSql(const CanonicalColumn &col, const std::string &ref)
{
	if (!col.is_array)
		return Field(ref, Payload(col.kind, ref));
	const std::string dims = Utf8("coalesce(array_dims(" + ref + "),'')");
	const std::string elems = "coalesce((SELECT string_agg(" + Field("u.e", Payload(col.kind, "u.e")) +
	                          ", ''::bytea ORDER BY u.o) FROM unnest(" + ref +
	                          ") WITH ORDINALITY AS u(e, o)), ''::bytea)";
	const std::string payload = "(" + Bytes("56") + " || int4send(length(" + dims + ")) || " + dims + " || " + elems +
	                            ")";
	return "CASE WHEN num_nulls(" + ref + ") > 0 THEN " + Bytes("4e") + " ELSE " + Bytes("56") +
	       " || int4send(length(" + payload + ")) || " + payload + " END";
}

/* The figures query, optionally one row per value of `group` (an SQL
 * expression over alias t, returned first as column g). */
static std::string
FiguresSql(const std::vector<CanonicalColumn> &colsIn, const std::string &relation, const std::string &where,
           const std::string &group)
{
	std::vector<CanonicalColumn> cols = colsIn;
	SortCanonical(cols);

	std::string row;
	for (const CanonicalColumn &c : cols) {
		if (!row.empty())
			row += "\n    || ";
		row += ConstField(c.modern_name) + " || " + FieldSql(c, "t." + QuoteIdent(c.modern_name));
	}
	if (row.empty())
		row = "''::bytea";

	std::string sql = group.empty() ? "SELECT " : "SELECT s.g, ";
	sql += "s.n AS row_count, decode(";
	for (int i = 0; i < 8; i++) {
		if (i > 0)
			sql += " || ";
		sql += "lpad(to_hex(c" + std::to_string(i) + " & 4294967295), 8, '0')";
	}
	sql += ", 'hex') AS checksum\nFROM (SELECT ";
	if (!group.empty())
		sql += "r.g, ";
	sql += "count(*)::int8 AS n";
	for (int i = 0; i < 8; i++)
		sql += ", coalesce(sum(substring(r.b FROM " + std::to_string(1 + 32 * i) +
		       " FOR 32)::int8), 0)::int8 AS s" + std::to_string(i);
	/* The digest as bit(256), once per row; OFFSET 0 keeps the planner
	 * from pulling the subquery up, which would compute the row's digest
	 * once per limb (8 times: measured 8x slower). */
	sql += "\n  FROM (SELECT ";
	if (!group.empty())
		sql += group + " AS g, ";
	sql += "('x' || encode(sha256(" + row + "), 'hex'))::bit(256) AS b\n    FROM " + relation + " AS t";
	if (!where.empty())
		sql += " WHERE " + where;
	sql += " OFFSET 0) AS r";
	if (!group.empty())
		sql += " GROUP BY r.g";
	sql += ") AS s";
	/* carries, least significant limb (7) first */
	sql += ",\n  LATERAL (SELECT s.s7 AS c7) AS l7";
	for (int i = 6; i >= 0; i--)
		sql += ", LATERAL (SELECT s.s" + std::to_string(i) + " + (c" + std::to_string(i + 1) + " >> 32) AS c" +
		       std::to_string(i) + ") AS l" + std::to_string(i);
	return sql;
}

std::string
TableChecksumSql(const std::vector<CanonicalColumn> &cols, const std::string &relation, const std::string &where)
{
	return FiguresSql(cols, relation, where, "");
}

std::string
GroupedChecksumSql(const std::vector<CanonicalColumn> &cols, const std::string &relation, const std::string &where,
                   const std::string &group)
{
	return FiguresSql(cols, relation, where, group);
}

std::string
RowFieldsSql(const std::vector<CanonicalColumn> &colsIn, const std::vector<std::string> &key,
             const std::string &relation, const std::string &where)
{
	std::vector<CanonicalColumn> cols = colsIn;
	SortCanonical(cols);
	std::string sql = "SELECT ";
	bool first = true;
	for (const std::string &k : key) {
		sql += (first ? "" : ", ") + std::string("format('%s', t.") + QuoteIdent(k) + ")";
		first = false;
	}
	for (const CanonicalColumn &c : cols) {
		sql += (first ? "" : ", ") + std::string("encode(sha256(") + ConstField(c.modern_name) + " || " +
		       FieldSql(c, "t." + QuoteIdent(c.modern_name)) + "), 'hex')";
		first = false;
	}
	sql += " FROM " + relation + " AS t";
	if (!where.empty())
		sql += " WHERE " + where;
	return sql;
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

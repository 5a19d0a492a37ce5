/*-------------------------------------------------------------------------
 * fingerprint.cpp
 *    The bucket fingerprint query and its figure (fingerprint.hpp).
 *
 * IDENTIFICATION  src/core/fingerprint.cpp
 *-------------------------------------------------------------------------
 */
#include "core/fingerprint.hpp"

#include "core/quote.hpp"

#include <algorithm>
#include <cstring>

namespace pgdw::core {

namespace {

/* The ROW() element(s) of one column (fingerprint.hpp says why each). */
std::string
Elements(const FingerprintColumn &c)
{
	const std::string x = "(t." + QuoteIdent(c.ref) + ")";
	if (c.is_array)
		return FieldSql({c.modern_name, c.kind, true}, x);
	switch (c.kind) {
	case ValueKind::Text:
		return c.plain_text ? "(" + x + "::pg_catalog.text COLLATE pg_catalog.\"C\")"
		                    : "(pg_catalog.format('%s', " + x + ") COLLATE pg_catalog.\"C\")";
	case ValueKind::Bpchar:
		return "(pg_catalog.rtrim(" + x + "::pg_catalog.text, ' ') COLLATE pg_catalog.\"C\")";
	case ValueKind::Bool:
		return x + "::pg_catalog.bool";
	case ValueKind::Int:
		return x + "::pg_catalog.int8";
	case ValueKind::Numeric:
		return x + "::pg_catalog.numeric";
	case ValueKind::Float: {
		const std::string f = x + "::pg_catalog.float8";
		/* atan2(-0, -1) = -pi, atan2(0, -1) = pi: the sign of a zero */
		return f + ", (" + f + " OPERATOR(pg_catalog.=) 0 AND pg_catalog.atan2(" + f +
		       ", -1) OPERATOR(pg_catalog.<) 0)";
	}
	case ValueKind::Timestamptz:
		return x + "::pg_catalog.timestamptz";
	case ValueKind::Timestamp:
		return x + "::pg_catalog.timestamp";
	case ValueKind::Date:
		return x + "::pg_catalog.date";
	case ValueKind::Time:
		return x + "::pg_catalog.time";
	case ValueKind::Bytea:
		return x + "::pg_catalog.bytea";
	case ValueKind::Interval:
		break;
	}
	return FieldSql({c.modern_name, c.kind, false}, x);
}

} // namespace

std::string
FingerprintSql(const std::vector<FingerprintColumn> &colsIn, const std::string &relation, const std::string &where,
               const std::string &group)
{
	std::vector<FingerprintColumn> cols = colsIn;
	std::sort(cols.begin(), cols.end(),
	          [](const FingerprintColumn &a, const FingerprintColumn &b) { return a.modern_name < b.modern_name; });
	std::string row;
	for (const FingerprintColumn &c : cols)
		row += (row.empty() ? "" : ", ") + Elements(c);
	if (row.empty())
		row = "NULL";
	std::string sql = "SELECT " + (group.empty() ? std::string("'0'") : "(" + group + ")::pg_catalog.text") +
	                  " AS g, pg_catalog.count(*)::pg_catalog.text AS row_count, "
	                  "COALESCE(pg_catalog.sum(pg_catalog.hashint8extended(pg_catalog.hash_record_extended(ROW(" +
	                  row + "), 0), 0)), 0)::pg_catalog.text AS figure FROM " + relation + " AS t";
	if (!where.empty())
		sql += " WHERE " + where;
	if (!group.empty())
		sql += " GROUP BY 1";
	return sql;
}

bool
ParseFigure128(const char *dec, unsigned char out[16]) noexcept
{
	memset(out, 0, 16);
	bool neg = *dec == '-';
	if (neg)
		dec++;
	if (*dec == '\0' || strlen(dec) > 38)
		return false;
	__extension__ typedef unsigned __int128 u128;
	u128 v = 0;
	for (; *dec; dec++) {
		if (*dec < '0' || *dec > '9')
			return false;
		v = v * 10 + static_cast<unsigned>(*dec - '0');
	}
	if (neg)
		v = ~v + 1;
	for (int i = 15; i >= 0; i--) {
		out[i] = static_cast<unsigned char>(v & 0xff);
		v >>= 8;
	}
	return true;
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

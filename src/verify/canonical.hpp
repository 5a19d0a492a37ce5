/*-------------------------------------------------------------------------
 * canonical.hpp
 *    The canonical row encoding of src/core/canonical.hpp, computed from
 *    PostgreSQL datums, and its SHA-256 (OpenSSL EVP).  The encoding is
 *    defined so that the SQL of core::TableChecksumSql produces the same
 *    bytes on a modern database that has no pg_dualwrite (README.md,
 *    "Canonical row form").
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals,
 * and the core/ helpers called here are noexcept and do not allocate.
 *
 * IDENTIFICATION  src/verify/canonical.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "core/canonical.hpp"
#include "pg/pg.hpp"

namespace pgdw::verify {

/* How the values of one column are encoded (resolved once per column). */
struct ColumnCodec {
	const char *name;       /* the field name: the modern column name */
	Oid typid;              /* the column's type (may be a domain) */
	core::ValueKind kind;   /* of the base type, or of the array's element */
	bool is_array;
	Oid elemtype;           /* arrays: element type (may be a domain) */
	int16 elmlen;
	bool elmbyval;
	char elmalign;
	Oid output_fn;          /* of the scalar, or of the element */
	int source;             /* caller's use: where the value comes from */
};

/* Resolve the codec of a column of type `typid` named `name`. */
void PrepareCodec(ColumnCodec *codec, const char *name, Oid typid);

/* The kind a (base, non-array) type is encoded as. */
core::ValueKind KindOf(Oid base_typid);

/* Append field(name) field(value) of one column. */
void AppendColumn(StringInfo buf, const ColumnCodec *codec, Datum value, bool isnull);

/* Sort codecs into canonical order (by name, bytewise). */
void SortCodecs(ColumnCodec *codecs, int n);

/* SHA-256 of len bytes (OpenSSL EVP; a clear error if it fails). */
void Sha256(const char *data, size_t len, unsigned char out[32]);

} // namespace pgdw::verify

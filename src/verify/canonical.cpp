/*-------------------------------------------------------------------------
 * canonical.cpp
 *    Datums to canonical bytes (see canonical.hpp and core/canonical.hpp).
 *
 * IDENTIFICATION  src/verify/canonical.cpp
 *-------------------------------------------------------------------------
 */
#include "verify/canonical.hpp"

#include <openssl/evp.h>

extern "C" {
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
}

namespace pgdw::verify {

using core::ValueKind;

ValueKind
KindOf(Oid t)
{
	switch (t) {
	case BOOLOID:
		return ValueKind::Bool;
	case INT2OID:
	case INT4OID:
	case INT8OID:
	case OIDOID:
		return ValueKind::Int;
	case NUMERICOID:
		return ValueKind::Numeric;
	case FLOAT4OID:
	case FLOAT8OID:
		return ValueKind::Float;
	case TIMESTAMPTZOID:
		return ValueKind::Timestamptz;
	case TIMESTAMPOID:
		return ValueKind::Timestamp;
	case DATEOID:
		return ValueKind::Date;
	case TIMEOID:
		return ValueKind::Time;
	case INTERVALOID:
		return ValueKind::Interval;
	case BYTEAOID:
		return ValueKind::Bytea;
	case BPCHAROID:
		return ValueKind::Bpchar;
	default:
		return ValueKind::Text;
	}
}

void
PrepareCodec(ColumnCodec *c, const char *name, Oid typid)
{
	memset(c, 0, sizeof *c);
	c->name = name;
	c->typid = typid;
	Oid base = getBaseType(typid);
	Oid elem = get_element_type(base);
	bool varlena;
	if (OidIsValid(elem)) {
		c->is_array = true;
		c->elemtype = elem;
		c->kind = KindOf(getBaseType(elem));
		get_typlenbyvalalign(elem, &c->elmlen, &c->elmbyval, &c->elmalign);
		getTypeOutputInfo(elem, &c->output_fn, &varlena);
	} else {
		c->kind = KindOf(base);
		getTypeOutputInfo(typid, &c->output_fn, &varlena);
	}
}

void
SortCodecs(ColumnCodec *codecs, int n)
{
	std::sort(codecs, codecs + n, [](const ColumnCodec &a, const ColumnCodec &b) {
		return strcmp(a.name, b.name) < 0; /* strcmp compares as unsigned char: bytewise */
	});
}

static void
AppendBytes(StringInfo buf, const char *data, size_t len)
{
	unsigned char h[core::kFieldHeader];
	core::FieldHeader(static_cast<uint32_t>(len), h);
	appendBinaryStringInfo(buf, reinterpret_cast<const char *>(h), sizeof h);
	appendBinaryStringInfo(buf, data, static_cast<int>(len));
}

static void
AppendNull(StringInfo buf)
{
	appendStringInfoChar(buf, static_cast<char>(core::kFieldNull));
}

/* Text in the database encoding, as UTF-8 (the modern side's convert_to). */
static void
AppendText(StringInfo buf, const char *s, size_t len)
{
	char *u = pg_server_to_any(s, static_cast<int>(len), PG_UTF8);
	if (u == s) { /* no conversion: s itself, maybe not terminated at len */
		AppendBytes(buf, s, len);
		return;
	}
	AppendBytes(buf, u, strlen(u));
	pfree(u);
}

static void
AppendInt(StringInfo buf, int64 v)
{
	char tmp[24];
	size_t n = core::Int64Text(v, tmp);
	AppendBytes(buf, tmp, n);
}

/* One scalar value of `kind` (not NULL). */
static void
AppendScalar(StringInfo buf, ValueKind kind, Oid typid, Oid output_fn, Datum v)
{
	switch (kind) {
	case ValueKind::Bool:
		AppendBytes(buf, DatumGetBool(v) ? "t" : "f", 1);
		return;
	case ValueKind::Int: {
		Oid base = getBaseType(typid);
		int64 i = base == INT2OID   ? DatumGetInt16(v)
		          : base == INT4OID ? DatumGetInt32(v)
		          : base == OIDOID  ? static_cast<int64>(DatumGetObjectId(v))
		                            : DatumGetInt64(v);
		AppendInt(buf, i);
		return;
	}
	case ValueKind::Numeric: {
		char *s = OidOutputFunctionCall(output_fn, v);
		size_t len = strlen(s);
		char *out = static_cast<char *>(palloc(len + 1));
		size_t n = core::NormalizeNumericText(s, len, out);
		AppendBytes(buf, out, n);
		pfree(out);
		pfree(s);
		return;
	}
	case ValueKind::Float: {
		double d = getBaseType(typid) == FLOAT4OID ? static_cast<double>(DatumGetFloat4(v)) : DatumGetFloat8(v);
		unsigned char b[8];
		core::EncodeFloat8(d, b);
		AppendBytes(buf, reinterpret_cast<const char *>(b), sizeof b);
		return;
	}
	case ValueKind::Timestamp:
	case ValueKind::Timestamptz: {
		int64 t = DatumGetInt64(v);
		if (TIMESTAMP_IS_NOBEGIN(t))
			AppendBytes(buf, "-infinity", 9);
		else if (TIMESTAMP_IS_NOEND(t))
			AppendBytes(buf, "infinity", 8);
		else
			AppendInt(buf, t + core::kPgEpochShiftUsecs);
		return;
	}
	case ValueKind::Date: {
		DateADT d = DatumGetDateADT(v);
		if (DATE_IS_NOBEGIN(d))
			AppendBytes(buf, "-infinity", 9);
		else if (DATE_IS_NOEND(d))
			AppendBytes(buf, "infinity", 8);
		else
			AppendInt(buf, static_cast<int64>(d) + core::kPgEpochShiftDays);
		return;
	}
	case ValueKind::Time:
		AppendInt(buf, DatumGetTimeADT(v));
		return;
	case ValueKind::Interval: {
		Interval *iv = DatumGetIntervalP(v);
		char tmp[72];
		size_t n = core::Int64Text(iv->month, tmp);
		tmp[n++] = ':';
		n += core::Int64Text(iv->day, tmp + n);
		tmp[n++] = ':';
		n += core::Int64Text(iv->time, tmp + n);
		AppendBytes(buf, tmp, n);
		return;
	}
	case ValueKind::Bytea: {
		bytea *b = DatumGetByteaPP(v);
		AppendBytes(buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
		if (reinterpret_cast<Pointer>(b) != DatumGetPointer(v))
			pfree(b);
		return;
	}
	case ValueKind::Bpchar: {
		char *s = OidOutputFunctionCall(output_fn, v);
		size_t len = strlen(s);
		while (len > 0 && s[len - 1] == ' ')
			len--;
		AppendText(buf, s, len);
		pfree(s);
		return;
	}
	case ValueKind::Text: {
		char *s = OidOutputFunctionCall(output_fn, v);
		AppendText(buf, s, strlen(s));
		pfree(s);
		return;
	}
	}
}

/* Array payload: field(dims) field(element)... */
static void
AppendArray(StringInfo buf, const ColumnCodec *c, Datum v)
{
	ArrayType *a = DatumGetArrayTypeP(v);
	StringInfoData inner;
	initStringInfo(&inner);

	int ndim = ARR_NDIM(a);
	StringInfoData dims;
	initStringInfo(&dims);
	for (int i = 0; i < ndim; i++)
		appendStringInfo(&dims, "[%d:%d]", ARR_LBOUND(a)[i], ARR_LBOUND(a)[i] + ARR_DIMS(a)[i] - 1);
	AppendBytes(&inner, dims.data, dims.len);
	pfree(dims.data);

	Datum *elems;
	bool *nulls;
	int n;
	deconstruct_array(a, c->elemtype, c->elmlen, c->elmbyval, c->elmalign, &elems, &nulls, &n);
	for (int i = 0; i < n; i++) {
		if (nulls[i])
			AppendNull(&inner);
		else
			AppendScalar(&inner, c->kind, c->elemtype, c->output_fn, elems[i]);
	}
	AppendBytes(buf, inner.data, inner.len);
	pfree(inner.data);
	pfree(elems);
	pfree(nulls);
	if (reinterpret_cast<Pointer>(a) != DatumGetPointer(v))
		pfree(a);
}

void
AppendColumn(StringInfo buf, const ColumnCodec *c, Datum value, bool isnull)
{
	AppendBytes(buf, c->name, strlen(c->name));
	if (isnull)
		AppendNull(buf);
	else if (c->is_array)
		AppendArray(buf, c, value);
	else
		AppendScalar(buf, c->kind, c->typid, c->output_fn, value);
}

void
Sha256(const char *data, size_t len, unsigned char out[32])
{
	unsigned int outlen = 0;
	if (EVP_Digest(data, len, out, &outlen, EVP_sha256(), nullptr) != 1 || outlen != 32)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("SHA-256 computation failed in OpenSSL")));
}

} // namespace pgdw::verify

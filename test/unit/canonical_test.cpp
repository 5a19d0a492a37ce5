/*
 * canonical_test.cpp
 *    Unit tests for src/core/canonical.hpp: framing, numeric and float
 *    normalisation, the 256-bit sum, the generated checksum SQL.
 */
#include "core/canonical.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>

namespace pgdw::core {
namespace {

std::string
Norm(const std::string &s)
{
	std::string out(s.size(), '\0');
	out.resize(NormalizeNumericText(s.data(), s.size(), out.data()));
	return out;
}

TEST(NormalizeNumeric, DropsTrailingFractionalZeros)
{
	EXPECT_EQ(Norm("1.50"), "1.5");
	EXPECT_EQ(Norm("1.5"), "1.5");
	EXPECT_EQ(Norm("2.000"), "2");
	EXPECT_EQ(Norm("0.000"), "0");
	EXPECT_EQ(Norm("-10.0100"), "-10.01");
	EXPECT_EQ(Norm("100"), "100");  /* integer zeros stay */
	EXPECT_EQ(Norm("-100"), "-100");
	EXPECT_EQ(Norm("0.0001"), "0.0001");
}

TEST(NormalizeNumeric, SpecialsUnchanged)
{
	EXPECT_EQ(Norm("NaN"), "NaN");
	EXPECT_EQ(Norm("Infinity"), "Infinity");
	EXPECT_EQ(Norm("-Infinity"), "-Infinity");
}

std::string
F8(double v)
{
	unsigned char b[8];
	EncodeFloat8(v, b);
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (unsigned char c : b) {
		s += d[c >> 4];
		s += d[c & 15];
	}
	return s;
}

TEST(EncodeFloat8, BigEndianIeeeBits)
{
	EXPECT_EQ(F8(1.0), "3ff0000000000000");
	EXPECT_EQ(F8(0.0), "0000000000000000");
	EXPECT_EQ(F8(-0.0), "8000000000000000"); /* -0 differs from 0 */
	EXPECT_EQ(F8(std::numeric_limits<double>::infinity()), "7ff0000000000000");
	EXPECT_EQ(F8(-std::numeric_limits<double>::infinity()), "fff0000000000000");
}

TEST(EncodeFloat8, EveryNaNIsOne)
{
	double a = std::numeric_limits<double>::quiet_NaN();
	double b = -a;
	uint64_t bits = UINT64_C(0x7ff0000000000001); /* a signalling NaN pattern */
	double c;
	memcpy(&c, &bits, sizeof c);
	EXPECT_EQ(F8(a), "7ff8000000000000");
	EXPECT_EQ(F8(b), "7ff8000000000000");
	EXPECT_EQ(F8(c), "7ff8000000000000");
}

TEST(EncodeFloat8, Float4WidensExactly)
{
	EXPECT_EQ(F8(static_cast<double>(1.1f)), F8(1.100000023841858));
}

std::string
I64(int64_t v)
{
	char b[24];
	return std::string(b, Int64Text(v, b));
}

TEST(Int64Text, Extremes)
{
	EXPECT_EQ(I64(0), "0");
	EXPECT_EQ(I64(-1), "-1");
	EXPECT_EQ(I64(INT64_MAX), "9223372036854775807");
	EXPECT_EQ(I64(INT64_MIN), "-9223372036854775808");
	EXPECT_EQ(I64(kPgEpochShiftUsecs), "946684800000000");
}

TEST(FieldHeader, LengthBigEndian)
{
	unsigned char h[kFieldHeader];
	FieldHeader(0, h);
	EXPECT_EQ(h[0], 'V');
	EXPECT_EQ(h[1] | h[2] | h[3] | h[4], 0);
	FieldHeader(0x01020304, h);
	EXPECT_EQ(h[1], 1);
	EXPECT_EQ(h[2], 2);
	EXPECT_EQ(h[3], 3);
	EXPECT_EQ(h[4], 4);
	/* NULL is one byte that no value field starts with */
	EXPECT_NE(kFieldNull, kFieldValue);
}

TEST(Add256, CarriesAndWraps)
{
	unsigned char acc[32] = {0};
	unsigned char one[32] = {0};
	one[31] = 1;
	unsigned char ff[32];
	memset(ff, 0xff, sizeof ff);
	Add256(acc, ff);
	Add256(acc, one); /* 2^256 - 1 + 1 = 0 mod 2^256 */
	for (unsigned char c : acc)
		EXPECT_EQ(c, 0);
	unsigned char low[32] = {0};
	low[31] = 0xff;
	Add256(acc, low);
	Add256(acc, one);
	EXPECT_EQ(acc[31], 0);
	EXPECT_EQ(acc[30], 1);
}

TEST(Add256, OrderIndependentNoCancellation)
{
	unsigned char a[32], b[32];
	for (int i = 0; i < 32; i++) {
		a[i] = static_cast<unsigned char>(i * 37 + 11);
		b[i] = static_cast<unsigned char>(255 - i * 5);
	}
	unsigned char x[32] = {0}, y[32] = {0}, z[32] = {0};
	Add256(x, a);
	Add256(x, b);
	Add256(y, b);
	Add256(y, a);
	EXPECT_EQ(memcmp(x, y, 32), 0);
	Add256(z, a);
	Add256(z, a); /* a twice is not zero (xor would cancel) */
	unsigned char zero[32] = {0};
	EXPECT_NE(memcmp(z, zero, 32), 0);
}

TEST(SortCanonical, ByModernNameBytewise)
{
	std::vector<CanonicalColumn> c = {{"b", ValueKind::Text, false}, {"B", ValueKind::Int, false},
	                                  {"a b", ValueKind::Text, false}, {"é", ValueKind::Text, false}};
	SortCanonical(c);
	EXPECT_EQ(c[0].modern_name, "B");
	EXPECT_EQ(c[1].modern_name, "a b");
	EXPECT_EQ(c[2].modern_name, "b");
	EXPECT_EQ(c[3].modern_name, "é");
}

TEST(ChecksumSql, QuotesNamesAndFramesEachField)
{
	std::vector<CanonicalColumn> c = {{"we\"ird", ValueKind::Numeric, false}, {"id", ValueKind::Int, false}};
	std::string sql = TableChecksumSql(c, "\"s\".\"t\"", "");
	EXPECT_NE(sql.find("t.\"we\"\"ird\""), std::string::npos);
	EXPECT_NE(sql.find("trim_scale"), std::string::npos);
	EXPECT_NE(sql.find("FROM \"s\".\"t\" AS t"), std::string::npos);
	/* "id" sorts first: its name field is V 00000002 'i' 'd' */
	size_t id = sql.find("decode('56000000026964','hex')");
	size_t w = sql.find("decode('5600000006776522697264','hex')");
	EXPECT_NE(id, std::string::npos);
	EXPECT_NE(w, std::string::npos);
	EXPECT_LT(id, w);
	EXPECT_EQ(sql.find("WHERE"), std::string::npos);
	EXPECT_NE(TableChecksumSql(c, "x", "t.id > 1").find("WHERE t.id > 1"), std::string::npos);
}

TEST(ChecksumSql, ArraysFrameDimsAndElements)
{
	CanonicalColumn a{"a", ValueKind::Float, true};
	std::string f = FieldSql(a, "t.a");
	EXPECT_NE(f.find("array_dims(t.a)"), std::string::npos);
	EXPECT_NE(f.find("WITH ORDINALITY"), std::string::npos);
	EXPECT_NE(f.find("float8send((u.e)::float8)"), std::string::npos);
}

TEST(RowFieldsSql, KeysThenOneDigestPerColumn)
{
	std::vector<CanonicalColumn> c = {{"v", ValueKind::Text, false}, {"id", ValueKind::Int, false}};
	std::string sql = RowFieldsSql(c, {"id"}, "\"t\"", "t.id = 1");
	EXPECT_EQ(sql.rfind("SELECT format('%s', t.\"id\"), encode(sha256(", 0), 0u);
	EXPECT_NE(sql.find(" FROM \"t\" AS t WHERE t.id = 1"), std::string::npos);
	/* "id" before "v": canonical order */
	EXPECT_LT(sql.find("decode('56000000026964','hex')"), sql.find("decode('560000000176','hex')"));
}

} // namespace
} // namespace pgdw::core

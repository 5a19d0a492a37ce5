/*
 * copy_text_test.cpp
 *    Unit tests for src/core/copy_text.hpp: COPY text-format field escaping.
 */
#include "core/copy_text.hpp"

#include <gtest/gtest.h>
#include <cstring>

#include <random>
#include <string>
#include <vector>

namespace pgdw::core {
namespace {

using namespace std::string_literals;

static std::string
Encode(const std::string &value)
{
	std::string out;
	AppendCopyField(out, value.data(), value.size());
	return out;
}

TEST(AppendCopyField, PlainTextUnchanged)
{
	EXPECT_EQ(Encode("hello world"), "hello world");
	EXPECT_EQ(Encode(""), "");
	EXPECT_EQ(Encode("a,b;c|d\"e'f"), "a,b;c|d\"e'f");
}

TEST(AppendCopyField, EscapesTheFourSpecialBytes)
{
	EXPECT_EQ(Encode("\\"), "\\\\");
	EXPECT_EQ(Encode("\t"), "\\t");
	EXPECT_EQ(Encode("\n"), "\\n");
	EXPECT_EQ(Encode("\r"), "\\r");
}

TEST(AppendCopyField, EscapesInsideText)
{
	EXPECT_EQ(Encode("a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
	EXPECT_EQ(Encode("\r\n"), "\\r\\n");
	EXPECT_EQ(Encode("\\\\"), "\\\\\\\\");
	EXPECT_EQ(Encode("end\\"), "end\\\\");
	EXPECT_EQ(Encode("\\start"), "\\\\start");
}

TEST(AppendCopyField, ValueThatLooksLikeNullMarkerIsNotNull)
{
	/* The text "\N" must arrive as a two-character string, not as NULL. */
	EXPECT_EQ(Encode("\\N"), "\\\\N");
	std::string null_marker;
	AppendCopyNull(null_marker);
	EXPECT_NE(Encode("\\N"), null_marker);
}

TEST(AppendCopyField, EndOfDataMarkerIsEscaped)
{
	/* A field "\." alone on a line must not end the COPY stream. */
	EXPECT_EQ(Encode("\\."), "\\\\.");
}

TEST(AppendCopyField, OutputNeverContainsRawDelimiterOrLineBreak)
{
	std::string all;
	for (int b = 1; b < 256; b++)
		all.push_back(static_cast<char>(b));
	std::string enc = Encode(all);
	EXPECT_EQ(enc.find('\t'), std::string::npos);
	EXPECT_EQ(enc.find('\n'), std::string::npos);
	EXPECT_EQ(enc.find('\r'), std::string::npos);
	EXPECT_EQ(enc.size(), all.size() + 4); /* one extra byte per special */
}

TEST(AppendCopyField, OtherControlAndHighBytesPassThrough)
{
	std::string s = "\x01\x08\x0b\x0c\x1b\x7f\x80\xff"s;
	EXPECT_EQ(Encode(s), s);
}

TEST(AppendCopyField, Utf8PassesThrough)
{
	std::string s = u8"Grüße, 世界 — 🐘";
	EXPECT_EQ(Encode(s), s);
	std::string t = u8"表\t🐘\\";
	EXPECT_EQ(Encode(t), std::string(u8"表") + "\\t" + u8"🐘" + "\\\\");
}

TEST(AppendCopyField, AppendsWithoutClobberingExistingContent)
{
	std::string out = "42\tI\t";
	AppendCopyField(out, "a\tb", 3);
	out.push_back('\t');
	AppendCopyNull(out);
	out.push_back('\t');
	AppendCopyField(out, "", 0);
	EXPECT_EQ(out, "42\tI\ta\\tb\t\\N\t");
}

TEST(AppendCopyField, HonoursLengthNotNulTerminator)
{
	const char buf[] = "abc\\def";
	std::string out;
	AppendCopyField(out, buf, 4); /* "abc\" */
	EXPECT_EQ(out, "abc\\\\");
	out.clear();
	AppendCopyField(out, buf, 0);
	EXPECT_EQ(out, "");
}

TEST(AppendCopyNull, IsBackslashN)
{
	std::string out;
	AppendCopyNull(out);
	EXPECT_EQ(out, "\\N");
	AppendCopyNull(out);
	EXPECT_EQ(out, "\\N\\N");
}

TEST(DecodeCopyField, DecodesEscapes)
{
	EXPECT_EQ(DecodeCopyField("a\\tb\\nc\\rd\\\\e"), "a\tb\nc\rd\\e");
	EXPECT_EQ(DecodeCopyField("plain"), "plain");
	EXPECT_EQ(DecodeCopyField(""), "");
	EXPECT_EQ(DecodeCopyField("\\\\N"), "\\N");
}

TEST(DecodeCopyField, LoneTrailingBackslashKept)
{
	EXPECT_EQ(DecodeCopyField("abc\\"), "abc\\");
}

/* Encode then decode: identity for every byte string. */
static void
ExpectRoundTrip(const std::string &value)
{
	std::string enc = Encode(value);
	ASSERT_EQ(enc.find('\t'), std::string::npos);
	ASSERT_EQ(enc.find('\n'), std::string::npos);
	ASSERT_EQ(enc.find('\r'), std::string::npos);
	ASSERT_EQ(DecodeCopyField(enc), value);
}

TEST(CopyTextRoundTrip, HandPickedValues)
{
	const std::vector<std::string> values = {
		"",
		"\\",
		"\\\\",
		"\\t",     /* literal backslash-t, not a tab */
		"\\n\\r",  /* literal escapes */
		"\\N",
		"\\.",
		"\t\t\t",
		"\n",
		"\r\n\r\n",
		"a\\\tb",
		"trailing\\",
		u8"ünïcödé\t表\n🐘\\",
		"\x7f\x80\xfe\xff"s,
	};
	for (const auto &v : values)
		ExpectRoundTrip(v);
}

TEST(CopyTextRoundTrip, RandomBytes)
{
	std::mt19937 rng(12345);
	std::uniform_int_distribution<int> len_dist(0, 64);
	std::uniform_int_distribution<int> byte_dist(1, 255); /* text values never hold NUL */
	std::uniform_int_distribution<int> pick(0, 9);
	const char specials[] = {'\\', '\t', '\n', '\r', 'N', 't', 'n', 'r', '.'};
	for (int iter = 0; iter < 5000; iter++) {
		std::string v;
		int len = len_dist(rng);
		for (int i = 0; i < len; i++) {
			/* bias towards the bytes that matter */
			if (pick(rng) < 4)
				v.push_back(specials[pick(rng) % 9]);
			else
				v.push_back(static_cast<char>(byte_dist(rng)));
		}
		SCOPED_TRACE("iteration " + std::to_string(iter));
		ExpectRoundTrip(v);
	}
}

TEST(CopyTextRoundTrip, RandomUtf8)
{
	std::mt19937 rng(99);
	const std::vector<std::string> pieces = {"a", "Z", " ", "\t", "\n", "\r", "\\", u8"é", u8"ß",
	                                         u8"表", u8"🐘", u8"—", "\\N", "\\.", "'", "\""};
	std::uniform_int_distribution<size_t> idx(0, pieces.size() - 1);
	std::uniform_int_distribution<int> len_dist(0, 30);
	for (int iter = 0; iter < 2000; iter++) {
		std::string v;
		int len = len_dist(rng);
		for (int i = 0; i < len; i++)
			v += pieces[idx(rng)];
		SCOPED_TRACE("iteration " + std::to_string(iter));
		ExpectRoundTrip(v);
	}
}

/* A whole COPY line: split on the raw tab, decode each field. */
TEST(CopyTextRoundTrip, RowOfFieldsSplitsOnlyOnDelimiters)
{
	const std::vector<std::string> row = {"1", "a\tb", "", "line\nbreak", "back\\slash", "\\N"};
	std::string line;
	for (size_t i = 0; i < row.size(); i++) {
		if (i > 0)
			line.push_back('\t');
		AppendCopyField(line, row[i].data(), row[i].size());
	}
	line.push_back('\t');
	AppendCopyNull(line);

	std::vector<std::string> fields;
	size_t start = 0;
	for (;;) {
		size_t tab = line.find('\t', start);
		fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
		if (tab == std::string::npos)
			break;
		start = tab + 1;
	}
	ASSERT_EQ(fields.size(), row.size() + 1);
	for (size_t i = 0; i < row.size(); i++) {
		EXPECT_NE(fields[i], "\\N") << "field " << i << " would read as NULL";
		EXPECT_EQ(DecodeCopyField(fields[i]), row[i]) << "field " << i;
	}
	EXPECT_EQ(fields.back(), "\\N");
}

} // namespace
} // namespace pgdw::core

TEST(KeyText, SplitsEscapedFields)
{
	std::string key;
	pgdw::core::AppendCopyField(key, "a\tb", 3);
	key.push_back('\t');
	pgdw::core::AppendCopyField(key, "c\\d\n", 4);
	std::vector<std::string> parts = pgdw::core::SplitKeyText(key);
	ASSERT_EQ(parts.size(), 2u);
	EXPECT_EQ(parts[0], "a\tb");
	EXPECT_EQ(parts[1], "c\\d\n");
	EXPECT_EQ(pgdw::core::SplitKeyText("42"), std::vector<std::string>{"42"});
	EXPECT_EQ(pgdw::core::SplitKeyText("").size(), 1u);
}

TEST(StageFields, StripRemovesTheLeadingFieldsOfEveryLine)
{
	std::string out;
	pgdw::core::StripLeadingFields("1\tI\ta\tb\n2\tD\tc\t\\N\n", 2, out);
	EXPECT_EQ(out, "a\tb\nc\t\\N\n");
}

TEST(StageFields, PrependCountsOrdinalsAndSetsTheOperation)
{
	std::string out;
	pgdw::core::PrependStageFields("a\tb\nc\t\\N\n", 7, 'I', out);
	EXPECT_EQ(out, "7\tI\ta\tb\n8\tI\tc\t\\N\n");
}

TEST(StageFields, PrependThenStripIsTheIdentity)
{
	std::string rows, staged, back;
	for (const char *v : {"x", "tab\there", "", "\\N", "line\nbreak"}) {
		pgdw::core::AppendCopyField(rows, v, strlen(v));
		rows += "\t1\n";
	}
	pgdw::core::PrependStageFields(rows, 1, 'I', staged);
	pgdw::core::StripLeadingFields(staged, 2, back);
	EXPECT_EQ(back, rows);
}

TEST(StageFields, EmptyInputGivesEmptyOutput)
{
	std::string out = "stale";
	pgdw::core::PrependStageFields("", 1, 'I', out);
	EXPECT_EQ(out, "");
}

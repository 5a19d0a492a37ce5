/*
 * quote_test.cpp
 *    Unit tests for src/core/quote.hpp: QuoteIdent, QuoteLiteral.
 */
#include "core/quote.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

namespace pgdw::core {
namespace {

using namespace std::string_literals;

/* ---------------------------------------------------------------- QuoteIdent */

TEST(QuoteIdent, AlwaysQuotesPlainNames)
{
	EXPECT_EQ(QuoteIdent("orders"), "\"orders\"");
	EXPECT_EQ(QuoteIdent("a"), "\"a\"");
}

TEST(QuoteIdent, KeepsCaseAndKeywords)
{
	EXPECT_EQ(QuoteIdent("MixedCase"), "\"MixedCase\"");
	EXPECT_EQ(QuoteIdent("select"), "\"select\"");
	EXPECT_EQ(QuoteIdent("user"), "\"user\"");
}

TEST(QuoteIdent, EmptyName)
{
	EXPECT_EQ(QuoteIdent(""), "\"\"");
}

TEST(QuoteIdent, DoublesEmbeddedDoubleQuotes)
{
	EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
	EXPECT_EQ(QuoteIdent("\""), "\"\"\"\"");
	EXPECT_EQ(QuoteIdent("\"\""), "\"\"\"\"\"\"");
	EXPECT_EQ(QuoteIdent("\"quoted\""), "\"\"\"quoted\"\"\"");
}

TEST(QuoteIdent, LeavesOtherSpecialCharactersAlone)
{
	EXPECT_EQ(QuoteIdent("with space"), "\"with space\"");
	EXPECT_EQ(QuoteIdent("a.b"), "\"a.b\"");
	EXPECT_EQ(QuoteIdent("it's"), "\"it's\"");
	EXPECT_EQ(QuoteIdent("back\\slash"), "\"back\\slash\"");
	EXPECT_EQ(QuoteIdent("semi;colon--"), "\"semi;colon--\"");
	EXPECT_EQ(QuoteIdent("tab\there"), "\"tab\there\"");
}

TEST(QuoteIdent, Utf8PassesThroughByteForByte)
{
	EXPECT_EQ(QuoteIdent(u8"Größe"), std::string("\"") + u8"Größe" + "\"");
	EXPECT_EQ(QuoteIdent(u8"表"), std::string("\"") + u8"表" + "\"");
	EXPECT_EQ(QuoteIdent(u8"é\"ü"), std::string("\"") + u8"é\"\"ü" + "\"");
}

TEST(QuoteIdent, EmbeddedNulIsKept)
{
	/* string_view carries the length: no truncation at NUL. */
	EXPECT_EQ(QuoteIdent("a\0b"s), "\"a\0b\""s);
}

/* Strip the quoting again, the way the SQL lexer reads "..." */
static bool
UnquoteIdent(const std::string &q, std::string &out)
{
	out.clear();
	if (q.size() < 2 || q.front() != '"' || q.back() != '"')
		return false;
	for (size_t i = 1; i + 1 < q.size(); i++) {
		if (q[i] == '"') {
			if (i + 2 < q.size() && q[i + 1] == '"') {
				out.push_back('"');
				i++;
				continue;
			}
			return false; /* a lone quote would end the identifier early */
		}
		out.push_back(q[i]);
	}
	return true;
}

TEST(QuoteIdent, RoundTripsRandomBytes)
{
	std::mt19937 rng(20240601);
	std::uniform_int_distribution<int> len_dist(0, 40);
	std::uniform_int_distribution<int> byte_dist(1, 255);
	for (int iter = 0; iter < 2000; iter++) {
		std::string s;
		int len = len_dist(rng);
		for (int i = 0; i < len; i++)
			s.push_back(static_cast<char>((iter % 3 == 0 && i % 2) ? '"' : byte_dist(rng)));
		std::string back;
		ASSERT_TRUE(UnquoteIdent(QuoteIdent(s), back)) << "iteration " << iter;
		ASSERT_EQ(back, s) << "iteration " << iter;
	}
}

/* -------------------------------------------------------------- QuoteLiteral */

TEST(QuoteLiteral, Plain)
{
	EXPECT_EQ(QuoteLiteral("abc"), "'abc'");
	EXPECT_EQ(QuoteLiteral(""), "''");
	EXPECT_EQ(QuoteLiteral("with \"double\" quotes"), "'with \"double\" quotes'");
}

TEST(QuoteLiteral, DoublesSingleQuotes)
{
	EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
	EXPECT_EQ(QuoteLiteral("'"), "''''");
	EXPECT_EQ(QuoteLiteral("''"), "''''''");
	EXPECT_EQ(QuoteLiteral("'; DROP TABLE t; --"), "'''; DROP TABLE t; --'");
}

TEST(QuoteLiteral, BackslashUsesEscapeStringForm)
{
	EXPECT_EQ(QuoteLiteral("a\\b"), "E'a\\\\b'");
	EXPECT_EQ(QuoteLiteral("\\"), "E'\\\\'");
	EXPECT_EQ(QuoteLiteral("\\\\"), "E'\\\\\\\\'");
	EXPECT_EQ(QuoteLiteral("C:\\path\\"), "E'C:\\\\path\\\\'");
}

TEST(QuoteLiteral, BackslashAndQuoteTogether)
{
	/* \' must not become an escaped quote: both are doubled. */
	EXPECT_EQ(QuoteLiteral("\\'"), "E'\\\\'''");
	EXPECT_EQ(QuoteLiteral("it\\'s"), "E'it\\\\''s'");
}

TEST(QuoteLiteral, NoEscapeFormWithoutBackslash)
{
	/* Control characters need no escaping inside '...'. */
	EXPECT_EQ(QuoteLiteral("line1\nline2\ttab"), "'line1\nline2\ttab'");
	EXPECT_EQ(QuoteLiteral(u8"naïve 表"), std::string("'") + u8"naïve 表" + "'");
}

TEST(QuoteLiteral, TypicalProgressValues)
{
	EXPECT_EQ(QuoteLiteral("100:105:101,103"), "'100:105:101,103'");
	EXPECT_EQ(QuoteLiteral("0/16B3748"), "'0/16B3748'");
}

/* Parse a literal as the SQL lexer would (standard_conforming_strings on). */
static bool
UnquoteLiteral(const std::string &q, std::string &out)
{
	out.clear();
	size_t i = 0;
	bool esc = false;
	if (!q.empty() && q[0] == 'E') {
		esc = true;
		i = 1;
	}
	if (q.size() < i + 2 || q[i] != '\'' || q.back() != '\'')
		return false;
	for (i++; i + 1 < q.size(); i++) {
		char c = q[i];
		if (c == '\'') {
			if (i + 2 < q.size() && q[i + 1] == '\'') {
				out.push_back('\'');
				i++;
				continue;
			}
			return false;
		}
		if (c == '\\' && esc) {
			if (i + 2 >= q.size())
				return false;
			char n = q[++i];
			if (n != '\\' && n != '\'')
				return false; /* QuoteLiteral only ever produces \\ */
			out.push_back(n);
			continue;
		}
		if (c == '\\' && !esc)
			return false; /* a backslash must force the E'' form */
		out.push_back(c);
	}
	return true;
}

TEST(QuoteLiteral, RoundTripsRandomBytes)
{
	std::mt19937 rng(7);
	std::uniform_int_distribution<int> len_dist(0, 40);
	std::uniform_int_distribution<int> byte_dist(1, 255);
	const char specials[] = {'\'', '\\', '"', '\n'};
	for (int iter = 0; iter < 2000; iter++) {
		std::string s;
		int len = len_dist(rng);
		for (int i = 0; i < len; i++) {
			if (iter % 2 == 0 && i % 3 == 0)
				s.push_back(specials[(iter + i) % 4]);
			else
				s.push_back(static_cast<char>(byte_dist(rng)));
		}
		std::string q = QuoteLiteral(s);
		EXPECT_EQ(q[0] == 'E', s.find('\\') != std::string::npos) << "iteration " << iter;
		std::string back;
		ASSERT_TRUE(UnquoteLiteral(q, back)) << "iteration " << iter << ": " << q;
		ASSERT_EQ(back, s) << "iteration " << iter;
	}
}


} // namespace
} // namespace pgdw::core

/*-------------------------------------------------------------------------
 * quote.cpp
 *    SQL quoting (see quote.hpp).
 *
 * IDENTIFICATION  src/core/quote.cpp
 *-------------------------------------------------------------------------
 */
#include "core/quote.hpp"

#include <cctype>

namespace pgdw::core {

std::string
QuoteIdent(std::string_view name)
{
	std::string out;
	out.reserve(name.size() + 2);
	out.push_back('"');
	for (char c : name) {
		if (c == '"')
			out.push_back('"');
		out.push_back(c);
	}
	out.push_back('"');
	return out;
}

std::string
QuoteLiteral(std::string_view text)
{
	std::string out;
	out.reserve(text.size() + 3);
	if (text.find('\\') != std::string_view::npos)
		out.push_back('E');
	out.push_back('\'');
	for (char c : text) {
		if (c == '\'' || c == '\\')
			out.push_back(c);
		out.push_back(c);
	}
	out.push_back('\'');
	return out;
}

/* Read one identifier part at text[i]; advance i past it. */
static bool
ReadIdentPart(std::string_view text, size_t &i, std::string &out)
{
	out.clear();
	if (i >= text.size())
		return false;
	if (text[i] == '"') {
		i++;
		for (;;) {
			if (i >= text.size())
				return false; /* unterminated quoted identifier */
			if (text[i] == '"') {
				if (i + 1 < text.size() && text[i + 1] == '"') {
					out.push_back('"');
					i += 2;
					continue;
				}
				i++;
				break;
			}
			out.push_back(text[i++]);
		}
		return !out.empty();
	}
	while (i < text.size() && text[i] != '.') {
		unsigned char c = static_cast<unsigned char>(text[i]);
		if (c == '"' || std::isspace(c))
			return false;
		/* ASCII-only down-casing, as PostgreSQL's downcase_identifier */
		out.push_back(c < 0x80 ? static_cast<char>(std::tolower(c)) : static_cast<char>(c));
		i++;
	}
	return !out.empty();
}

bool
SplitQualifiedName(std::string_view text, std::string &schema, std::string &name)
{
	size_t i = 0;
	std::string first;
	schema.clear();
	name.clear();
	if (!ReadIdentPart(text, i, first))
		return false;
	if (i == text.size()) {
		name = first;
		return true;
	}
	if (text[i] != '.')
		return false;
	i++;
	std::string second;
	if (!ReadIdentPart(text, i, second) || i != text.size())
		return false;
	schema = first;
	name = second;
	return true;
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

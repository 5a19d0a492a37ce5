/*-------------------------------------------------------------------------
 * quote.cpp
 *    SQL quoting (see quote.hpp).
 *
 * IDENTIFICATION  src/core/quote.cpp
 *-------------------------------------------------------------------------
 */
#include "core/quote.hpp"

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

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

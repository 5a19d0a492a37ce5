/*-------------------------------------------------------------------------
 * quote.hpp
 *    SQL identifier and literal quoting for text sent to the modern side.
 *    Identifiers are always quoted (SPEC guarantee 8), so a name never
 *    depends on the remote's keyword list or search_path.
 *
 * IDENTIFICATION  src/core/quote.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include <string>
#include <string_view>

namespace pgdw::core {

/* "name" with embedded double quotes doubled. */
std::string QuoteIdent(std::string_view name);

/* 'text' with quotes doubled; E'' form when backslashes are present. */
std::string QuoteLiteral(std::string_view text);

} // namespace pgdw::core


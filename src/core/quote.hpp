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

/*
 * Parse a possibly schema-qualified name as PostgreSQL does for regclass
 * input ("Sch"."Tbl", sch.tbl, tbl): unquoted parts are folded to lower
 * case.  Returns false on a syntax error.  schema is empty when absent.
 */
bool SplitQualifiedName(std::string_view text, std::string &schema, std::string &name);

} // namespace pgdw::core


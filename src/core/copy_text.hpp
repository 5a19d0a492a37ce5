/*-------------------------------------------------------------------------
 * copy_text.hpp
 *    Encoding of values for COPY ... FROM STDIN in text format: the wire
 *    format the worker uses to stage changes on the modern side.
 *
 * Text (not binary) COPY is deliberate: binary array and record formats
 * embed type OIDs, which differ between two databases for enums, domains
 * and every user-defined type.
 *
 * IDENTIFICATION  src/core/copy_text.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include <cstddef>
#include <string>

namespace pgdw::core {

/* Append one field value escaped for COPY text format (no delimiter). */
void AppendCopyField(std::string &out, const char *value, size_t len);

/* Append the NULL marker \N. */
inline void
AppendCopyNull(std::string &out)
{
	out.append("\\N", 2);
}

/* Decode one COPY text field (inverse of AppendCopyField); for tests. */
std::string DecodeCopyField(const std::string &field);

} // namespace pgdw::core


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
#include <vector>

namespace pgdw::core {

/* Append one field value escaped for COPY text format (no delimiter). */
void AppendCopyField(std::string &out, const char *value, size_t len);

/* Append the NULL marker \N. */
inline void
AppendCopyNull(std::string &out)
{
	out.append("\\N", 2);
}

/*
 * Copy COPY text `in` to `out` without the first `fields` fields of every
 * line (the staging columns _dw_ord and _dw_op before the table's own).
 * Fields never contain a raw tab or newline (AppendCopyField escapes them).
 */
void StripLeadingFields(const std::string &in, int fields, std::string &out);

/*
 * The inverse for one operation: copy `in` to `out` with the staging
 * fields put before every line, _dw_ord counting up from first_ord and
 * _dw_op = op (a backfill chunk sent to the staging table after its direct
 * COPY met a key that was there already).
 */
void PrependStageFields(const std::string &in, long long first_ord, char op, std::string &out);

/* Decode one COPY text field (inverse of AppendCopyField). */
std::string DecodeCopyField(const std::string &field);

/*
 * A key as one text (dualwrite._reconcile_dirty.key): the key columns'
 * values as COPY fields (AppendCopyField) joined by tabs, which the
 * escaping keeps out of the values.  SplitKeyText is the inverse.
 */
std::vector<std::string> SplitKeyText(const std::string &text);

} // namespace pgdw::core


/*-------------------------------------------------------------------------
 * copy_text.cpp
 *    COPY text-format escaping (see copy_text.hpp).
 *
 * IDENTIFICATION  src/core/copy_text.cpp
 *-------------------------------------------------------------------------
 */
#include "core/copy_text.hpp"

#include <cstring>

namespace pgdw::core {

void
AppendCopyField(std::string &out, const char *value, size_t len)
{
	/* Fast path: copy runs of bytes that need no escaping in one append. */
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		const char *esc = nullptr;
		switch (c) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		default: continue;
		}
		out.append(value + start, i - start);
		out.append(esc, 2);
		start = i + 1;
	}
	out.append(value + start, len - start);
}

void
StripLeadingFields(const std::string &in, int fields, std::string &out)
{
	out.clear();
	out.reserve(in.size());
	size_t pos = 0;
	while (pos < in.size()) {
		size_t end = in.find('\n', pos);
		if (end == std::string::npos)
			end = in.size();
		else
			end++; /* keep the newline */
		size_t start = pos;
		for (int f = 0; f < fields && start < end; f++) {
			size_t tab = in.find('\t', start);
			start = (tab == std::string::npos || tab >= end) ? end : tab + 1;
		}
		out.append(in, start, end - start);
		pos = end;
	}
}

void
PrependStageFields(const std::string &in, long long first_ord, char op, std::string &out)
{
	out.clear();
	out.reserve(in.size() + in.size() / 8);
	long long ord = first_ord;
	size_t pos = 0;
	while (pos < in.size()) {
		size_t end = in.find('\n', pos);
		end = end == std::string::npos ? in.size() : end + 1;
		out.append(std::to_string(ord++));
		out.push_back('\t');
		out.push_back(op);
		out.push_back('\t');
		out.append(in, pos, end - pos);
		pos = end;
	}
}

std::string
DecodeCopyField(const std::string &field)
{
	std::string out;
	for (size_t i = 0; i < field.size(); i++) {
		if (field[i] != '\\' || i + 1 == field.size()) {
			out.push_back(field[i]);
			continue;
		}
		char n = field[++i];
		switch (n) {
		case 't': out.push_back('\t'); break;
		case 'n': out.push_back('\n'); break;
		case 'r': out.push_back('\r'); break;
		default: out.push_back(n); break;
		}
	}
	return out;
}

std::vector<std::string>
SplitKeyText(const std::string &text)
{
	std::vector<std::string> out;
	size_t start = 0;
	for (;;) {
		size_t tab = text.find('\t', start);
		out.push_back(DecodeCopyField(text.substr(start, tab == std::string::npos ? std::string::npos : tab - start)));
		if (tab == std::string::npos)
			return out;
		start = tab + 1;
	}
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

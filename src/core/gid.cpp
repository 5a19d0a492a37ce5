/*-------------------------------------------------------------------------
 * gid.cpp
 *    Global transaction ids (see gid.hpp).
 *
 * IDENTIFICATION  src/core/gid.cpp
 *-------------------------------------------------------------------------
 */
#include "core/gid.hpp"

#include <cerrno>
#include <cstdlib>

namespace pgdw::core {

static constexpr const char *kPrefix = "pgdw_";

std::string
GidPrefix(uint64_t system_id, uint32_t dboid)
{
	return std::string(kPrefix) + std::to_string(system_id) + "_" + std::to_string(dboid) + "_";
}

std::string
FormatGid(const GidParts &g)
{
	return GidPrefix(g.system_id, g.dboid) + std::to_string(g.fxid) + "_" + std::to_string(g.server);
}

/* One run of decimal digits ending at `end` (which must be '_' or the end). */
static bool
ReadNumber(const char *&p, char end, uint64_t max, uint64_t *out)
{
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	char *stop = nullptr;
	unsigned long long v = strtoull(p, &stop, 10);
	if (errno != 0 || stop == p || *stop != end || v > max)
		return false;
	*out = v;
	p = stop + (end != '\0' ? 1 : 0);
	return true;
}

std::optional<GidParts>
ParseGid(const std::string &gid)
{
	if (gid.compare(0, 5, kPrefix) != 0)
		return std::nullopt;
	const char *p = gid.c_str() + 5;
	uint64_t sys, db, xid, server;
	if (!ReadNumber(p, '_', UINT64_MAX, &sys) || !ReadNumber(p, '_', UINT32_MAX, &db) ||
	    !ReadNumber(p, '_', UINT64_MAX, &xid) || !ReadNumber(p, '\0', UINT32_MAX, &server))
		return std::nullopt;
	/* Canonical form only: no leading zeros, so one transaction has one gid. */
	GidParts parts{sys, static_cast<uint32_t>(db), xid, static_cast<uint32_t>(server)};
	if (FormatGid(parts) != gid)
		return std::nullopt;
	return parts;
}

} // namespace pgdw::core

/* Proof that core/ stays PostgreSQL-free (see cpp_only.hpp). */
#include "core/cpp_only.hpp"

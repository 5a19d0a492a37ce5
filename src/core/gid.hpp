/*-------------------------------------------------------------------------
 * gid.hpp
 *    Global transaction ids of sync mode's remote prepared transactions.
 *
 *    pgdw_<system identifier>_<database oid>_<full transaction id>_<server oid>
 *
 * The system identifier (pg_control) names the legacy cluster, the OID its
 * database, the 64-bit transaction id the local transaction (no wraparound
 * ambiguity), the foreign server's OID the target (gids are unique per
 * modern cluster, and two targets of one transaction may share one).  From a gid alone the resolver of the right database knows
 * which local transaction's fate decides the remote one; gids of other
 * clusters or databases sharing the modern side are left alone.
 *
 * IDENTIFICATION  src/core/gid.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pgdw::core {

struct GidParts {
	uint64_t system_id;
	uint32_t dboid;
	uint64_t fxid;
	uint32_t server;
};

std::string FormatGid(const GidParts &g);

/* "pgdw_<sysid>_<dboid>_": what every gid of one legacy database starts
 * with (for pg_prepared_xacts.gid LIKE, so '_' is escaped there). */
std::string GidPrefix(uint64_t system_id, uint32_t dboid);

/* The parts of a well-formed gid, or nothing (any other text). */
std::optional<GidParts> ParseGid(const std::string &gid);

} // namespace pgdw::core

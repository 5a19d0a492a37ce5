/*-------------------------------------------------------------------------
 * cpp_only.hpp
 *    Compile-time proof that a core/ header stays PostgreSQL-free: include
 *    it last in every core header.  core/ is unit-tested without a server.
 *
 * IDENTIFICATION  src/core/cpp_only.hpp
 *-------------------------------------------------------------------------
 */
#pragma once
#ifdef PG_VERSION_NUM
#ifndef PGDW_CORE_ALLOW_PG
static_assert(false, "src/core must not include PostgreSQL headers");
#endif
#endif

/*-------------------------------------------------------------------------
 * cpp_only.hpp
 *    Compile-time proof that core/ stays PostgreSQL-free: every core .cpp
 *    includes it last, so it fails to compile if anything it includes pulled
 *    in postgres.h.  core/ headers stay includable from backend code, and
 *    core/ is unit-tested without a server.
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

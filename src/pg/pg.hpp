/*-------------------------------------------------------------------------
 * pg.hpp
 *    The one place C++ code includes PostgreSQL headers.
 *
 * Standard headers first, PostgreSQL headers last and inside extern "C"
 * (TOOLCHAIN P7, P12): port.h redefines printf-family names and elog.h
 * defines ERROR, which break <cstdio>/<string> if they come after.
 *
 * IDENTIFICATION  src/pg/pg.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "libpq-fe.h"
}

/*-------------------------------------------------------------------------
 * module.cpp
 *    pg_dualwrite's module entry: the magic block and _PG_init, which only
 *    registers things and reads like a table of contents.
 *
 * IDENTIFICATION  src/module.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "shmem/shmem.hpp"
#include "sync/sync.hpp"
#include "worker/worker.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace pgdw {

static void
Init()
{
	/* Shared memory and the launcher exist only when preloaded. */
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("pg_dualwrite must be loaded via shared_preload_libraries"),
		                errhint("Add pg_dualwrite to the shared_preload_libraries configuration variable in "
		                        "postgresql.conf and restart the server.")));
	guc::DefineSettings();
	if (IsBinaryUpgrade)
		return;
	shm::InstallHooks();
	sync::Install();
	worker::RegisterLauncher();
}

} // namespace pgdw

extern "C" void
_PG_init(void)
{
	pgdw::pg_entry([] { pgdw::Init(); });
}

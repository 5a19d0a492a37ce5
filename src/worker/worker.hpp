/*-------------------------------------------------------------------------
 * worker.hpp
 *    Background workers: a static launcher, started by the postmaster,
 *    that runs one dynamic delivery worker per database with pg_dualwrite.
 *
 * IDENTIFICATION  src/worker/worker.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

namespace pgdw::worker {

/* Register the launcher (from _PG_init, while preloading). */
void RegisterLauncher();

} // namespace pgdw::worker

extern "C" {
/* Entry points loaded by name by the postmaster. */
PGDLLEXPORT void dualwrite_launcher_main(Datum arg);
PGDLLEXPORT void dualwrite_worker_main(Datum arg);
}

/*-------------------------------------------------------------------------
 * guc.hpp
 *    All dualwrite.* settings, in one namespace.
 *
 * IDENTIFICATION  src/config/guc.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

namespace pgdw::guc {

enum Mode { kModeAsync = 0, kModeSync = 1 };

extern bool enabled;             /* dualwrite.enabled: capture on (the global switch) */
extern char *target_server;      /* dualwrite.target_server: default foreign server */
extern int default_mode;         /* dualwrite.default_mode: Mode */
extern int batch_size;           /* dualwrite.batch_size: changes per remote transaction */
extern int naptime_ms;           /* dualwrite.naptime: idle wait between drain rounds */
extern int retry_backoff_min_ms; /* dualwrite.retry_backoff_min */
extern int retry_backoff_max_ms; /* dualwrite.retry_backoff_max */
extern int rotate_interval_s;    /* dualwrite.outbox_rotate_interval */
extern int connect_timeout_s;    /* dualwrite.connect_timeout */
extern int max_sort_keys;        /* dualwrite.max_sort_keys: memory bound of a drain pass */
extern int batch_bytes_kb;       /* dualwrite.batch_bytes: image bytes per batch (kB) */
extern int remote_timeout_ms;    /* dualwrite.remote_timeout: longest remote call, in total */
extern int reconcile_track_max;  /* dualwrite.reconcile_track_max: changed keys kept per table */
extern int max_result_kb;        /* dualwrite.max_result_size: most a remote call may receive (kB) */
enum ReconcileFigures { kFiguresFingerprint = 0, kFiguresSha256 = 1 };
extern int reconcile_figures;    /* dualwrite.reconcile_figures: ReconcileFigures */

/* Sync mode (src/sync). */
enum SyncFailure { kSyncFailError = 0, kSyncFailQueue = 1 };
enum SyncPause { kPauseNone = 0, kPauseBeforePrepare, kPauseAfterPrepare, kPauseAfterLocalCommit };
extern int sync_failure;         /* dualwrite.sync_failure: SyncFailure */
enum RemoteCommit { kRemoteWait = 0, kRemoteNowait = 1 };
extern int sync_remote_commit;   /* dualwrite.sync_remote_commit: RemoteCommit */
extern int sync_backlog_wait_ms; /* dualwrite.sync_backlog_wait */
extern int resolve_interval_ms;  /* dualwrite.resolve_interval */
extern int sync_test_pause;      /* dualwrite.sync_test_pause: SyncPause (tests only) */

const char *SyncFailureName(int policy);
/* The policy named `name` ("error" | "queue"), or -1. */
int SyncFailureByName(const char *name);

/* Define every setting; called once from _PG_init. */
void DefineSettings();

const char *ModeName(int mode);

} // namespace pgdw::guc

/*-------------------------------------------------------------------------
 * guc.cpp
 *    Definition of the dualwrite.* settings.
 *
 * Contexts are a design decision (STYLE.md 3.5): what only the worker
 * reads between rounds is PGC_SIGHUP; what decides where changes go is
 * PGC_SUSET and GUC_SUPERUSER_ONLY (it names servers, and a user able to
 * change it could send their changes elsewhere).  All check hooks explain a
 * rejected value; no assign hook can fail.
 *
 * IDENTIFICATION  src/config/guc.cpp
 *-------------------------------------------------------------------------
 */
#include "config/guc.hpp"

#include "pg/pg.hpp"

namespace pgdw::guc {

bool enabled = true;
char *target_server = nullptr;
int default_mode = kModeAsync;
int batch_size = 10000;
int naptime_ms = 100;
int retry_backoff_min_ms = 200;
int retry_backoff_max_ms = 30000;
int rotate_interval_s = 2;
int connect_timeout_s = 10;
int remote_timeout_ms = 120000;
int max_result_kb = 16 * 1024;
int max_sort_keys = 2 * 1024 * 1024;
int reconcile_track_max = 1000000;
int reconcile_figures = kFiguresFingerprint;
int batch_bytes_kb = 64 * 1024;

int sync_failure = kSyncFailError;
int sync_remote_commit = kRemoteWait;
int sync_backlog_wait_ms = 10000;
int resolve_interval_ms = 5000;
int sync_test_pause = kPauseNone;

static const struct config_enum_entry sync_failure_options[] = {
	{"error", kSyncFailError, false},
	{"queue", kSyncFailQueue, false},
	{nullptr, 0, false},
};

static const struct config_enum_entry remote_commit_options[] = {
	{"wait", kRemoteWait, false},
	{"nowait", kRemoteNowait, false},
	{nullptr, 0, false},
};

static const struct config_enum_entry sync_pause_options[] = {
	{"", kPauseNone, false},
	{"none", kPauseNone, true},
	{"before_prepare", kPauseBeforePrepare, false},
	{"after_prepare", kPauseAfterPrepare, false},
	{"after_local_commit", kPauseAfterLocalCommit, false},
	{nullptr, 0, false},
};

const char *
SyncFailureName(int policy)
{
	return policy == kSyncFailQueue ? "queue" : "error";
}

int
SyncFailureByName(const char *name)
{
	for (const auto *o = sync_failure_options; o->name != nullptr; o++)
		if (strcmp(o->name, name) == 0)
			return o->val;
	return -1;
}

static const struct config_enum_entry reconcile_figures_options[] = {
	{"fingerprint", kFiguresFingerprint, false},
	{"sha256", kFiguresSha256, false},
	{nullptr, 0, false},
};

static const struct config_enum_entry mode_options[] = {
	{"async", kModeAsync, false},
	{"sync", kModeSync, false},
	{nullptr, 0, false},
};

const char *
ModeName(int mode)
{
	return mode == kModeSync ? "sync" : "async";
}

/* A server name must be a valid identifier; existence is checked by enable(). */
static bool
CheckTargetServer(char **newval, void **extra, GucSource source)
{
	if (*newval != nullptr && strlen(*newval) >= NAMEDATALEN) {
		GUC_check_errdetail("A foreign server name is at most %d bytes long.", NAMEDATALEN - 1);
		return false;
	}
	return true;
}

static bool
CheckBackoffMax(int *newval, void **extra, GucSource source)
{
	/* Compared with the current minimum; the minimum's own hook mirrors this. */
	if (*newval < retry_backoff_min_ms) {
		GUC_check_errdetail("dualwrite.retry_backoff_max (%d ms) must not be below dualwrite.retry_backoff_min (%d ms).",
		                    *newval, retry_backoff_min_ms);
		return false;
	}
	return true;
}

void
DefineSettings()
{
	/* The global switch.  Superuser-only (PGC_SUSET): an ordinary role can
	 * neither SET it nor ALTER ROLE/DATABASE ... SET it, so nobody but a
	 * superuser can make their own writes go uncaptured. */
	DefineCustomBoolVariable("dualwrite.enabled",
	                         gettext_noop("Captures changes of flagged tables; off stops capture everywhere."),
	                         gettext_noop("While off, the two databases diverge: dualwrite.status says so, and a "
	                                      "reconcile is needed afterwards."),
	                         &enabled, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);

	DefineCustomStringVariable("dualwrite.target_server",
	                           gettext_noop("Foreign server that dualwrite.enable() uses when none is given."),
	                           gettext_noop("The server's options say where the modern database is; "
	                                        "credentials stay in its user mapping."),
	                           &target_server, "", PGC_SUSET, GUC_SUPERUSER_ONLY, CheckTargetServer, nullptr,
	                           nullptr);

	DefineCustomEnumVariable("dualwrite.default_mode",
	                         gettext_noop("Delivery mode that dualwrite.enable() uses when none is given."),
	                         gettext_noop("async: changes go to the outbox and the background worker delivers them."),
	                         &default_mode, kModeAsync, mode_options, PGC_SUSET, 0, nullptr, nullptr, nullptr);

	DefineCustomIntVariable("dualwrite.batch_size",
	                        gettext_noop("Maximum number of changes applied in one remote transaction."),
	                        gettext_noop("Bounds the worker's memory and the size of a remote transaction."),
	                        &batch_size, 10000, 1, 1000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);

	/* Rows of several MB must not make a batch of 10,000 hold gigabytes:
	 * a batch also ends once its row images reach this size (at least one
	 * row per batch, however large). */
	DefineCustomIntVariable("dualwrite.batch_bytes",
	                        gettext_noop("Size of captured row images after which a batch ends."),
	                        gettext_noop("Bounds the worker's memory for tables of large rows; a batch also ends "
	                                     "after dualwrite.batch_size changes."),
	                        &batch_bytes_kb, 64 * 1024, 64, 4 * 1024 * 1024, PGC_SIGHUP, GUC_UNIT_KB, nullptr,
	                        nullptr, nullptr);

	/* Beyond it an incremental reconcile would cost about as much as a full
	 * one, and the record would keep growing: stop recording, run full. */
	DefineCustomIntVariable("dualwrite.reconcile_track_max",
	                        gettext_noop("Changed keys recorded per table for the next incremental reconcile."),
	                        gettext_noop("When more keys change, recording stops and the next reconcile is full."),
	                        &reconcile_track_max, 1000000, 1, INT_MAX, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);

	/* Fingerprints make a reconcile of equal tables one fast pass per side
	 * (core/fingerprint.hpp); sha256 is for a DBA who wants the buckets
	 * judged by cryptographic digests too, and what a modern server older
	 * than PostgreSQL 14 gets anyway.  Rows are always compared by SHA-256. */
	DefineCustomEnumVariable("dualwrite.reconcile_figures",
	                         gettext_noop("What reconcile compares key ranges by before it compares rows."),
	                         gettext_noop("fingerprint: 64-bit hashes of the values (fast); sha256: the canonical "
	                                      "SHA-256 row digests (slow).  Rows are always compared by SHA-256."),
	                         &reconcile_figures, kFiguresFingerprint, reconcile_figures_options, PGC_USERSET, 0,
	                         nullptr, nullptr, nullptr);

	DefineCustomIntVariable("dualwrite.naptime", gettext_noop("Time the worker waits between idle drain rounds."),
	                        nullptr, &naptime_ms, 100, 10, 60000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);

	DefineCustomIntVariable("dualwrite.retry_backoff_min",
	                        gettext_noop("First delay before the worker retries a failed delivery."),
	                        gettext_noop("The delay doubles after each failure, up to dualwrite.retry_backoff_max."),
	                        &retry_backoff_min_ms, 200, 10, 3600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);

	DefineCustomIntVariable("dualwrite.retry_backoff_max",
	                        gettext_noop("Longest delay between two delivery retries."), nullptr,
	                        &retry_backoff_max_ms, 30000, 10, 3600000, PGC_SIGHUP, GUC_UNIT_MS, CheckBackoffMax,
	                        nullptr, nullptr);

	/* 2 s: every drain round reads the live generations whole, so they
	 * must stay small (tens of thousands of rows at 10k+ changes/s); a
	 * TRUNCATE every few seconds costs next to nothing. */
	DefineCustomIntVariable("dualwrite.outbox_rotate_interval",
	                        gettext_noop("Age after which the worker switches capture to the next outbox table."),
	                        gettext_noop("A drained outbox table is truncated, so its space is reclaimed "
	                                     "without VACUUM."),
	                        &rotate_interval_s, 2, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);

	/* A bound of our own: a server's connect_timeout option (set by its
	 * owner, or 0 for "forever") may lower it, never raise it. */
	DefineCustomIntVariable("dualwrite.connect_timeout",
	                        gettext_noop("Longest time allowed to connect to the modern database."),
	                        gettext_noop("A foreign server's connect_timeout option can only lower it."),
	                        &connect_timeout_s, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);

	/* Generous: a batch of 10,000 upserts takes well under a second.  A
	 * total, not an inactivity timer: a server that keeps sending notices
	 * (a target trigger, a hostile listener) must not hold a call forever. */
	DefineCustomIntVariable("dualwrite.remote_timeout",
	                        gettext_noop("Longest time one remote call to the modern database may take in total."),
	                        gettext_noop("The connection is dropped and the work retried; 0 waits forever "
	                                     "(cancel and terminate still work)."),
	                        &remote_timeout_ms, 120000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);

	/* What one remote call may receive (results, notices, errors), counted
	 * as it arrives: a server that answers with gigabytes must not drive a
	 * backend or the worker out of memory.  Our catalog queries and the
	 * worker's commands get kilobytes back.  PGC_SUSET: a superuser may
	 * raise it for one session (enable() of a table of thousands of
	 * columns); the worker reads postgresql.conf. */
	DefineCustomIntVariable("dualwrite.max_result_size",
	                        gettext_noop("Most data one remote call may receive from the modern database."),
	                        gettext_noop("The call fails with an error and the connection is dropped."),
	                        &max_result_kb, 16 * 1024, 64, 1024 * 1024, PGC_SUSET, GUC_UNIT_KB, nullptr, nullptr,
	                        nullptr);

	/* 2M keys of 32 bytes: 64 MB, enough to sort a backlog of 2M changes at once. */
	DefineCustomIntVariable("dualwrite.max_sort_keys",
	                        gettext_noop("Most changes one drain pass orders in memory (32 bytes each)."),
	                        gettext_noop("A larger backlog is read in several passes, in capture order."),
	                        &max_sort_keys, 2 * 1024 * 1024, 16, 64 * 1024 * 1024, PGC_SIGHUP, 0, nullptr, nullptr,
	                        nullptr);

	/* Sync mode.  The failure policy decides whether a writer's commit can
	 * succeed without the modern side: superuser-only, like the switch. */
	DefineCustomEnumVariable("dualwrite.sync_failure",
	                         gettext_noop("What a sync transaction does when the modern database fails."),
	                         gettext_noop("error: the local transaction fails too; queue: it commits and its "
	                                      "changes stay in the outbox for the worker.  enable() can set it per table."),
	                         &sync_failure, kSyncFailError, sync_failure_options, PGC_SUSET, 0, nullptr, nullptr,
	                         nullptr);

	/* A session may trade read-your-writes on the modern side for latency. */
	DefineCustomEnumVariable("dualwrite.sync_remote_commit",
	                         gettext_noop("Whether a sync commit waits for COMMIT PREPARED on the modern database."),
	                         gettext_noop("wait: the client sees its commit only once the modern side has it; "
	                                      "nowait: it returns after the local commit (the resolver covers a crash)."),
	                         &sync_remote_commit, kRemoteWait, remote_commit_options, PGC_USERSET, 0, nullptr,
	                         nullptr, nullptr);

	DefineCustomIntVariable("dualwrite.sync_backlog_wait",
	                        gettext_noop("How long a sync transaction waits for queued changes of its tables."),
	                        gettext_noop("With sync_failure = error it then fails; with queue it goes through the "
	                                     "outbox."),
	                        &sync_backlog_wait_ms, 10000, 0, 3600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);

	DefineCustomIntVariable("dualwrite.resolve_interval",
	                        gettext_noop("How often the worker settles in-doubt sync transactions on the modern side."),
	                        nullptr, &resolve_interval_ms, 5000, 100, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
	                        nullptr, nullptr);

	/* Test fault points of the sync protocol (TAP tests): the backend logs
	 * and sleeps there so a test can kill it or a server.  Superuser-only. */
	DefineCustomEnumVariable("dualwrite.sync_test_pause",
	                         gettext_noop("Tests only: pause a sync commit at a point of the protocol."), nullptr,
	                         &sync_test_pause, kPauseNone, sync_pause_options, PGC_SUSET,
	                         GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);

	MarkGUCPrefixReserved("dualwrite");
}

} // namespace pgdw::guc

/*-------------------------------------------------------------------------
 * connection.hpp
 *    Interruptible libpq connections to the modern database, described by
 *    a foreign server and a user mapping (dblink/postgres_fdw style): host,
 *    port and dbname in the server's options, credentials in the mapping,
 *    so no password ever sits in a setting, a table or a message.
 *
 * Every wait goes through WaitLatchOrSocket + CHECK_FOR_INTERRUPTS, so
 * query cancel, pg_terminate_backend, DROP DATABASE ... WITH (FORCE) and
 * fast shutdown work while a remote call is in flight (TOOLCHAIN P14).
 *
 * These functions raise PostgreSQL errors (ereport).  Callers hold only
 * trivially destructible locals; a connection that must not leak on error
 * is registered with OwnByTransaction() or owned by the worker, which
 * closes it in its error path.
 *
 * IDENTIFICATION  src/remote/connection.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::remote {

/*
 * Connect to foreign server `servername` with the user mapping of `userid`
 * (or PUBLIC).  Raises a clear error (with libpq's reason, never the
 * connection string) on failure, also when `userid` names no role (a
 * dropped delivering role) or has no user mapping.  The session is pinned:
 * search_path, DateStyle, IntervalStyle, extra_float_digits, TimeZone and,
 * if `replica`, session_replication_role = replica (so a pg_dualwrite on
 * the modern side does not capture what we apply: no loops).
 * max_timeout_s > 0 caps the connection timeout (dualwrite.check()).
 */
PGconn *Connect(const char *servername, Oid userid, int max_timeout_s = 0, bool replica = true);

/* The role exists (a clear error if it was dropped, or is InvalidOid). */
void CheckRole(const char *servername, Oid userid);

/* The role, or PUBLIC, has a user mapping for the server (clear error if not). */
void CheckUserMapping(const char *servername, Oid userid);

/* SET session_replication_role = replica; a clear error with a GRANT hint
 * if the modern role may not. */
void SetReplicaRole(PGconn *conn);

/* Close the connection at the end of the current transaction (commit or abort). */
void OwnByTransaction(PGconn *conn);

/* Keep a connection open after the transaction ends (the worker's cache). */
void KeepAcrossTransactions(PGconn *conn);

/* Keep it across commits but close it when a transaction aborts (a
 * procedure that commits as it goes: an error may leave the connection in
 * the middle of a COPY or a remote transaction, which closing rolls back). */
void CloseOnAbort(PGconn *conn);

/* Can an idle cached connection be used?  False if the server closed it
 * (a restart), it is in the middle of something, or it has unread input.
 * Never waits and never raises. */
bool IsAlive(PGconn *conn);

/* Is conn one of this backend's open connections (not closed meanwhile,
 * e.g. by CloseOnAbort at an abort)? */
bool IsOpen(PGconn *conn);

/* Close a connection now (NULL is fine). */
void Disconnect(PGconn *conn);

/* Run a command string (may hold several statements); raise the remote error if any. */
void Exec(PGconn *conn, const char *sql);

/* Exec in two halves, so the caller can work while the modern side does:
 * SendCommand() returns once the text is sent; WaitCommand() collects the
 * results (sql is only for messages).  Nothing else may use the
 * connection in between. */
void SendCommand(PGconn *conn, const char *sql);
void WaitCommand(PGconn *conn, const char *sql);

/* Exec / WaitCommand that return false, instead of raising, when the
 * object is missing (42704: COMMIT / ROLLBACK PREPARED of a prepared
 * transaction someone else finished). */
bool ExecUnlessMissing(PGconn *conn, const char *sql);
bool WaitCommandUnlessMissing(PGconn *conn, const char *sql);

/*
 * Run a query and return its tuples result; the caller must PQclear it.
 * Raises the remote error if any (the result is cleared first).
 */
PGresult *Query(PGconn *conn, const char *sql);

/* Query in two halves (like SendCommand/WaitCommand): send it with
 * SendCommand(), work meanwhile, collect the result with WaitQuery(). */
PGresult *WaitQuery(PGconn *conn, const char *sql);

/* Start COPY FROM STDIN with `sql`; then PutCopy() any number of times, then EndCopy(). */
void BeginCopy(PGconn *conn, const char *sql);
void PutCopy(PGconn *conn, const char *data, size_t len);
void EndCopy(PGconn *conn);

/*
 * EndCopy() that returns false on a unique violation instead of raising it
 * (the remote transaction is then failed: roll back to a savepoint to go
 * on).  Any other error raises as usual.
 */
bool EndCopyUnlessDuplicate(PGconn *conn);

/* End COPY data without waiting for its result (collect it, and those of
 * the statements sent after the COPY, with WaitCommand*). */
void SendCopyEnd(PGconn *conn);

/* WaitCommand() that returns false on a unique violation instead of raising
 * it; the rest of the command string was then skipped by the server. */
bool WaitCommandUnlessDuplicate(PGconn *conn, const char *sql);

/* WaitCommand() that returns the SQLSTATE (one of `tolerated`, a
 * NULL-terminated list) of an error it does not raise, or NULL when the
 * command string succeeded.  The remote transaction is then failed. */
const char *WaitCommandTolerating(PGconn *conn, const char *sql, const char *const *tolerated);

/*
 * Pipeline mode (sync mode's shipping, pipeline.cpp): everything between
 * PipelineBegin() and PipelineEnd() goes out without waiting for answers;
 * PipelineEnd() sends one Sync, waits for every result and leaves pipeline
 * mode.  It returns the first failed result (the caller raises it with
 * RaiseResult or clears it) and the index of the command that failed, or
 * NULL if all succeeded.  Waits are interruptible and bounded like the
 * other calls.
 */
void PipelineBegin(PGconn *conn);
void PipelinePrepare(PGconn *conn, const char *name, const char *sql, int nparams);
void PipelineExecPrepared(PGconn *conn, const char *name, int nparams, const char *const *values);
void PipelineExec(PGconn *conn, const char *sql);
PGresult *PipelineEnd(PGconn *conn, int *failed_command);
/* Send what is buffered now, so the server works while we do (no Sync). */
void PipelineSend(PGconn *conn);

/* Raise the remote error of a failed result (cleared), naming the server. */
[[noreturn]] void RaiseResult(PGconn *conn, PGresult *res, const char *sql);

/* The server name given to Connect() (for messages). */
const char *ServerName(PGconn *conn);

/* Validator of the dualwrite foreign-data wrapper's options. */
void ValidateOptions(List *options, Oid catalog);

} // namespace pgdw::remote

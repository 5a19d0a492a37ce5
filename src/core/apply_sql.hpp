/*-------------------------------------------------------------------------
 * apply_sql.hpp
 *    SQL text the worker sends to the modern database to apply one batch
 *    of changes to one table set-wise: COPY into a temporary staging table,
 *    then keep only the newest change per key, delete the keys whose newest
 *    change is a delete and upsert the rest.
 *
 * Collapsing to the newest change per key is exact because every change
 * carries the complete new row image (or, for a delete, the key), and the
 * staging order _dw_ord is the capture order, which for one key is its
 * commit order (see outbox/outbox.hpp).
 *
 * IDENTIFICATION  src/core/apply_sql.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include <string>
#include <vector>

namespace pgdw::core {

/* What the worker knows about one target table. */
struct TargetShape {
	std::string schema;               /* target schema (never empty) */
	std::string table;                /* target table name */
	std::vector<std::string> columns; /* target columns, in staging/COPY order */
	std::vector<size_t> key;          /* indexes into columns forming the key */
	std::string stage;                /* name of the temp staging table */
};

/* Staging columns that precede the table's own columns. */
constexpr const char *kOrdColumn = "_dw_ord";
constexpr const char *kOpColumn = "_dw_op";

/* "schema"."table" */
std::string QualifiedTarget(const TargetShape &t);

/* CREATE TEMP TABLE IF NOT EXISTS for the staging table (typed like the target). */
std::string StageCreateSql(const TargetShape &t);

/* COPY pg_temp.stage (_dw_ord, _dw_op, cols...) FROM STDIN */
std::string StageCopySql(const TargetShape &t);

/*
 * COPY straight into the target (its columns only): the fast path for a
 * batch of a table that holds only inserts, tried under a savepoint.  If
 * it succeeds, no key was there yet nor twice in the batch, so it did
 * exactly what the upsert would do; a unique violation (a key already
 * there, or a backfill copy repeating a captured insert) sends the batch
 * through the staging table and the upsert instead.
 */
std::string DirectCopySql(const TargetShape &t);

/* DELETE of the keys whose newest staged change is a delete ('D'). */
std::string ApplyDeleteSql(const TargetShape &t);

/* INSERT .. ON CONFLICT (key) DO UPDATE of the newest non-delete image per key. */
std::string ApplyUpsertSql(const TargetShape &t);

/*
 * Sync mode applies one change at a time, as prepared statements sent in
 * one pipeline (a temporary staging table cannot be used: PREPARE
 * TRANSACTION refuses a transaction that touched temporary objects).
 * Parameters are text, typed by the target's columns:
 *  RowUpsertSql: $1..$n = the columns in order; INSERT .. ON CONFLICT (key)
 *                DO UPDATE (an insert that finds its key, e.g. backfilled,
 *                gives the same row as on the legacy side);
 *  RowDeleteSql: $1..$k = the key columns in key order.
 */
std::string RowUpsertSql(const TargetShape &t);
std::string RowDeleteSql(const TargetShape &t);

/* TRUNCATE of the target (a captured TRUNCATE). */
std::string ApplyTruncateSql(const TargetShape &t);
/* One TRUNCATE of several targets (the tables one legacy statement
 * truncated: tables referencing each other can only go together). */
std::string ApplyTruncateSql(const std::vector<const TargetShape *> &targets);

/* The remote progress table (idempotent DDL; no change to an existing one). */
std::string ProgressSchemaSql();

/* Brings a progress table made by an earlier build up to date (needs its
 * owner: run after ProgressOwnerCheckSql() has been checked). */
std::string ProgressUpgradeSql();

/* One row: owners of schema _dualwrite and of _dualwrite.applied, their
 * trigger and rule counts, relkind and current_user.  The worker checks it
 * before it writes there: an object someone else created first must not
 * be adopted (its owner could run code as the delivering role). */
std::string ProgressOwnerCheckSql();

/* This origin's row, if missing (default first progress, or the given one). */
std::string ProgressRowSql(const std::string &origin);
std::string ProgressRowSql(const std::string &origin, const std::string &done_snapshot,
                           const std::string &cur_snapshot, const std::string &pos_lsn,
                           const std::string &pos_txid, int pos_seq);

/* Schema and row in one string (idempotent). */
std::string ProgressBootstrapSql(const std::string &origin);

/* The same, with the row's first progress given (a held table's stream
 * starts where its server's stream stood).  Empty cur_snapshot: no open
 * range (position NULL). */
std::string ProgressBootstrapSql(const std::string &origin, const std::string &done_snapshot,
                                 const std::string &cur_snapshot, const std::string &pos_lsn,
                                 const std::string &pos_txid, int pos_seq);

/* Read the progress row of one origin (with its version). */
std::string ProgressSelectSql(const std::string &origin);

/*
 * The first statement of every batch transaction: lock the origin's
 * progress row and fail unless it still has the version this worker read.
 * A previous worker's batch may still be committing on the modern side
 * (the worker died with its COMMIT in flight): the lock waits for it, and
 * if it committed, the version moved and this batch is refused instead of
 * applied twice.  The worker then reconnects and reads the truth.
 */
std::string ProgressCheckSql(const std::string &origin, long long version);

/*
 * The progress write, in the same remote transaction as the data it
 * describes: that is what makes a replayed batch detectable.  Bumps the
 * version the check compares.
 */
std::string ProgressUpdateSql(const std::string &origin, const std::string &done_snapshot,
                              const std::string &cur_snapshot, const std::string &pos_lsn,
                              const std::string &pos_txid, int pos_seq);

} // namespace pgdw::core


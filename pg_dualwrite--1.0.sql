/* pg_dualwrite--1.0.sql: pg_dualwrite install script */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_dualwrite" to load this file. \quit

-- The extension creates and owns its schema (no IF NOT EXISTS): nobody else
-- can have planted objects in it, and its functions pin search_path anyway.
CREATE SCHEMA dualwrite;
REVOKE ALL ON SCHEMA dualwrite FROM PUBLIC;
COMMENT ON SCHEMA dualwrite IS 'pg_dualwrite: dual write of row changes to a modern database';

------------------------------------------------------------------------------
-- Catalog: the flagged tables.  Dumped by pg_dump (pg_extension_config_dump)
-- so a restored database keeps its configuration; regclass dumps as a name.
------------------------------------------------------------------------------
CREATE TABLE dualwrite.tables (
    tbl           regclass    PRIMARY KEY,
    mode          text        NOT NULL CHECK (mode IN ('async', 'sync')),
    target_server name        NOT NULL,
    target_table  text        NOT NULL,   -- "schema"."table" on the modern side
    column_map    jsonb,                  -- {"legacy_column": "modern_column" | null}
    enabled_by    regrole     NOT NULL,   -- who called enable() (for the record)
    enabled_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- attribute numbers (in tbl) of the key changes are delivered by, fixed
    -- by enable(); DDL that would change the table's replica identity key
    -- is refused (dualwrite._on_ddl_command_end)
    key_attnums   int2[],
    -- dualwrite.pause(): capture goes on, delivery of the table waits
    paused        boolean     NOT NULL DEFAULT false,
    -- sync mode: what a failure of the modern side does to the writing
    -- transaction (NULL: the setting dualwrite.sync_failure)
    sync_failure  text        CHECK (sync_failure IN ('error', 'queue'))
);
SELECT pg_catalog.pg_extension_config_dump('dualwrite.tables', '');
COMMENT ON TABLE dualwrite.tables IS 'Tables whose changes pg_dualwrite captures (managed by dualwrite.enable/disable)';

-- Who delivers to each target server: one role per server and database,
-- whose user mapping every table of that server is shipped through.  Set
-- by the first enable() onto the server (to the enabling role) or by
-- dualwrite.set_delivery_role(); kept when tables are disabled.  An OID,
-- not a name: renaming the role changes nothing, dropping it stops only
-- this server's delivery, with an error that says so.
CREATE TABLE dualwrite.servers (
    server     name        PRIMARY KEY,
    deliver_as regrole     NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('dualwrite.servers', '');
COMMENT ON TABLE dualwrite.servers IS 'The role whose user mapping delivers to each target server';
REVOKE ALL ON dualwrite.tables, dualwrite.servers FROM PUBLIC;

------------------------------------------------------------------------------
-- Outbox: three generations, appended to by the capture trigger (heap_insert,
-- no index), drained by the worker and truncated once delivered.  Not dumped:
-- changes pending at dump time belong to the source cluster.
------------------------------------------------------------------------------
CREATE TABLE dualwrite._outbox_0 (
    txid  xid8        NOT NULL,  -- top-level transaction
    lsn   pg_lsn      NOT NULL,  -- WAL position at capture: per-key commit order
    seq   integer     NOT NULL,  -- tie-break within one backend
    ts    timestamptz NOT NULL,  -- transaction start, for lag
    relid oid         NOT NULL,  -- captured relation (a partition, for partitioned tables)
    op    "char"      NOT NULL,  -- I U D T
    layout integer    NOT NULL,  -- fingerprint of the image's column layout (src/outbox/layout.hpp)
    data  bytea                  -- heap tuple image, TOAST inlined
) WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false);
-- Images are compressed already where the table compresses them.
ALTER TABLE dualwrite._outbox_0 ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE dualwrite._outbox_1 (LIKE dualwrite._outbox_0 INCLUDING STORAGE)
    WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false);
CREATE TABLE dualwrite._outbox_2 (LIKE dualwrite._outbox_0 INCLUDING STORAGE)
    WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false);
REVOKE ALL ON dualwrite._outbox_0, dualwrite._outbox_1, dualwrite._outbox_2 FROM PUBLIC;

-- Local copy of the delivery progress of each target server, written by the
-- worker after the same progress committed on the modern side (so it is never
-- ahead of the truth there).  Rows visible in done_snapshot are applied; of
-- the rows visible in cur_snapshot but not in done_snapshot, those up to
-- (pos_lsn, pos_txid, pos_seq) are applied.
CREATE TABLE dualwrite._progress (
    server        name        PRIMARY KEY,
    done_snapshot pg_snapshot NOT NULL,
    cur_snapshot  pg_snapshot,
    pos_lsn       pg_lsn,
    pos_txid      xid8,
    pos_seq       integer,
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Held tables: a change of the table was rejected by the modern side in a
-- way that retrying as it is cannot fix (a constraint, a permission, a bad
-- value), so the table left its server's stream and is delivered by a
-- stream of its own, retried with backoff, while the server's other tables
-- go on.  Its progress (as in _progress) starts where the server's stream
-- stood when it was held; once it has caught up with that stream again,
-- the row is deleted and the table rejoins it (src/worker/holds.cpp).
CREATE TABLE dualwrite._held (
    relid         oid         PRIMARY KEY,
    server        name        NOT NULL,
    hold_id       bigint      NOT NULL,   -- names the table's own stream on the modern side
    held_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reason        text        NOT NULL,
    sqlstate      text,
    done_snapshot pg_snapshot NOT NULL,
    cur_snapshot  pg_snapshot,
    pos_lsn       pg_lsn,
    pos_txid      xid8,
    pos_seq       integer
);
REVOKE ALL ON dualwrite._held FROM PUBLIC;

-- Per-table delivery counters (advisory: not exact across a worker crash).
CREATE TABLE dualwrite._table_stats (
    relid           oid         PRIMARY KEY,
    applied         bigint      NOT NULL DEFAULT 0,
    failures        bigint      NOT NULL DEFAULT 0,
    last_applied_at timestamptz,
    last_error      text,
    last_error_at   timestamptz
);
REVOKE ALL ON dualwrite._progress, dualwrite._table_stats FROM PUBLIC;

------------------------------------------------------------------------------
-- Capture triggers and the foreign-data wrapper
------------------------------------------------------------------------------
CREATE FUNCTION dualwrite._capture() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dualwrite_capture' LANGUAGE C;
CREATE FUNCTION dualwrite._capture_truncate() RETURNS trigger
    AS 'MODULE_PATHNAME', 'dualwrite_capture_truncate' LANGUAGE C;
REVOKE ALL ON FUNCTION dualwrite._capture(), dualwrite._capture_truncate() FROM PUBLIC;

CREATE FUNCTION dualwrite._fdw_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_fdw_validator' LANGUAGE C STRICT;
-- Validator only, like dblink_fdw: the server and user mapping describe where
-- the modern database is and who we are there; no foreign tables.
CREATE FOREIGN DATA WRAPPER dualwrite VALIDATOR dualwrite._fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER dualwrite IS 'modern databases that pg_dualwrite delivers to';

------------------------------------------------------------------------------
-- Configuration functions (superuser, or roles granted EXECUTE)
------------------------------------------------------------------------------
CREATE FUNCTION dualwrite.enable(
    tbl           regclass,
    mode          text  DEFAULT pg_catalog.current_setting('dualwrite.default_mode'),
    target_table  text  DEFAULT NULL,
    column_map    jsonb DEFAULT NULL,
    target_server name  DEFAULT NULL,
    sync_failure  text  DEFAULT NULL)
RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_enable' LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.enable(regclass, text, text, jsonb, name, text) IS
    'validate a table against its modern target and start capturing its changes';

-- Switch a flagged table between 'async' and 'sync' (and set its failure
-- policy) without losing or reordering a change (see README "Sync mode").
CREATE FUNCTION dualwrite.set_mode(tbl regclass, mode text, sync_failure text DEFAULT NULL)
RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_set_mode' LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.set_mode(regclass, text, text) IS
    'switch a flagged table between async and sync delivery';

CREATE FUNCTION dualwrite.disable(tbl regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_disable' LANGUAGE C STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.disable(regclass) IS
    'stop capturing a table; its undelivered changes are discarded';

CREATE FUNCTION dualwrite.set_delivery_role(server name, role regrole) RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_set_delivery_role' LANGUAGE C STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.set_delivery_role(name, regrole) IS
    'choose the role whose user mapping delivers to a server (superuser; validated on the modern side first)';

REVOKE ALL ON FUNCTION dualwrite.enable(regclass, text, text, jsonb, name, text), dualwrite.disable(regclass),
    dualwrite.set_delivery_role(name, regrole), dualwrite.set_mode(regclass, text, text) FROM PUBLIC;

-- Preflight: one row per check, each run on its own (one failing check
-- does not stop the others).  Superusers, or the delivering roles of
-- dualwrite.servers once granted EXECUTE (they see their servers only).
CREATE FUNCTION dualwrite.check(
    OUT check_name text, OUT object text, OUT ok boolean, OUT severity text, OUT detail text, OUT hint text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'dualwrite_check' LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.check() IS
    'preflight: preload, workers, servers, user mappings and privileges on the modern side, target tables';
REVOKE ALL ON FUNCTION dualwrite.check() FROM PUBLIC;

------------------------------------------------------------------------------
-- Status
------------------------------------------------------------------------------
CREATE FUNCTION dualwrite._worker_info(
    OUT datname name, OUT pid integer, OUT state text, OUT state_since timestamptz,
    OUT last_batch_at timestamptz, OUT applied bigint, OUT last_error text, OUT last_error_at timestamptz,
    OUT apply_rate double precision, OUT batches bigint)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'dualwrite_worker_info' LANGUAGE C;

CREATE FUNCTION dualwrite._sync_info(tbl regclass,
    OUT transactions bigint, OUT fallbacks bigint, OUT backlog boolean)
RETURNS record
    AS 'MODULE_PATHNAME', 'dualwrite_sync_info' LANGUAGE C STRICT;
CREATE FUNCTION dualwrite._in_doubt(OUT count integer, OUT oldest timestamptz)
RETURNS record
    AS 'MODULE_PATHNAME', 'dualwrite_in_doubt' LANGUAGE C;
-- Counters only (no error texts, no row values): readable by whoever may
-- read dualwrite.status, as the view needs them.

CREATE FUNCTION dualwrite._wake() RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_wake' LANGUAGE C;
-- Worker states carry remote error texts, which can hold row values: no
-- access for PUBLIC, and a non-superuser granted EXECUTE (to read
-- dualwrite.status / dualwrite.workers) sees its own database's row only.
REVOKE ALL ON FUNCTION dualwrite._worker_info(), dualwrite._wake() FROM PUBLIC;

-- Every captured change not yet applied on its modern server (committed
-- changes only: MVCC hides aborted and in-progress ones).
CREATE VIEW dualwrite._pending AS
WITH RECURSIVE rel(relid, tbl, target_server) AS (
    -- Each flagged table and its partitions, read from pg_inherits without
    -- locks (pg_partition_tree() locks every partition and would make the
    -- worker, or a status query, wait behind DDL and deadlock with it).
    SELECT t.tbl::oid, t.tbl, t.target_server FROM dualwrite.tables t
    UNION
    SELECT i.inhrelid, r.tbl, r.target_server
    FROM pg_catalog.pg_inherits i JOIN rel r ON i.inhparent OPERATOR(pg_catalog.=) r.relid
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid AND c.relispartition  -- not plain inheritance
), rp AS (
    -- Each captured relation with the progress its changes are measured
    -- against: a held table's own stream, else its server's; none (NULL)
    -- when the stream has never recorded progress (it delivered nothing).
    SELECT r.relid, r.tbl, r.target_server,
           CASE WHEN h.relid IS NOT NULL THEN h.done_snapshot ELSE p.done_snapshot END AS done_snapshot,
           CASE WHEN h.relid IS NOT NULL THEN h.cur_snapshot ELSE p.cur_snapshot END AS cur_snapshot,
           CASE WHEN h.relid IS NOT NULL THEN h.pos_lsn ELSE p.pos_lsn END AS pos_lsn,
           CASE WHEN h.relid IS NOT NULL THEN h.pos_txid ELSE p.pos_txid END AS pos_txid,
           CASE WHEN h.relid IS NOT NULL THEN h.pos_seq ELSE p.pos_seq END AS pos_seq
    FROM rel r
    LEFT JOIN dualwrite._held h ON h.relid OPERATOR(pg_catalog.=) r.tbl::oid
    LEFT JOIN dualwrite._progress p
           ON h.relid IS NULL AND p.server OPERATOR(pg_catalog.=) r.target_server
), o AS NOT MATERIALIZED (
    -- No image column, and not materialized: "gen = g" and LIMIT reach
    -- the scans, and a backlog is never copied.
    SELECT 0 AS gen, txid, lsn, seq, ts, relid, op FROM dualwrite._outbox_0
    UNION ALL SELECT 1, txid, lsn, seq, ts, relid, op FROM dualwrite._outbox_1
    UNION ALL SELECT 2, txid, lsn, seq, ts, relid, op FROM dualwrite._outbox_2
)
-- The outbox is streamed, each row looking its relation up in the small rp
-- (OFFSET 0 keeps that a per-row lookup: as a join, the planner sorted or
-- hashed the whole outbox, a million changes of a backlog, at every use).
SELECT o.gen, r.tbl, r.target_server, o.txid, o.lsn, o.seq, o.ts, o.op
FROM o
CROSS JOIN LATERAL (SELECT * FROM rp WHERE rp.relid OPERATOR(pg_catalog.=) o.relid OFFSET 0) r
WHERE r.done_snapshot IS NULL
   OR NOT (pg_catalog.pg_visible_in_snapshot(o.txid, r.done_snapshot)
           OR (r.cur_snapshot IS NOT NULL
               AND pg_catalog.pg_visible_in_snapshot(o.txid, r.cur_snapshot)
               AND (o.lsn, o.txid, o.seq) OPERATOR(pg_catalog.<=) (r.pos_lsn, r.pos_txid, r.pos_seq)));
REVOKE ALL ON dualwrite._pending FROM PUBLIC;

-- What is wrong with a flagged table's capture triggers, or NULL.  On the
-- table and on each of its partitions (row triggers are cloned to them):
-- dualwrite_capture must be the AFTER INSERT OR UPDATE OR DELETE row
-- trigger calling dualwrite._capture(), without column list or WHEN, and
-- dualwrite_capture_truncate a TRUNCATE statement trigger calling
-- dualwrite._capture_truncate() (BEFORE or AFTER); both ENABLE ORIGIN ('O':
-- 'D' loses changes, 'R' captures only replicated changes, 'A' also
-- captures the changes pg_dualwrite applies, which loops), and no trigger
-- may call those functions under another name (a renamed capture trigger).
-- all_truncate => false skips the truncate trigger of partitions: the DDL
-- guard refuses only what a command did, and a command that drops or
-- renames that trigger is caught by its name.
CREATE FUNCTION dualwrite._capture_problem(tbl regclass, all_truncate boolean) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
WITH RECURSIVE tree(relid, level) AS (
    -- the partitions, from pg_inherits: pg_partition_tree() would lock each
    -- of them, waiting, so that a status query could wait behind DDL
    SELECT i.inhrelid, 1 FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid AND c.relispartition
    WHERE i.inhparent OPERATOR(pg_catalog.=) tbl::oid
    UNION ALL
    SELECT i.inhrelid, t.level OPERATOR(pg_catalog.+) 1 FROM pg_catalog.pg_inherits i
    JOIN tree t ON i.inhparent OPERATOR(pg_catalog.=) t.relid
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid AND c.relispartition
), rel AS (
    SELECT tbl::oid AS relid, 0 AS level, 'table ' OPERATOR(pg_catalog.||) tbl::text AS what
    UNION ALL
    SELECT tr.relid, tr.level, 'partition ' OPERATOR(pg_catalog.||) tr.relid::regclass::text
    FROM tree tr
), want (tgname, fn, row_level) AS (
    VALUES ('dualwrite_capture'::name, 'dualwrite._capture()'::regprocedure, true),
           ('dualwrite_capture_truncate'::name, 'dualwrite._capture_truncate()'::regprocedure, false)
), problem AS (
    SELECT r.level, r.relid, w.row_level,
           'trigger ' OPERATOR(pg_catalog.||) w.tgname OPERATOR(pg_catalog.||) CASE
             WHEN t.oid IS NULL THEN ' is missing on ' OPERATOR(pg_catalog.||) r.what
             WHEN t.tgfoid OPERATOR(pg_catalog.<>) w.fn::oid OR t.tgqual IS NOT NULL
                  -- the row trigger says 'sync' exactly when the table is a sync table
                  OR t.tgnargs OPERATOR(pg_catalog.<>) CASE WHEN w.row_level AND m.mode OPERATOR(pg_catalog.=) 'sync' THEN 1 ELSE 0 END
                  OR (t.tgnargs OPERATOR(pg_catalog.=) 1 AND t.tgargs OPERATOR(pg_catalog.<>) '\x73796e6300'::bytea)
                  OR pg_catalog.cardinality(t.tgattr::int2[]) OPERATOR(pg_catalog.<>) 0
                  -- ROW | INSERT | DELETE | UPDATE, AFTER
                  OR (w.row_level AND t.tgtype OPERATOR(pg_catalog.<>) 29)
                  -- STATEMENT, TRUNCATE only, BEFORE or AFTER
                  OR (NOT w.row_level AND (t.tgtype OPERATOR(pg_catalog.&) 125) OPERATOR(pg_catalog.<>) 32)
               THEN ' on ' OPERATOR(pg_catalog.||) r.what OPERATOR(pg_catalog.||) ' is not the one dualwrite.enable() created'
             WHEN t.tgenabled OPERATOR(pg_catalog.=) 'D' THEN ' is disabled on ' OPERATOR(pg_catalog.||) r.what
             WHEN t.tgenabled OPERATOR(pg_catalog.=) 'R'
               THEN ' fires only in replica mode (ENABLE REPLICA) on ' OPERATOR(pg_catalog.||) r.what
             WHEN t.tgenabled OPERATOR(pg_catalog.=) 'A'
               THEN ' fires in replica mode too (ENABLE ALWAYS) on ' OPERATOR(pg_catalog.||) r.what
           END AS text
    FROM rel r
    CROSS JOIN want w
    LEFT JOIN dualwrite.tables m ON m.tbl OPERATOR(pg_catalog.=) $1
    LEFT JOIN pg_catalog.pg_trigger t
           ON t.tgrelid OPERATOR(pg_catalog.=) r.relid AND t.tgname OPERATOR(pg_catalog.=) w.tgname
    WHERE w.row_level OR all_truncate OR r.level OPERATOR(pg_catalog.=) 0
    UNION ALL
    SELECT r.level, r.relid, w.row_level,
           'trigger ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(t.tgname) OPERATOR(pg_catalog.||) ' on '
           OPERATOR(pg_catalog.||) r.what OPERATOR(pg_catalog.||) ' calls ' OPERATOR(pg_catalog.||) w.fn::text
           OPERATOR(pg_catalog.||) ' (a renamed capture trigger)'
    FROM rel r
    JOIN pg_catalog.pg_trigger t ON t.tgrelid OPERATOR(pg_catalog.=) r.relid
    JOIN want w ON w.fn::oid OPERATOR(pg_catalog.=) t.tgfoid AND w.tgname OPERATOR(pg_catalog.<>) t.tgname
)
SELECT p.text FROM problem p WHERE p.text IS NOT NULL
ORDER BY p.row_level DESC, p.level, p.relid::regclass::text, p.text
LIMIT 1
$$;
REVOKE ALL ON FUNCTION dualwrite._capture_problem(regclass, boolean) FROM PUBLIC;

-- 'ok', or what is wrong with the capture triggers of a flagged table.
-- SECURITY DEFINER: a role granted SELECT on dualwrite.status reads the
-- column without a right on _capture_problem (it tells what pg_trigger,
-- readable by everyone, shows anyway).
CREATE FUNCTION dualwrite._capture_state(tbl regclass) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT COALESCE(dualwrite._capture_problem(tbl, true), 'ok') $$;
COMMENT ON FUNCTION dualwrite._capture_state(regclass) IS
    '''ok'', or what is wrong with the capture triggers of a flagged table and its partitions';

CREATE FUNCTION dualwrite._capture_skipped_at() RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'dualwrite_capture_skipped_at' LANGUAGE C;
-- (Only a time, nothing of any row: callable by whoever may read status.)

-- One row per dualwrite.reconcile() run (src/verify/reconcile.cpp).
CREATE TABLE dualwrite.reconcile_runs (
    run_id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tbl               regclass    NOT NULL,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz NOT NULL,
    rows_compared     bigint      NOT NULL,  -- legacy rows covered by the comparison
    differences       bigint      NOT NULL,  -- reported (persisting) differences
    repaired          bigint      NOT NULL,  -- repairs appended to the outbox
    bytes_transferred bigint      NOT NULL,  -- queries and results across the network (approximate)
    repair            boolean     NOT NULL,
    mode              text        NOT NULL DEFAULT 'full' CHECK (mode IN ('full', 'incremental')),
    full_reason       text                   -- why the run was full (NULL: incremental)
);
COMMENT ON TABLE dualwrite.reconcile_runs IS 'the runs of dualwrite.reconcile(), shown in dualwrite.status';
REVOKE ALL ON dualwrite.reconcile_runs FROM PUBLIC;

------------------------------------------------------------------------------
-- Backfill (src/backfill/backfill.hpp): the rows that existed before capture
-- began are copied to the modern side chunk by chunk, in key order, under
-- FOR SHARE row locks, each chunk committed there before here; one state
-- row per table, updated in each chunk's transaction, so a rerun resumes
-- after the last committed chunk.
------------------------------------------------------------------------------
CREATE TABLE dualwrite._backfill (
    relid          oid         PRIMARY KEY,   -- the flagged table
    enabled_at     timestamptz NOT NULL,      -- of the enable() it belongs to
    state          text        NOT NULL CHECK (state IN ('running', 'finished')),
    part_relid     oid,                       -- the table or partition being copied (NULL: the first)
    last_key       text[],                    -- key of the last copied chunk's end in part_relid (NULL: start)
    rows_done      bigint      NOT NULL,
    rows_estimated bigint      NOT NULL,      -- pg_class.reltuples when the run started
    batch_size     integer     NOT NULL,
    chunks         bigint      NOT NULL,
    pid            integer,                   -- the backend that drives it
    started_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,      -- last chunk (after its remote commit)
    finished_at    timestamptz,
    run_started_at timestamptz NOT NULL,      -- this run (a resumed one starts anew)
    run_rows       bigint      NOT NULL
);
REVOKE ALL ON dualwrite._backfill FROM PUBLIC;

------------------------------------------------------------------------------
-- Incremental reconcile (src/verify/incremental.hpp): a full run leaves a
-- baseline; from its start the worker records the key of every change it
-- applies to the table; the next run compares only those keys.
------------------------------------------------------------------------------
CREATE TABLE dualwrite._reconcile_state (
    relid        oid         PRIMARY KEY,
    baseline_at  timestamptz NOT NULL,  -- start of the full run it rests on
    untrusted    text,                  -- NULL, or why the next run must be full
    cleared_seq  bigint      NOT NULL   -- keys recorded up to this seq are compared
);
-- Written only by the worker (and a run's unresolved differences), never
-- updated, so the worker's inserts never conflict with a running reconcile.
CREATE TABLE dualwrite._reconcile_dirty (
    relid  oid    NOT NULL,
    key    text   NOT NULL,  -- the key columns' text, COPY-escaped, tab-separated
    seq    bigint NOT NULL   -- dualwrite._reconcile_dirty_seq when recorded
);
CREATE INDEX ON dualwrite._reconcile_dirty (relid, key, seq);
CREATE SEQUENCE dualwrite._reconcile_dirty_seq;
REVOKE ALL ON dualwrite._reconcile_state, dualwrite._reconcile_dirty, dualwrite._reconcile_dirty_seq FROM PUBLIC;

-- What the next reconcile(tbl) will do, and why: 'incremental: ...' or
-- 'full: <reason>'.  The one place of the rule (reconcile asks it too).
CREATE FUNCTION dualwrite._reconcile_next(tbl regclass) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN t.mode OPERATOR(pg_catalog.=) 'sync'
            THEN 'full: a sync-mode table (its sessions ship changes; their keys are not recorded)'
        WHEN s.relid IS NULL THEN 'full: no baseline yet (no full run since enable)'
        WHEN s.untrusted IS NOT NULL THEN 'full: ' OPERATOR(pg_catalog.||) s.untrusted
        -- a backfill writes the modern side directly (its keys are not
        -- recorded); updated_at is written after each chunk's remote commit
        WHEN b.updated_at OPERATOR(pg_catalog.>=) s.baseline_at
            THEN 'full: a backfill copied rows since the last full run (at '
                 OPERATOR(pg_catalog.||) b.updated_at::text OPERATOR(pg_catalog.||) ')'
        WHEN dualwrite._capture_skipped_at() OPERATOR(pg_catalog.>=) s.baseline_at
            THEN 'full: capture was off (dualwrite.enabled) at '
                 OPERATOR(pg_catalog.||) dualwrite._capture_skipped_at()::text
        ELSE 'incremental: ' OPERATOR(pg_catalog.||)
             (SELECT pg_catalog.count(DISTINCT d.key) FROM dualwrite._reconcile_dirty d
              WHERE d.relid OPERATOR(pg_catalog.=) s.relid AND d.seq OPERATOR(pg_catalog.>) s.cleared_seq)::text
             OPERATOR(pg_catalog.||) ' changed keys since ' OPERATOR(pg_catalog.||) s.baseline_at::text
    END
    FROM dualwrite.tables t
    LEFT JOIN dualwrite._reconcile_state s ON s.relid OPERATOR(pg_catalog.=) t.tbl::oid
    LEFT JOIN dualwrite._backfill b ON b.relid OPERATOR(pg_catalog.=) t.tbl::oid
    WHERE t.tbl::oid OPERATOR(pg_catalog.=) $1::oid
$$;


-- A procedure (it commits each chunk), so without a SET clause (that would
-- make it atomic): each chunk transaction pins search_path itself.
CREATE PROCEDURE dualwrite.backfill(tbl regclass, batch_size integer DEFAULT 10000, restart boolean DEFAULT false)
    AS 'MODULE_PATHNAME', 'dualwrite_backfill' LANGUAGE C;
COMMENT ON PROCEDURE dualwrite.backfill(regclass, integer, boolean) IS
    'queue the rows a flagged table held before capture began for delivery, chunk by chunk, resumably (CALL it outside a transaction block)';
REVOKE ALL ON PROCEDURE dualwrite.backfill(regclass, integer, boolean) FROM PUBLIC;

-- In the spirit of pg_stat_progress_*: one row per table with a backfill,
-- as of its last committed chunk.  A 'running' state whose backend is gone
-- (cancel, error, crash) shows as 'interrupted': CALL it again to resume.
-- ('running' needs pg_read_all_stats to be seen in another role's session.)
CREATE VIEW dualwrite.backfill_progress AS
SELECT b.relid::regclass                                    AS table_name,
       CASE WHEN b.state OPERATOR(pg_catalog.=) 'finished' THEN 'finished'
            -- its backend is still in the CALL that began this run (a
            -- later statement of that session started after run_started_at)
            WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                         WHERE a.pid OPERATOR(pg_catalog.=) b.pid
                           AND a.state OPERATOR(pg_catalog.=) 'active'
                           AND a.query_start OPERATOR(pg_catalog.<=) b.run_started_at) THEN 'running'
            ELSE 'interrupted' END                          AS state,
       b.pid,
       b.part_relid::regclass                               AS current_part,
       b.last_key,
       b.rows_done,
       GREATEST(b.rows_estimated, b.rows_done)              AS rows_estimated,
       CASE WHEN b.state OPERATOR(pg_catalog.=) 'finished' THEN 100.0
            WHEN b.rows_estimated OPERATOR(pg_catalog.>) 0
            THEN pg_catalog.round(LEAST(100.0, 100.0 OPERATOR(pg_catalog.*) b.rows_done
                                  OPERATOR(pg_catalog./) b.rows_estimated), 1)
       END                                                  AS percent_done,
       r.rate                                               AS rows_per_second,
       CASE WHEN b.state OPERATOR(pg_catalog.=) 'finished' THEN interval '0'
            WHEN r.rate OPERATOR(pg_catalog.>) 0 AND b.rows_estimated OPERATOR(pg_catalog.>) b.rows_done
            THEN pg_catalog.make_interval(secs => (b.rows_estimated OPERATOR(pg_catalog.-) b.rows_done)
                                                   OPERATOR(pg_catalog./) r.rate)
       END                                                  AS eta,
       b.chunks,
       b.batch_size,
       b.started_at,
       b.updated_at,
       b.finished_at,
       b.enabled_at IS NOT DISTINCT FROM t.enabled_at        AS current
FROM dualwrite._backfill b
LEFT JOIN dualwrite.tables t ON t.tbl::oid OPERATOR(pg_catalog.=) b.relid
CROSS JOIN LATERAL (
    SELECT CASE WHEN b.updated_at OPERATOR(pg_catalog.>) b.run_started_at
                THEN pg_catalog.round((b.run_rows OPERATOR(pg_catalog./)
                     EXTRACT(epoch FROM b.updated_at OPERATOR(pg_catalog.-) b.run_started_at))::numeric)
           END AS rate) r;
COMMENT ON VIEW dualwrite.backfill_progress IS
    'per table: the backfill''s state, rows queued, estimated total, rate and ETA (as of its last committed chunk)';
REVOKE ALL ON dualwrite.backfill_progress FROM PUBLIC;

CREATE VIEW dualwrite.status AS
SELECT t.tbl                                           AS table_name,
       t.mode,
       t.target_server,
       t.target_table,
       COALESCE(s.applied, 0) + COALESCE(q.queued, 0)  AS captured,
       COALESCE(s.applied, 0)                          AS applied,
       COALESCE(q.queued, 0)                           AS queued,
       COALESCE(s.failures, 0)                         AS failed,
       q.oldest                                        AS oldest_pending,
       -- clock time: a change captured after this query's transaction began
       -- must not show a negative lag
       COALESCE(GREATEST(pg_catalog.clock_timestamp() - q.oldest, interval '0'), interval '0') AS lag,
       CASE WHEN COALESCE(q.queued, 0) OPERATOR(pg_catalog.=) 0 THEN interval '0'
            WHEN w.apply_rate OPERATOR(pg_catalog.>) 0
            THEN pg_catalog.make_interval(secs => q.queued OPERATOR(pg_catalog./) w.apply_rate)
       END                                             AS catch_up_eta,
       s.last_applied_at,
       s.last_error,
       s.last_error_at,
       t.paused,
       h.held_at                                       AS held_since,
       h.reason                                        AS held_reason,
       -- loud: with dualwrite.enabled off, changes went uncaptured
       CASE WHEN dualwrite._capture_skipped_at() IS NOT NULL
            THEN 'NOT CAPTURED since ' || dualwrite._capture_skipped_at()::text
                 || ': dualwrite.enabled was off; the databases diverge, reconcile needed'
            ELSE dualwrite._capture_state(t.tbl)
       END                                             AS capture,
       r.finished_at                                   AS last_reconcile_at,
       r.differences                                   AS last_reconcile_differences,
       dualwrite._reconcile_next(t.tbl)                AS reconcile_next,
       bf.state                                        AS backfill_state,
       bf.rows_done                                    AS backfill_rows,
       -- sync mode (since the server started): transactions shipped at
       -- commit, and those that went through the outbox instead
       COALESCE(sy.transactions, 0)                    AS sync_transactions,
       COALESCE(sy.fallbacks, 0)                       AS sync_fallbacks,
       -- this database's prepared transactions on the modern side that the
       -- resolver has not settled yet (at its last look)
       d.count                                         AS in_doubt,
       CASE WHEN d.oldest IS NOT NULL
            THEN GREATEST(pg_catalog.clock_timestamp() - d.oldest, interval '0') END AS oldest_in_doubt_age
FROM dualwrite.tables t
LEFT JOIN dualwrite._table_stats s ON s.relid OPERATOR(pg_catalog.=) t.tbl::oid
LEFT JOIN dualwrite._held h ON h.relid OPERATOR(pg_catalog.=) t.tbl::oid
LEFT JOIN (SELECT p.tbl, pg_catalog.count(*) AS queued, pg_catalog.min(p.ts) AS oldest
           FROM dualwrite._pending p GROUP BY p.tbl) q ON q.tbl::oid OPERATOR(pg_catalog.=) t.tbl::oid
LEFT JOIN dualwrite._worker_info() w ON w.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
LEFT JOIN LATERAL (SELECT rr.finished_at, rr.differences FROM dualwrite.reconcile_runs rr
                   WHERE rr.tbl::oid OPERATOR(pg_catalog.=) t.tbl::oid
                   ORDER BY rr.run_id DESC LIMIT 1) r ON true
LEFT JOIN dualwrite.backfill_progress bf ON bf.table_name::oid OPERATOR(pg_catalog.=) t.tbl::oid AND bf.current
LEFT JOIN LATERAL dualwrite._sync_info(t.tbl) sy ON true
CROSS JOIN dualwrite._in_doubt() d;
COMMENT ON VIEW dualwrite.status IS
    'per flagged table: captured, applied, queued and failed changes, lag, the last error, whether it is held, the state of its capture';
REVOKE ALL ON dualwrite.status FROM PUBLIC;

CREATE VIEW dualwrite.workers AS
SELECT w.datname, w.pid, w.state, w.state_since, w.last_batch_at, w.applied,
       pg_catalog.round(w.apply_rate::numeric) AS apply_rate, w.batches, w.last_error, w.last_error_at
FROM dualwrite._worker_info() w;
COMMENT ON VIEW dualwrite.workers IS 'per database: the delivery worker''s state and its last batch';
REVOKE ALL ON dualwrite.workers FROM PUBLIC;

-- Wait until every change committed before the call is applied on the modern
-- side.  Changes of the calling transaction itself are not waited for (they
-- cannot be delivered before it commits).  Call it outside a REPEATABLE READ
-- transaction: it must see the worker's progress as it moves.
CREATE FUNCTION dualwrite.wait_for_delivery(timeout interval DEFAULT interval '60 seconds')
RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    snap     pg_snapshot := pg_current_snapshot();
    me       xid8        := pg_current_xact_id_if_assigned();
    deadline timestamptz := clock_timestamp() + timeout;
    started  timestamptz;
BEGIN
    LOOP
        started := clock_timestamp();
        IF NOT EXISTS (SELECT 1 FROM dualwrite._pending p
                       WHERE pg_visible_in_snapshot(p.txid, snap)
                         AND p.txid IS DISTINCT FROM me) THEN
            RETURN true;
        END IF;
        IF clock_timestamp() >= deadline THEN
            RETURN false;
        END IF;
        -- Each look reads the outbox up to the first undelivered change:
        -- with a large backlog that costs, so sleep four times as long as
        -- the look took (the waiter takes at most a fifth of a core away
        -- from the delivery it waits for), and at least 20 ms.
        PERFORM pg_sleep(greatest(0.02, 4 * extract(epoch FROM clock_timestamp() - started)));
    END LOOP;
END
$$;
COMMENT ON FUNCTION dualwrite.wait_for_delivery(interval) IS
    'wait until every change committed before the call is applied on the modern side; false on timeout';
REVOKE ALL ON FUNCTION dualwrite.wait_for_delivery(interval) FROM PUBLIC;

------------------------------------------------------------------------------
-- DDL guards (src/config/ddl_guard.cpp).  Event-trigger functions run for
-- every role's DDL: SECURITY DEFINER (an ordinary role cannot read the
-- dualwrite schema), search_path pinned, and they only read the catalog,
-- unflag tables that are being dropped, or refuse the command.  Each one
-- returns at once when the command involves no flagged table (jit = off:
-- compiling their catalog queries would cost more than running them).
--  - sql_drop: a dropped table stops being flagged; dropping a capture
--    trigger, or the constraint or index a flagged table's key rests on,
--    is refused;
--  - ddl_command_start (DROP INDEX): notes the replica-identity indexes of
--    flagged tables for sql_drop (and refuses DROP INDEX CONCURRENTLY of one);
--  - ddl_command_end (ALTER TABLE, ALTER TRIGGER, CREATE TABLE): a changed replica
--    identity key is refused; so are capture triggers disabled, set to
--    ENABLE REPLICA / ALWAYS, or renamed (superusers get a WARNING);
--  - table_rewrite: a rewrite while changes of the table are undelivered
--    (queued images are decoded with the current column layout) is refused,
--    counted under a snapshot taken after the rewrite's lock was granted.
------------------------------------------------------------------------------
CREATE FUNCTION dualwrite._on_sql_drop() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'dualwrite_on_sql_drop' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off;
CREATE EVENT TRIGGER dualwrite_sql_drop ON sql_drop EXECUTE FUNCTION dualwrite._on_sql_drop();

CREATE FUNCTION dualwrite._on_ddl_command_start() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'dualwrite_on_ddl_command_start' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off;
CREATE EVENT TRIGGER dualwrite_ddl_command_start ON ddl_command_start
    WHEN TAG IN ('DROP INDEX') EXECUTE FUNCTION dualwrite._on_ddl_command_start();

CREATE FUNCTION dualwrite._on_ddl_command_end() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'dualwrite_on_ddl_command_end' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off;
CREATE EVENT TRIGGER dualwrite_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'ALTER TRIGGER', 'CREATE TABLE') EXECUTE FUNCTION dualwrite._on_ddl_command_end();

CREATE FUNCTION dualwrite._on_table_rewrite() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'dualwrite_on_table_rewrite' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off;
CREATE EVENT TRIGGER dualwrite_table_rewrite ON table_rewrite EXECUTE FUNCTION dualwrite._on_table_rewrite();

-- Switches: pause and resume the delivery of one table (capture goes on).
CREATE FUNCTION dualwrite.pause(tbl regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_pause' LANGUAGE C STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.pause(regclass) IS
    'stop delivering a table (its changes are still captured and wait in the outbox)';
CREATE FUNCTION dualwrite.resume(tbl regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_resume' LANGUAGE C STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.resume(regclass) IS
    'deliver a paused table again: it catches up, then rejoins its server''s stream';
REVOKE ALL ON FUNCTION dualwrite.pause(regclass), dualwrite.resume(regclass) FROM PUBLIC;

-- The outbox generations: which one capture writes to, their size, and the
-- prepared transactions that hold one back (it cannot be truncated until
-- they end; capture rotates around it meanwhile).
CREATE FUNCTION dualwrite._capture_generation() RETURNS integer
    AS 'MODULE_PATHNAME', 'dualwrite_capture_generation' LANGUAGE C;
REVOKE ALL ON FUNCTION dualwrite._capture_generation() FROM PUBLIC;
CREATE VIEW dualwrite.outbox AS
SELECT g.gen AS generation,
       g.gen OPERATOR(pg_catalog.=) dualwrite._capture_generation() AS is_current,
       pg_catalog.pg_total_relation_size(g.rel) AS bytes,
       (SELECT pg_catalog.array_agg(DISTINCT px.gid ORDER BY px.gid)
        -- a prepared transaction's locks have no pid; its own transactionid
        -- lock (same virtualtransaction) names it
        FROM pg_catalog.pg_locks l
        JOIN pg_catalog.pg_locks x ON x.locktype OPERATOR(pg_catalog.=) 'transactionid'
                                  AND x.pid IS NULL
                                  AND x.virtualtransaction OPERATOR(pg_catalog.=) l.virtualtransaction
        JOIN pg_catalog.pg_prepared_xacts px ON px.transaction OPERATOR(pg_catalog.=) x.transactionid
        WHERE l.locktype OPERATOR(pg_catalog.=) 'relation' AND l.pid IS NULL
          AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                                 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
          AND l.relation OPERATOR(pg_catalog.=) g.rel) AS held_by_prepared
FROM (VALUES (0, 'dualwrite._outbox_0'::regclass), (1, 'dualwrite._outbox_1'::regclass),
             (2, 'dualwrite._outbox_2'::regclass)) AS g(gen, rel);
COMMENT ON VIEW dualwrite.outbox IS
    'the outbox generations: current one, size, prepared transactions that hold one back';
REVOKE ALL ON dualwrite.outbox FROM PUBLIC;

-- Test fault points of the worker (TAP tests; superuser only, one-shot).
CREATE FUNCTION dualwrite._debug_fault(point text) RETURNS void
    AS 'MODULE_PATHNAME', 'dualwrite_debug_fault' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION dualwrite._debug_fault(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION dualwrite._on_sql_drop(), dualwrite._on_ddl_command_start(),
    dualwrite._on_ddl_command_end(), dualwrite._on_table_rewrite() FROM PUBLIC;

-- Proof of the C++/PostgreSQL boundary, for the regression suite.
CREATE FUNCTION dualwrite._selftest_boundary(kind text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'dualwrite_selftest_boundary' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION dualwrite._selftest_boundary(text) FROM PUBLIC;

------------------------------------------------------------------------------
-- Checksums (src/verify/): the canonical row form is described in README.md.
-- A key range is [from_key, to_key) in the key's row order; each bound is
-- the key columns' values as text, NULL for an unbounded side.
------------------------------------------------------------------------------
CREATE FUNCTION dualwrite.row_checksum(r record) RETURNS bytea
    AS 'MODULE_PATHNAME', 'dualwrite_row_checksum' LANGUAGE C STRICT STABLE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.row_checksum(record) IS
    'SHA-256 of the canonical encoding of a row (its columns by name)';

CREATE FUNCTION dualwrite.table_checksum(tbl regclass, from_key text[] DEFAULT NULL, to_key text[] DEFAULT NULL,
    OUT row_count bigint, OUT checksum bytea)
    AS 'MODULE_PATHNAME', 'dualwrite_table_checksum' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.table_checksum(regclass, text[], text[]) IS
    'row count and sum (mod 2^256) of the row SHA-256 digests of a flagged table, as delivered (column_map), optionally of a key range';

CREATE FUNCTION dualwrite.checksum_sql(tbl regclass, from_key text[] DEFAULT NULL, to_key text[] DEFAULT NULL)
    RETURNS text
    AS 'MODULE_PATHNAME', 'dualwrite_checksum_sql' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.checksum_sql(regclass, text[], text[]) IS
    'plain SQL computing table_checksum''s figures on the modern table, for a database without pg_dualwrite';

CREATE FUNCTION dualwrite.remote_checksum(tbl regclass, from_key text[] DEFAULT NULL, to_key text[] DEFAULT NULL,
    OUT row_count bigint, OUT checksum bytea)
    AS 'MODULE_PATHNAME', 'dualwrite_remote_checksum' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.remote_checksum(regclass, text[], text[]) IS
    'table_checksum''s figures computed on the modern side by checksum_sql, over the delivering role''s connection';
-- remote_checksum connects as the server's delivering role: not for PUBLIC.
REVOKE ALL ON FUNCTION dualwrite.remote_checksum(regclass, text[], text[]) FROM PUBLIC;

CREATE FUNCTION dualwrite.reconcile(tbl regclass, repair boolean DEFAULT false, "full" boolean DEFAULT false)
RETURNS TABLE (key jsonb, kind text, columns text[])
    AS 'MODULE_PATHNAME', 'dualwrite_reconcile' LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dualwrite.reconcile(regclass, boolean, boolean) IS
    'rows in which the modern table differs from the legacy one (missing, extra, different: which columns); repair => true queues the legacy image (or a delete) through the outbox; incremental after a full run unless full => true';
REVOKE ALL ON FUNCTION dualwrite.reconcile(regclass, boolean, boolean) FROM PUBLIC;

-- A new database with pg_dualwrite: let the launcher start its worker now.
SELECT dualwrite._wake();

--
-- idle_cost: an idle worker costs no transaction ids (nor the WAL that
-- comes with them), also while a target is down and changes wait: its
-- rounds fail and retry, but do not write a failure record each time.
--
\c dw_modern
CREATE TABLE public.idle_t (id int PRIMARY KEY);
\c contrib_regression
-- a server of its own: its outage must not touch the other tables' counters
CALL make_server('idle_srv');
CREATE TABLE idle_t (id int PRIMARY KEY);
SELECT dualwrite.enable('idle_t', target_server => 'idle_srv');
INSERT INTO idle_t SELECT generate_series(1, 10);
SELECT dualwrite.wait_for_delivery('60s');
-- let rotation settle (the last generations are truncated), then measure
SELECT pg_sleep(3);
SELECT pg_snapshot_xmax(pg_current_snapshot()) AS xmax_before \gset
SELECT pg_sleep(3);
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint - :xmax_before::text::bigint AS xids_used_idle;

-- target down: every round fails (retried every 50-500 ms in this suite)
ALTER SERVER idle_srv OPTIONS (SET port '1');
INSERT INTO idle_t VALUES (11);
SELECT pg_sleep(3);
SELECT pg_snapshot_xmax(pg_current_snapshot()) AS xmax_before \gset
SELECT pg_sleep(3);
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint - :xmax_before::text::bigint <= 1 AS few_xids_while_failing;
SELECT queued, failed > 0 AS failed, last_error IS NOT NULL AS has_error FROM dualwrite.status WHERE table_name = 'idle_t'::regclass;
DO $$ BEGIN
    EXECUTE format('ALTER SERVER idle_srv OPTIONS (SET port %L)', current_setting('port'));
END $$;
SELECT dualwrite.wait_for_delivery('60s');
SELECT queued, last_error, last_error_at IS NULL AS error_cleared FROM dualwrite.status WHERE table_name = 'idle_t'::regclass;
SELECT dualwrite.disable('idle_t');
DROP TABLE idle_t;
DROP SERVER idle_srv CASCADE;

# test/bench/sync_ship.sh - sourced by test/bench/sync.sh (BENCH_SHIP=1):
# two shipping strategies for one BENCH_SHIP_ROWS-row (10) sync transaction, measured against
# MODERN with test/bench/ship_bench.c (see its header).  Same round trips,
# same 2PC, same rows; only "one prepared statement per row in a pipeline"
# (pg_dualwrite today) vs "one multi-row statement" differs.  Legacy is
# idle meanwhile: this is the modern side plus the client's protocol work,
# not a whole pg_dualwrite commit (the capture, the read-back of the noted
# outbox rows and their text encoding on legacy are the same for both
# strategies and are not in it).
# Sets SHIP_REPORT (lines for the report) and appends to $DETAILS.

ship_strategies() {
	local cc=${CC:-gcc} inc bin=$TMP/ship_bench out s r i order tps lat rows txns
	inc=$("$PG_CONFIG" --includedir)
	if ! command -v "$cc" >/dev/null 2>&1 || [[ ! -f $inc/libpq-fe.h ]]; then
		SHIP_REPORT="shipping strategies: skipped (needs $cc and libpq-dev)"
		return 0
	fi
	"$cc" -O2 -Wall -o "$bin" "$HERE/ship_bench.c" -I"$inc" -L"$("$PG_CONFIG" --libdir)" -lpq ||
		die "cannot build ship_bench"
	chmod 755 "$bin"
	msql bench_modern -q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS public.ship" \
		-c "$(table_ddl ship modern)" -c "$(load_sql ship)" -c "VACUUM ANALYZE public.ship"
	declare -A STPS SLAT
	for ((r = 0; r < ROUNDS; r++)); do
		order=(rows multirow); ((r % 2)) && order=(multirow rows)
		for s in "${order[@]}"; do
			msql postgres -c "CHECKPOINT"
			out=$(pgdw_as_pg "$bin" "host=127.0.0.1 port=$MPORT dbname=bench_modern user=postgres" \
				"$s" "$SHIP_SECONDS" "$CLIENTS" "$SHIP_ROWS" "$ROWS") || die "ship_bench $s failed"
			txns=$(sed -n 's/.*txns=\([0-9]*\).*/\1/p' <<<"$out")
			rows=$(sed -n 's/.*rows=\([0-9]*\).*/\1/p' <<<"$out")
			tps=$(sed -n 's/.*tps=\([0-9.]*\).*/\1/p' <<<"$out")
			lat=$(sed -n 's/.*lat_avg_ms=\([0-9.]*\).*/\1/p' <<<"$out")
			[[ -n $tps && -n $lat && $rows == $((txns * SHIP_ROWS)) ]] || die "ship_bench $s: unexpected output: $out"
			i=$(mval postgres -c "SELECT count(*) FROM pg_prepared_xacts")
			[[ $i == 0 ]] || CHECKS+=("FAIL ship_bench $s: $i prepared transactions left on modern")
			STPS[$s]="${STPS[$s]:-} $tps"; SLAT[$s]="${SLAT[$s]:-} $lat"
			say "shipping strategy $s ($SHIP_ROWS rows, 2PC, $CLIENTS clients, ${SHIP_SECONDS}s): $(fmt '%.0f' "$tps") tps, $lat ms"
			printf 'ship strategy=%s round=%d %s\n' "$s" "$((r + 1))" "$out" >>"$DETAILS"
		done
	done
	local rt mt
	# shellcheck disable=SC2086
	rt=$(median ${STPS[rows]}); mt=$(median ${STPS[multirow]})
	SHIP_REPORT=$(
		echo "shipping a $SHIP_ROWS-row sync transaction to modern (libpq client, $CLIENTS clients, ${SHIP_SECONDS}s, median of $ROUNDS; pipeline"
		echo "BEGIN + rows + PREPARE TRANSACTION, then COMMIT PREPARED; existing keys updated; legacy not involved)"
		# shellcheck disable=SC2086
		printf '  %-52s %8.0f tps  %7.2f ms\n' "one prepared upsert per row, pipelined (pg_dualwrite)" "$rt" "$(median ${SLAT[rows]})"
		# shellcheck disable=SC2086
		printf '  %-52s %8.0f tps  %7.2f ms   ratio %.3f\n' "one multi-row upsert (unnest of arrays)" "$mt" "$(median ${SLAT[multirow]})" "$(calc "$mt / $rt")"
	)
	msql bench_modern -c "DROP TABLE public.ship"
}
ship_strategies

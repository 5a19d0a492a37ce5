#!/usr/bin/env bash
# test/run-tests.sh - build pg_dualwrite and run every test suite.
#
#   sudo bash test/run-tests.sh        (or as root without sudo; CI runs .ci/run)
#
# Steps: install missing Debian packages (test/lib/deps.sh), build warning-free
# and install (make clean, make, make install, make check-link), then run, as
# the `postgres` OS user in a private temp dir:
#   regress    pg_regress on the Makefile's REGRESS list, in a temp instance
#              configured by test/regress.conf
#   isolation  pg_isolation_regress on test/isolation/specs/*.spec (if any)
#   tap        prove test/t/*.pl with PostgreSQL::Test::Cluster and the
#              shared helpers of test/perl/DualWriteTest.pm (if any)
#   unit       CMake + GoogleTest + ctest (if CMakeLists.txt exists)
# Every suite runs even when an earlier one failed.  The output ends with each
# runner's own summary line and then "N passed, N failed" (suites); the exit
# status is non-zero when anything failed.
#
# Run as a non-root user, nothing switches user: that user must be able to
# run the servers and to `make install` (or set PGDW_SKIP_INSTALL=1 when the
# installed build is current).
#
# Environment knobs:
#   PG_CONFIG            default /usr/lib/postgresql/15/bin/pg_config
#   PGDW_SUITES          suites to run, default "regress isolation tap unit"
#   PGDW_SKIP_DEPS=1     do not run test/lib/deps.sh
#   PGDW_SKIP_INSTALL=1  build and check, but do not make install
#   PGDW_SKIP_BUILD=1    no build at all: test the installed build
#   PGDW_KEEP_TMP=1      keep the temp dir (logs, outputs) and print its path
#   PGDW_SUITE_TIMEOUT   seconds per suite before it is killed (default 600)
#   PGDW_PROVE_FLAGS     extra flags for prove (e.g. "-v" or "-j2")
#   REGRESS="a b"        run only these pg_regress tests
#   PGDW_TAP="004 010"   run only the TAP scripts whose names start so
#   PGDW_LOCK=FILE       hold flock(FILE) from install to the end (several
#                        work trees sharing one PostgreSQL installation)
#
# Tests run on a copy of the work tree (without .git and build products) that
# the postgres user can read, so a root-only checkout (/root/...) works too.
# TAP tests run with the current directory at that copy's top, TESTDIR set to
# a private dir (tmp_check/ and tmp_check/log/ live there) and PG_REGRESS,
# PG_CONFIG, PATH (bindir first) set as PGXS's prove_installcheck would.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=lib/cluster.sh
. "$ROOT/test/lib/cluster.sh"
# The same locale for every suite whatever the caller's environment
# (TOOLCHAIN P22): C.UTF-8 (pgdw_fixed_locale).  pg_regress and
# pg_isolation_regress also get --encoding=UTF8 --no-locale (Makefile
# REGRESS_OPTS/ISOLATION_OPTS, added below when missing), and the TAP
# clusters are initdb'd -E UTF8 --locale=C by test/perl/DualWriteTest.pm
# (PostgreSQL::Test::Utils deletes LC_ALL; LANG stays).
pgdw_fixed_locale

PKGLIBDIR=$("$PG_CONFIG" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
PG_REGRESS_BIN=$PKGLIBDIR/pgxs/src/test/regress/pg_regress
PG_ISOLATION_REGRESS_BIN=$PKGLIBDIR/pgxs/src/test/isolation/pg_isolation_regress
PERL_TEST_LIB=$PKGLIBDIR/pgxs/src/test/perl
SUITE_TIMEOUT=${PGDW_SUITE_TIMEOUT:-600}
SUITES=${PGDW_SUITES:-regress isolation tap unit}
DIFF_LINES=${PGDW_DIFF_LINES:-400}

step() { printf '==> %s\n' "$*"; }

declare -A RESULT=()    # suite -> pass | fail | skip
declare -A SUMMARY=()   # suite -> the runner's summary line (or our reason)
ORDER=()
record() {              # record SUITE pass|fail|skip SUMMARY_LINE
	ORDER+=("$1"); RESULT[$1]=$2; SUMMARY[$1]=$3
}

# ---------------------------------------------------------------- temp dir
WORK=$(pgdw_mktemp pg_dualwrite-tests) || { echo "cannot create a temp dir" >&2; exit 1; }

cleanup() {
	# Stop any server left behind under WORK (a killed pg_regress or TAP
	# test leaves its postmaster running); they are all ours.
	local pidfile
	while IFS= read -r pidfile; do
		pgdw_as_pg "$PGDW_BINDIR/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w -t 30 stop \
			>/dev/null 2>&1 || true
	done < <(find "$WORK" -name postmaster.pid 2>/dev/null)
	if [[ -n ${PGDW_KEEP_TMP:-} ]]; then
		echo "(kept $WORK)"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run a command as the postgres user inside DIR with a time limit.
in_dir_as_pg() {
	local dir=$1; shift
	(cd "$dir" && pgdw_as_pg timeout -k 30 "$SUITE_TIMEOUT" "$@")
}

# The value of a Makefile variable, as make computes it (with PGXS loaded).
make_var() {
	make -s --no-print-directory -C "$ROOT" -f Makefile -f "$WORK/printvar.mk" \
		"PG_CONFIG=$PG_CONFIG" "__pgdw_print-$1" 2>/dev/null
}
printf '__pgdw_print-%%:\n\t@printf "%%s\\n" "$(strip $($*))"\n' >"$WORK/printvar.mk"

# ---------------------------------------------------------------- deps
if [[ -z ${PGDW_SKIP_DEPS:-} ]]; then
	step "dependencies"
	bash "$ROOT/test/lib/deps.sh" || exit 1
fi

# ---------------------------------------------------------------- build
if [[ -n ${PGDW_LOCK:-} ]]; then
	exec 9>"$PGDW_LOCK"
	flock 9
fi
BUILD_OK=1
BUILD_LOG=$WORK/build.log
build_step() {          # build_step LABEL make-args...
	local label=$1; shift
	if make -C "$ROOT" "PG_CONFIG=$PG_CONFIG" ERROR_ON_WARNING=1 "$@" >>"$BUILD_LOG" 2>&1; then
		printf '    %-12s ok\n' "$label"
	else
		printf '    %-12s FAILED\n' "$label"
		if grep -qE '(error|warning):' "$BUILD_LOG"; then
			echo "    first errors and warnings (with -Werror every warning is an error):"
			grep -E '(error|warning):' "$BUILD_LOG" | sort -u | head -n 30 | sed 's/^/    | /'
		fi
		echo "    last lines of the build log:"
		tail -n 15 "$BUILD_LOG" | sed 's/^/    | /'
		BUILD_OK=0
	fi
}
if [[ -z ${PGDW_SKIP_BUILD:-} ]]; then
	step "build (ERROR_ON_WARNING=1)"
	build_step "make clean" clean
	[[ $BUILD_OK == 1 ]] && build_step "make" -j"$(nproc)"
	if [[ $BUILD_OK == 1 && -z ${PGDW_SKIP_INSTALL:-} ]]; then build_step "make install" install; fi
	[[ $BUILD_OK == 1 ]] && build_step "check-link" check-link
fi

# ---------------------------------------------------------------- test tree
# A copy the postgres user can read (and write: pg_regress and TAP tests
# create files next to their inputs in some set-ups).
SRC=$WORK/src
mkdir -p "$SRC"
tar -C "$ROOT" --exclude=./.git --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
	--exclude=.deps --exclude=./build --exclude=results --exclude=tmp_check \
	--exclude=output_iso --exclude=./log --exclude=regression.diffs \
	--exclude=regression.out -cf - . | tar -C "$SRC" -xf -
if pgdw_is_root; then chown -R "$PGDW_PG_USER:" "$WORK"; fi
# From here on, work inside WORK: the postgres user may not be able to enter
# ROOT (e.g. a checkout under /root), and initdb/pg_ctl need a usable cwd.
cd "$WORK" || exit 1

want() { [[ " $SUITES " == *" $1 "* ]]; }

# ---------------------------------------------------------------- regress
# locale_opts OPTS: add to the caller's `extra` array what makes the temp
# instance UTF8 with the C locale, unless OPTS (the Makefile's) already says.
locale_opts() {
	[[ $1 == *--encoding=* ]] || extra+=(--encoding=UTF8)
	[[ $1 == *--no-locale* ]] || extra+=(--no-locale)
}

run_regress() {
	local out=$WORK/regress port tests opts extra=()
	tests=${REGRESS:-$(make_var REGRESS)}
	opts=$(make_var REGRESS_OPTS)
	if [[ -z $tests ]]; then record regress fail "no REGRESS list in the Makefile"; return; fi
	if [[ ! -f $SRC/test/regress.conf && $opts != *--temp-config* ]]; then
		record regress fail "test/regress.conf is missing"; return
	fi
	pgdw_as_pg mkdir -p "$out"
	pgdw_free_port port
	[[ $opts == *--inputdir* ]] || extra+=(--inputdir=.)
	[[ $opts == *--temp-config* ]] || extra+=(--temp-config=test/regress.conf)
	[[ $opts == *--load-extension=pg_dualwrite* ]] || extra+=(--load-extension=pg_dualwrite)
	locale_opts "$opts"
	step "regress: pg_regress $(wc -w <<<"$tests") tests (port $port)"
	# shellcheck disable=SC2086  # opts and tests are word lists
	in_dir_as_pg "$SRC" "$PG_REGRESS_BIN" $opts "${extra[@]}" \
		--bindir="$PGDW_BINDIR" --temp-instance="$out/instance" \
		--outputdir="$out" --port="$port" $tests 2>&1 | tee "$out.log"
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -E 'tests? (passed|failed)' "$out.log" | tail -n 1 | sed -E 's/^ +| +$//g')
	if [[ $rc -eq 0 ]]; then
		record regress pass "${line:-pg_regress exited 0}"
	else
		[[ $rc -eq 124 || $rc -eq 137 ]] && line="timed out after ${SUITE_TIMEOUT}s"
		record regress fail "${line:-pg_regress failed (exit $rc)}"
		show_regress_failure "$out"
	fi
}

show_regress_failure() {   # DIR: print regression.diffs and the server log tail
	local out=$1
	if [[ -s $out/regression.diffs ]]; then
		echo "---- $out/regression.diffs (first $DIFF_LINES lines) ----"
		head -n "$DIFF_LINES" "$out/regression.diffs"
	fi
	local log
	for log in "$out/log/initdb.log" "$out/log/postmaster.log"; do
		[[ -f $log ]] || continue
		echo "---- last 40 lines of ${log#"$WORK"/} ----"
		tail -n 40 "$log"
	done
}

# ---------------------------------------------------------------- isolation
run_isolation() {
	local out=$WORK/isolation port specs=() s opts extra=()
	for s in "$SRC"/test/isolation/specs/*.spec; do
		[[ -f $s ]] && specs+=("$(basename "$s" .spec)")
	done
	if [[ ${#specs[@]} -eq 0 ]]; then
		record isolation skip "skipped: no test/isolation/specs/*.spec"; return
	fi
	opts=$(make_var ISOLATION_OPTS)
	[[ $opts == *--inputdir* ]] || extra+=(--inputdir=test/isolation)
	[[ $opts == *--temp-config* ]] || extra+=(--temp-config=test/regress.conf)
	[[ $opts == *--load-extension=pg_dualwrite* ]] || extra+=(--load-extension=pg_dualwrite)
	locale_opts "$opts"
	pgdw_as_pg mkdir -p "$out"
	pgdw_free_port port
	step "isolation: pg_isolation_regress ${#specs[@]} specs (port $port)"
	# shellcheck disable=SC2086
	in_dir_as_pg "$SRC" "$PG_ISOLATION_REGRESS_BIN" $opts "${extra[@]}" \
		--bindir="$PGDW_BINDIR" --temp-instance="$out/instance" \
		--outputdir="$out" --port="$port" "${specs[@]}" 2>&1 | tee "$out.log"
	local rc=${PIPESTATUS[0]} line
	line=$(grep -E 'tests? (passed|failed)' "$out.log" | tail -n 1 | sed -E 's/^ +| +$//g')
	if [[ $rc -eq 0 ]]; then
		record isolation pass "${line:-pg_isolation_regress exited 0}"
	else
		[[ $rc -eq 124 || $rc -eq 137 ]] && line="timed out after ${SUITE_TIMEOUT}s"
		record isolation fail "${line:-pg_isolation_regress failed (exit $rc)}"
		show_regress_failure "$out"
	fi
}

# ---------------------------------------------------------------- tap
run_tap() {
	local out=$WORK/tap t tests=()
	for t in "$SRC"/test/t/*.pl; do
		[[ -f $t ]] || continue
		# PGDW_TAP="004 010": only the scripts whose names start so.
		if [[ -n ${PGDW_TAP:-} ]]; then
			local want_it=0 p
			for p in $PGDW_TAP; do [[ $(basename "$t") == "$p"* ]] && want_it=1; done
			[[ $want_it == 1 ]] || continue
		fi
		tests+=("test/t/$(basename "$t")")
	done
	if [[ ${#tests[@]} -eq 0 ]]; then
		record tap skip "skipped: no test/t/*.pl"; return
	fi
	pgdw_as_pg mkdir -p "$out/tmp_check"
	step "tap: prove ${#tests[@]} scripts"
	# shellcheck disable=SC2086
	in_dir_as_pg "$SRC" env TESTDIR="$out" PG_REGRESS="$PG_REGRESS_BIN" \
		PG_CONFIG="$PG_CONFIG" PATH="$PGDW_BINDIR:$PATH" PGDW_SRCDIR="$SRC" \
		prove -I "$PERL_TEST_LIB" -I test/perl -I test/t ${PGDW_PROVE_FLAGS:-} "${tests[@]}" 2>&1 |
		tee "$out.log"
	local rc=${PIPESTATUS[0]} line
	line=$(grep -E '^Result: ' "$out.log" | tail -n 1)
	if [[ $rc -eq 0 ]]; then
		record tap pass "${line:-prove exited 0}"
	else
		[[ $rc -eq 124 || $rc -eq 137 ]] && line="timed out after ${SUITE_TIMEOUT}s"
		record tap fail "${line:-prove failed (exit $rc)}"
		# The logs of the scripts prove lists in its "Test Summary Report".
		local name
		for name in $(sed -n '/^Test Summary Report/,$p' "$out.log" | grep -oE '^test/t/[^ ]+\.pl' | sort -u); do
			name=$(basename "$name" .pl)
			[[ -f $out/tmp_check/log/regress_log_$name ]] || continue
			echo "---- last 60 lines of tap/tmp_check/log/regress_log_$name ----"
			tail -n 60 "$out/tmp_check/log/regress_log_$name"
		done
		if [[ $rc -eq 124 || $rc -eq 137 ]]; then
			# Killed: no summary report; show the script that was running.
			local last
			last=$(ls -t "$out"/tmp_check/log/regress_log_* 2>/dev/null | head -n 1)
			if [[ -n $last ]]; then
				echo "---- timed out; last 60 lines of tap/tmp_check/log/$(basename "$last") ----"
				tail -n 60 "$last"
			fi
		fi
		echo "(server logs of the TAP nodes: $out/tmp_check/log/*.log; keep them with PGDW_KEEP_TMP=1)"
	fi
}

# ---------------------------------------------------------------- unit
run_unit() {
	if [[ ! -f $SRC/CMakeLists.txt ]]; then
		record unit skip "skipped: no CMakeLists.txt"; return
	fi
	local b=$WORK/unit-build log=$WORK/unit-build.log
	step "unit: cmake + ctest"
	if ! in_dir_as_pg "$WORK" cmake -S "$SRC" -B "$b" -DPGDW_BUILD_MODULE=OFF \
		-DPG_CONFIG="$PG_CONFIG" >"$log" 2>&1; then
		tail -n 40 "$log"; record unit fail "cmake configure failed"; return
	fi
	if ! in_dir_as_pg "$WORK" cmake --build "$b" -j "$(nproc)" >>"$log" 2>&1; then
		grep -E 'error|Error' "$log" | head -n 40; tail -n 20 "$log"
		record unit fail "cmake build failed"; return
	fi
	in_dir_as_pg "$WORK" ctest --test-dir "$b" --output-on-failure 2>&1 | tee "$WORK/unit.log"
	local rc=${PIPESTATUS[0]} line
	line=$(grep -E 'tests passed|No tests were found' "$WORK/unit.log" | tail -n 1)
	if [[ $rc -eq 0 && $line == *"tests passed"* ]]; then
		record unit pass "$line"
	else
		[[ $rc -eq 124 || $rc -eq 137 ]] && line="timed out after ${SUITE_TIMEOUT}s"
		record unit fail "${line:-ctest failed (exit $rc)}"
	fi
}

# ---------------------------------------------------------------- run
has_tests() {           # has_tests SUITE: does the tree hold tests for it?
	case $1 in
	isolation) compgen -G "$SRC/test/isolation/specs/*.spec" >/dev/null ;;
	tap) compgen -G "$SRC/test/t/*.pl" >/dev/null ;;
	unit) [[ -f $SRC/CMakeLists.txt ]] ;;
	*) true ;;
	esac
}
for suite in regress isolation tap unit; do
	want "$suite" || continue
	if [[ $suite != unit && $BUILD_OK != 1 ]] && has_tests "$suite"; then
		record "$suite" fail "not run: the build failed"; continue
	fi
	start=$SECONDS
	"run_$suite"
	[[ ${RESULT[$suite]} == skip ]] || printf '    (%s: %ds)\n' "$suite" $((SECONDS - start))
done

# ---------------------------------------------------------------- summary
passed=0 failed=0
echo
step "summary"
[[ $BUILD_OK == 1 ]] || printf '%-12s %s\n' "[build]" "FAILED (see above)"
for suite in "${ORDER[@]}"; do
	case ${RESULT[$suite]} in
	pass) passed=$((passed + 1)) ;;
	fail) failed=$((failed + 1)) ;;
	esac
	printf '%-12s %s\n' "[$suite]" "${SUMMARY[$suite]}"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

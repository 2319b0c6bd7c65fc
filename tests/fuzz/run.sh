#!/bin/sh
# tests/fuzz/run.sh — `make fuzz`: runs every libFuzzer target given for
# SECONDS each, whatever happened to the ones before it, then prints one
# line per target and a total. Exits 1 if any target failed (crashed, broke
# an invariant, leaked, timed out or is missing), 0 otherwise.
#
#   tests/fuzz/run.sh SECONDS TARGET...      (make fuzz FUZZ_SECONDS=60)
#
# FUZZ_BUILD (default build-fuzz) holds the binaries (`make fuzz-build`). Each
# target X keeps what it learns in FUZZ_BUILD/corpus-X (the seeds in
# tests/fuzz/corpus/X are only read), its output in FUZZ_BUILD/fuzz_X.log and
# any crashing input in FUZZ_BUILD/artifacts-X/.
set -u
cd "$(dirname "$0")/../.." || exit 2
[ $# -ge 2 ] || { echo "usage: tests/fuzz/run.sh SECONDS TARGET..." >&2; exit 2; }
SECS=$1
shift
B=${FUZZ_BUILD:-build-fuzz}
ok=0
failed=0
summary=""

for t in "$@"; do
    bin=$B/fuzz_$t
    log=$B/fuzz_$t.log
    art=$B/artifacts-$t
    t0=$(date +%s)
    printf 'fuzz %s for %ss ... ' "$t" "$SECS"
    if [ ! -x "$bin" ] || [ ! -d "tests/fuzz/corpus/$t" ]; then
        line=$(printf 'FAIL %-10s missing %s or tests/fuzz/corpus/%s (make fuzz-build)' \
            "$t" "$bin" "$t")
    else
        mkdir -p "$B/corpus-$t" "$art"
        # Inputs kept from an earlier failure are not this run's failure.
        before=$(ls -A "$art")
        # The outer timeout is a backstop in case libFuzzer itself hangs.
        timeout -k 10 $((SECS + 300)) "$bin" -max_total_time="$SECS" -max_len=70000 \
            -print_final_stats=1 -artifact_prefix="$art/" \
            "$B/corpus-$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
        rc=$?
        secs=$(($(date +%s) - t0))
        runs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log")
        corpus=$(find "$B/corpus-$t" -type f | wc -l)
        if [ $rc -eq 0 ] && [ "$(ls -A "$art")" = "$before" ]; then
            line=$(printf 'ok   %-10s %4ss  %s runs, %s inputs in %s/corpus-%s' \
                "$t" "$secs" "${runs:-?}" "$corpus" "$B" "$t")
        else
            why=$(grep -m 1 -E 'ERROR|runtime error|invariant|deadly signal|timeout' "$log")
            [ $rc -eq 0 ] && why="it wrote a new input to $art/"
            [ $rc -eq 124 ] && why="no exit after $((SECS + 300)) s"
            line=$(printf 'FAIL %-10s %4ss  exit %s: %s (log: %s, inputs: %s/)' \
                "$t" "$secs" "$rc" "${why:-see the log}" "$log" "$art")
        fi
    fi
    case $line in
    ok*) ok=$((ok + 1)); echo ok ;;
    *) failed=$((failed + 1)); echo FAIL ;;
    esac
    summary="$summary$line
"
done

echo
echo "fuzz summary (${SECS}s per target):"
printf '%s' "$summary"
echo "fuzz: $ok ok, $failed failed, $# targets"
[ $failed -eq 0 ]

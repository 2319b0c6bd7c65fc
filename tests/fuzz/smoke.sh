#!/usr/bin/env bash
# tests/fuzz/smoke.sh — a short run of every libFuzzer target: replays its
# seed corpus, then tries a bounded number of mutated inputs. Prints one line
# per target, "ok fuzz_X" or "FAIL fuzz_X", and exits non-zero if any target
# crashed, leaked, broke an invariant, timed out or is missing.
#
#   make fuzz-build && bash tests/fuzz/smoke.sh [RUNS]
#
# RUNS (default 2000) mutated inputs per target, each run also capped at
# SMOKE_SECONDS (default 10) seconds. FUZZ_BUILD (default build-fuzz) is where
# `make fuzz-build` put the binaries. The seed corpus under tests/fuzz/corpus
# is only read: inputs the fuzzer finds go to a temporary directory that is
# removed at exit, and so do crash artifacts unless a target fails, in which
# case they are kept and named.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
RUNS=${1:-2000}
SECONDS_EACH=${SMOKE_SECONDS:-10}
TARGETS="${FUZZ_TARGETS:-envelope frame keyfile api content prekey endpoint txt config addr sync textsafe roster invite chan}"
TMP=$(mktemp -d /tmp/parley-fuzz-smoke.XXXXXX)
keep=0
cleanup() { [ "$keep" = 1 ] || rm -rf "$TMP"; }
trap cleanup EXIT

failed=0
for t in $TARGETS; do
    bin=$FUZZ_BUILD/fuzz_$t
    seeds=$ROOT/tests/fuzz/corpus/$t
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        echo "FAIL fuzz_$t (missing $bin or $seeds: run make fuzz-build)"
        failed=1
        continue
    fi
    mkdir -p "$TMP/$t/new" "$TMP/$t/crash"
    # The first directory receives new inputs; the seed corpus is second so
    # it is read but never written. -timeout fails any single input slower
    # than 10 s; the outer timeout is a backstop should libFuzzer itself hang.
    timeout -k 5 $((SECONDS_EACH + 30)) "$bin" \
        -runs="$RUNS" -max_total_time="$SECONDS_EACH" -max_len=70000 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix="$TMP/$t/crash/" \
        "$TMP/$t/new" "$seeds" >"$TMP/$t/log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && [ -z "$(ls -A "$TMP/$t/crash")" ]; then
        echo "ok fuzz_$t"
    else
        echo "FAIL fuzz_$t (exit $rc; log and artifacts in $TMP/$t)"
        grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$TMP/$t/log" | head -n 5
        failed=1
        keep=1
    fi
done
exit $failed

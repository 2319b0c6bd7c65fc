#!/bin/bash
# tests/run.sh — the whole suite: the include-graph check, class self-tests
# (normal and sanitizer builds), integration tests with real processes on
# loopback (normal build, and the core ones again under address+undefined
# sanitizers), and a fuzz smoke. One line per test, then "N passed, N failed".
#
#   tests/run.sh [PATTERN]    only tests whose name contains PATTERN
cd "$(dirname "$0")/.." || exit 2
ONLY=${1:-}
LOGS=build/test-logs
mkdir -p "$LOGS"
pass=0
fail=0
failed=()

run() { # run NAME TIMEOUT COMMAND...
    local name=$1 limit=$2; shift 2
    [ -n "$ONLY" ] && [[ "$name" != *"$ONLY"* ]] && return
    local log="$LOGS/${name//\//_}.log" t0=$SECONDS
    if timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1; then
        pass=$((pass + 1))
        printf 'ok   %-40s %3ds\n' "$name" $((SECONDS - t0))
    else
        fail=$((fail + 1))
        failed+=("$name")
        printf 'FAIL %-40s %3ds  (log: %s)\n' "$name" $((SECONDS - t0)) "$log"
        # The test's own verdict first: the tail is often the nodes' logs.
        grep -m 3 -E '^FAIL: |check failed|timed out waiting' "$log" | sed 's/^/     > /'
        tail -n 15 "$log" | sed 's/^/     | /'
    fi
}

# ASan's leak checker needs ptrace-free /proc access that some sandboxes deny;
# leaks are still checked where it works.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The include graph first: a circle fails the suite (tools/check_includes.sh),
# and the checker itself must be able to fail (includes/negative).
run "includes" 60 sh tools/check_includes.sh
run "includes/negative" 60 sh tests/includes_negative.sh
# A changed header rebuilds what includes it: make reads every .d file.
run "build-deps" 60 env BUILD=build bash tests/build_deps.sh
for b in build build-san; do
    run "$b/proto_selftest" 300 "$b/proto_selftest"
    run "$b/store_selftest" 300 "$b/store_selftest"
    run "$b/node_selftest" 300 "$b/node_selftest"
    run "$b/qr_selftest" 300 "$b/qr_selftest"
    run "$b/chat_selftest" 60 "$b/chat_selftest"
done
# Removal really removes: random schedules against real nodes (channel_prop).
run "build/channel_prop(1000)" 300 env PARLEY_CHANNEL_SCHEDULES=1000 build/node_selftest channel_prop
run "build-san/channel_prop(200)" 300 env PARLEY_CHANNEL_SCHEDULES=200 \
    build-san/node_selftest channel_prop
for t in tests/integration/t_*.sh; do
    name=$(basename "$t" .sh)
    run "integration/$name" 300 env BUILD=build bash "$t"
done
for t in t_dm t_security t_hostile t_kill_sender t_forward_secrecy t_local t_pex t_relay t_sync_abuse \
    t_term_escape t_corrupt_db t_chat; do
    run "integration-san/$t" 300 env BUILD=build-san bash "tests/integration/$t.sh"
done
run "integration-san/t_burst(300)" 300 env BUILD=build-san BURST=300 \
    bash tests/integration/t_burst.sh
run "install" 120 bash -c 'd=$(mktemp -d) && make -s install PREFIX="$d" >/dev/null &&
    test -x "$d/bin/parley" && test -x "$d/bin/parleyd" && "$d/bin/parley" --help >/dev/null;
    rc=$?; rm -rf "$d"; exit $rc'
run "format" 120 make -s fmt-check
# Real Avahi daemons in network namespaces this test creates (needs root).
if [ "$(id -u)" = 0 ]; then
    run "netns/t_mdns" 180 env BUILD=build bash tests/netns/t_mdns.sh
    run "netns/t_mdns_routed" 180 env BUILD=build bash tests/netns/t_mdns_routed.sh
    run "netns-san/t_mdns" 180 env BUILD=build-san bash tests/netns/t_mdns.sh
    run "netns/t_nodes(3)" 180 env BUILD=build bash tests/netns/t_nodes.sh
    run "netns/t_nodes(10)" 180 env BUILD=build NODES=10 bash tests/netns/t_nodes.sh
    run "netns-san/t_nodes(3)" 180 env BUILD=build-san bash tests/netns/t_nodes.sh
    run "netns/t_pex" 180 env BUILD=build bash tests/netns/t_pex.sh
    run "netns-san/t_pex" 180 env BUILD=build-san bash tests/netns/t_pex.sh
    run "netns/t_offline" 300 env BUILD=build bash tests/netns/t_offline.sh
    run "netns-san/t_offline" 300 env BUILD=build-san bash tests/netns/t_offline.sh
    run "netns/t_branch" 300 env BUILD=build bash tests/netns/t_branch.sh
    run "netns-san/t_branch" 300 env BUILD=build-san bash tests/netns/t_branch.sh
    run "netns/t_faults" 300 env BUILD=build bash tests/netns/t_faults.sh
    run "netns/t_channel" 300 env BUILD=build bash tests/netns/t_channel.sh
    run "netns/t_network" 300 env BUILD=build bash tests/netns/t_network.sh
    run "netns-san/t_network" 300 env BUILD=build-san bash tests/netns/t_network.sh
    run "netns/t_network_partition" 300 env BUILD=build bash tests/netns/t_network_partition.sh
    run "netns-san/t_network_partition" 300 env BUILD=build-san \
        bash tests/netns/t_network_partition.sh
else
    echo "skip netns tests: they need root"
fi
# The benchmark prints figures; here it only has to run to completion.
run "bench/quick" 180 build/bench --quick
run "bench/sync-engine(100k)" 120 build/bench_sync_engine --n 100000
run "bench/sync-nodes(20k)" 180 build/bench_sync --n 20000
# Figures too, but this one checks something: every honest DM arrives while
# ten hostile peers attack the receiver (exit 1 if one is lost).
run "bench/hostile-quick" 120 build/bench_hostile --quick
if [ -x tests/fuzz/smoke.sh ]; then
    run "fuzz/smoke" 600 tests/fuzz/smoke.sh
fi

echo
if [ $fail -gt 0 ]; then
    echo "failed: ${failed[*]}"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

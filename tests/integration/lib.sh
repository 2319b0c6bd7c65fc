# tests/integration/lib.sh — helpers for integration tests: real parleyd
# processes, each with its own temporary home, on loopback only.
#
# Every process a test starts is recorded by PID and ended by PID at exit;
# nothing else is ever signalled. Each test runs under a hard timeout from
# tests/run.sh.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/$BUILD
TMP=$(mktemp -d /tmp/parley-test.XXXXXX)
declare -A PIDS=()
# Never mDNS on loopback tests (it would reach the machine's real interfaces
# if a daemon ran there); host-local discovery stays inside this test's own
# directory. Short forward-secrecy settings are set by the tests that need them.
NODE_ARGS=${NODE_ARGS:-"--ping-ms 500 --retry-ms 1000 --no-mdns"}
export PARLEY_RUNTIME_DIR=$TMP/run

cleanup() {
    for n in "${!PIDS[@]}"; do
        kill -TERM "${PIDS[$n]}" 2>/dev/null
    done
    for n in "${!PIDS[@]}"; do
        wait "${PIDS[$n]}" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT


fail() {
    echo "FAIL: $*" >&2
    for f in "$TMP"/*.err; do
        [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}

home() { echo "$TMP/$1"; }
p() { local n=$1; shift; "$BIN/parley" --home "$TMP/$n" "$@"; }


# start_node NAME [parleyd args...]; LISTEN=tcp://... overrides the endpoint.
start_node() {
    local n=$1; shift
    local listen=${LISTEN:-tcp://127.0.0.1:*}
    mkdir -p "$TMP/$n"
    # shellcheck disable=SC2086
    "$BIN/parleyd" --home "$TMP/$n" --listen "$listen" $NODE_ARGS "$@" \
        >>"$TMP/$n.out" 2>>"$TMP/$n.err" &
    PIDS[$n]=$!
    wait_until 20 test -S "$TMP/$n/api.sock" || fail "$n did not start"
    wait_until 10 grep -q "listening on" "$TMP/$n.out" || fail "$n printed no endpoint"
}

endpoint() { grep "listening on" "$TMP/$1.out" | tail -n 1 | awk '{print $4}'; }
nid() { p "$1" id --json | jq -r .id; }

stop_node() {
    kill -TERM "${PIDS[$1]}" 2>/dev/null
    wait "${PIDS[$1]}" 2>/dev/null
    local rc=$?
    unset "PIDS[$1]"
    return $rc
}

kill9_node() {
    kill -KILL "${PIDS[$1]}" 2>/dev/null
    wait "${PIDS[$1]}" 2>/dev/null
    unset "PIDS[$1]"
    return 0
}

online() { # online NAME PEER_ID
    p "$1" peers --json | jqe --arg id "$2" '.[] | select(.id == $id and .online)' >/dev/null
}

history_count() { # history_count NAME PEER [state]
    if [ $# -ge 3 ]; then
        p "$1" history "$2" --limit 0 --json | jq --arg s "$3" '[.[] | select(.state == $s)] | length'
    else
        p "$1" history "$2" --limit 0 --json | jq length
    fi
}

count_is() { [ "$(history_count "$@" | tail -n 1)" = "${EXPECT}" ]; }

# pair A B: starts A, then B seeding A; waits until both see each other.
pair() {
    start_node "$1"
    A_ID=$(nid "$1")
    start_node "$2" --seed "$(endpoint "$1")#$A_ID"
    B_ID=$(nid "$2")
    wait_until 20 online "$1" "$B_ID" || fail "$1 never saw $2 online"
    wait_until 20 online "$2" "$A_ID" || fail "$2 never saw $1 online"
}

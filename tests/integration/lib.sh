# tests/integration/lib.sh — integration tests: real parleyd processes on
# loopback, each with its own home in this test's temporary directory. The
# node helpers (node_start, p, nid, fail, ...) are tests/common.sh's; this
# adds the loopback settings and the history helpers. Each test runs under a
# hard timeout from tests/run.sh.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TMP=$(mktemp -d /tmp/parley-test.XXXXXX)
NODE_DIR=$TMP
# Never mDNS on loopback tests (it would reach the machine's real interfaces
# if a daemon ran there); host-local discovery stays inside this test's own
# directory. Short forward-secrecy settings are set by the tests that need them.
NODE_ARGS=${NODE_ARGS:-"--ping-ms 500 --retry-ms 1000 --no-mdns"}
export PARLEY_RUNTIME_DIR=$TMP/run
trap 'stop_all; rm -rf "$TMP"' EXIT

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
    node_start "$1"
    A_ID=$(nid "$1")
    node_start "$2" --seed "$(endpoint "$1")#$A_ID"
    B_ID=$(nid "$2")
    wait_until 20 online "$1" "$B_ID" || fail "$1 never saw $2 online"
    wait_until 20 online "$2" "$A_ID" || fail "$2 never saw $1 online"
}

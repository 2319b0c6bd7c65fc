#!/bin/bash
# tests/netns/t_offline.sh — offline delivery through a relay, across hosts.
#
# Three simulated hosts on one subnet (tests/netns/lib.sh), each with its own
# Avahi; no seeds, no host-local discovery: nodes find each other by mDNS.
# Host 1 runs an always-on relay R (--relay). A (host 2) and B (host 3) are
# never online at the same time:
#   B comes, meets R, leaves;  A comes, writes to B (B's prekey reaches A
#   through R), sees "relayed", leaves;  B comes back and has the message;
#   B marks it read and leaves;  A comes back and sees "read".
# R's database holds the envelope but not the text, and R's history is empty.
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
. tests/common.sh
. tests/netns/lib.sh

fail() {
    echo "FAIL: $*"
    local i
    for i in 1 2 3; do
        for f in "$NETNS_DIR"/n$i*.log; do
            [ -f "$f" ] && tail -n 10 "$f" | sed "s/^/  $(basename "$f") | /"
        done
    done
    exit 1
}
p() { local i=$1; shift; "$BUILD/parley" --home "$NETNS_DIR/h$i" "$@"; }
ARGS=(--listen tcp://0.0.0.0:7400 --no-local --ping-ms 500 --retry-ms 1000 --sync-ms 1000)
declare -A PID
RUN=0
start() { # start I [args...]
    local i=$1
    shift
    RUN=$((RUN + 1))
    netns_bg "$i" "$NETNS_DIR/n$i.$RUN.log" "$BUILD/parleyd" --home "$NETNS_DIR/h$i" \
        "${ARGS[@]}" "$@"
    PID[$i]=$NETNS_LAST_PID
    wait_until 20 test -S "$NETNS_DIR/h$i/api.sock" || fail "node $i did not start"
}
stop() { # stop I: SIGTERM by PID, clean exit
    kill -TERM "${PID[$1]}" 2>/dev/null
    wait "${PID[$1]}" 2>/dev/null
}
online() { p "$1" peers --json | jqe --arg id "$2" '.[] | select(.id == $id and .online)' >/dev/null; }
state_is() { # state_is I PEER STATE: the one message with PEER has STATE
    p "$1" history "$2" --json | jqe --arg s "$3" 'length == 1 and .[0].state == $s' >/dev/null
}

netns_setup 3
for i in 1 2 3; do
    mkdir -p "$NETNS_DIR/h$i"
done
IDR=$("$BUILD/parley" --home "$NETNS_DIR/h1" init --json | jq -r .id)
IDA=$("$BUILD/parley" --home "$NETNS_DIR/h2" init --json | jq -r .id)
IDB=$("$BUILD/parley" --home "$NETNS_DIR/h3" init --json | jq -r .id)

start 1 --relay
start 3
wait_until 30 online 3 "$IDR" || fail "B never met R"
sleep 1
stop 3

start 2
wait_until 30 online 2 "$IDR" || fail "A never met R"
online 2 "$IDB" && fail "A and B online together"
t0=$(date +%s.%N)
wait_until 15 sh -c "'$BUILD/parley' --home '$NETNS_DIR/h2' send '$IDB' 'the key is under the mat' \
    --json | jq -e '.state == \"stored\"' >/dev/null" || fail "A could not seal to B through R"
wait_until 15 state_is 2 "$IDB" relayed || fail "never relayed: $(p 2 history "$IDB" --json)"
stop 2

start 3
wait_until 30 state_is 3 "$IDA" received || fail "B did not get the DM through R"
online 3 "$IDA" && fail "A and B online together"
p 3 history "$IDA" | grep -q "the key is under the mat" || fail "text"
p 3 read "$IDA" >/dev/null || fail "read"
sleep 1
stop 3

start 2
wait_until 30 state_is 2 "$IDB" read || fail "A never saw read: $(p 2 history "$IDB" --json)"
echo "A sent, went home, came back, and sees read after $(awk -v a="$t0" -v b="$(date +%s.%N)" \
    'BEGIN { printf "%.1f", b - a }') s (B was online only while A was not)"

# The relay carried it without being able to read it.
p 1 status --json | jqe '.log.envelopes >= 3 and .log.messages == 0' >/dev/null \
    || fail "relay log: $(p 1 status --json | jq -c .log)"
[ "$(p 1 history "$IDA" --json | jq length)" = 0 ] || fail "the relay has a history with A"
stop 1
grep -qa "the key is under the mat" "$NETNS_DIR/h1/parley.db"* && fail "plaintext on the relay"
echo "ok"

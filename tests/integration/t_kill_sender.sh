#!/bin/bash
# kill -9 of the sender right after `send` returned still delivers after
# restart: once with the receiver offline, once online.
. "$(dirname "$0")/lib.sh"
pair a b
LISTEN_A=$(endpoint a)
SEED="$(endpoint a)#$A_ID"
p b send "$A_ID" "warm-up" >/dev/null
EXPECT=1 wait_until 10 count_is a "$B_ID" || fail "warm-up"
node_stop a
p b send "$A_ID" "while-offline" >/dev/null || fail "send"
node_kill b
LISTEN=$LISTEN_A node_start a
node_start b --seed "$SEED"
EXPECT=2 wait_until 20 count_is a "$B_ID" || fail "message lost after kill -9 of the sender"
p b send "$A_ID" "then-killed" >/dev/null || fail "send"
node_kill b
# Liveness: a peer killed with SIGKILL is marked offline within a bounded time.
offline() { ! online "$@"; }
wait_until 10 offline a "$B_ID" || fail "a still shows the killed b online"
node_start b --seed "$SEED"
EXPECT=3 wait_until 20 count_is a "$B_ID" || fail "second message lost"
EXPECT=3 wait_until 20 count_is b "$A_ID" delivered || fail "receipts did not come back"
[ "$(p a history "$B_ID" --limit 0 --json | jq '[.[].text] | unique | length')" = 3 ] \
    || fail "duplicates"
echo "ok"

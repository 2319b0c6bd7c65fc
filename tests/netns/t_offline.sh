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
. tests/netns/lib.sh
FAIL_TAIL=10
NODE_ARGS="$NODE_ARGS --sync-ms 1000"
state_is() { # state_is I PEER STATE: the one message with PEER has STATE
    p "$1" history "$2" --json | jqe --arg s "$3" 'length == 1 and .[0].state == $s' >/dev/null
}

netns_setup 3
IDR=$(node_init 1) && IDA=$(node_init 2) && IDB=$(node_init 3) || fail "init"

node_start 1 --relay
node_start 3
wait_until 30 online 3 "$IDR" || fail "B never met R"
sleep 1
node_stop 3

node_start 2
wait_until 30 online 2 "$IDR" || fail "A never met R"
online 2 "$IDB" && fail "A and B online together"
t0=$(now)
sealed() { p 2 send "$IDB" 'the key is under the mat' --json | jqe '.state == "stored"' >/dev/null; }
wait_until 15 sealed || fail "A could not seal to B through R"
wait_until 15 state_is 2 "$IDB" relayed || fail "never relayed: $(p 2 history "$IDB" --json)"
node_stop 2

node_start 3
wait_until 30 state_is 3 "$IDA" received || fail "B did not get the DM through R"
online 3 "$IDA" && fail "A and B online together"
p 3 history "$IDA" | grep -q "the key is under the mat" || fail "text"
p 3 read "$IDA" >/dev/null || fail "read"
sleep 1
node_stop 3

node_start 2
wait_until 30 state_is 2 "$IDB" read || fail "A never saw read: $(p 2 history "$IDB" --json)"
echo "A sent, went home, came back, and sees read after $(since "$t0") s" \
    "(B was online only while A was not)"

# The relay carried it without being able to read it.
p 1 status --json | jqe '.log.envelopes >= 3 and .log.messages == 0' >/dev/null \
    || fail "relay log: $(p 1 status --json | jq -c .log)"
[ "$(p 1 history "$IDA" --json | jq length)" = 0 ] || fail "the relay has a history with A"
node_stop 1
grep -qa "the key is under the mat" "$NETNS_DIR/h1/parley.db"* && fail "plaintext on the relay"
echo "ok"

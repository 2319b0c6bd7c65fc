#!/bin/bash
# Peer exchange on loopback, discovery off: c knows only b, b knows only a.
# With signed address records gossiped, c reaches a (source "pex") and a DM
# from c to a is delivered; with --no-pex c never learns of a.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local"
node_start a
A_ID=$(nid a)
p a watch --json >"$TMP/watch.a" 2>/dev/null &
PIDS[watch]=$!
node_start b --seed "$(endpoint a)#$A_ID"
B_ID=$(nid b)
node_start c --seed "$(endpoint b)#$B_ID"
wait_until 20 online c "$A_ID" || fail "c never reached a through peer exchange"
p c peers --json | jqe --arg id "$A_ID" '.[] | select(.id == $id) | .source == "pex"' \
    >/dev/null || fail "source: $(p c peers --json | jq -c 'map(.source)')"
p c send "$A_ID" "via pex" >/dev/null
EXPECT=1 wait_until 10 count_is a "$(nid c)" received || fail "DM over a pex link"
p a status --json | jqe '.rejected.bad_address == 0' >/dev/null || fail "records rejected"
wait_until 5 grep -q '"method":"peer".*"state":"online"' "$TMP/watch.a" \
    || fail "watch showed no peer coming online"
# Restarted without any seed, c reconnects at once to the peers it stored.
node_stop c
node_start c
wait_until 10 online c "$A_ID" || fail "no reconnect from stored addresses (a)"
wait_until 10 online c "$B_ID" || fail "no reconnect from stored addresses (b)"
# The same chain without peer exchange: d (seeding b only) never meets a.
node_start d --seed "$(endpoint b)#$B_ID" --no-pex
sleep 3
online d "$A_ID" && fail "--no-pex node used peer exchange"
p d peers --json | jqe 'length == 1' >/dev/null || fail "--no-pex node learnt peers"
echo "ok"

#!/bin/bash
# Two nodes on loopback: DMs both ways, delivery receipts, watch, peers,
# history after restarts, and a DM queued until the peer's prekey is known.
. "$(dirname "$0")/lib.sh"

pair a b
p b watch --json >"$TMP/watch.b" 2>/dev/null &
W=$!; PIDS[watch]=$W
sleep 0.3
p a contacts add "$B_ID" bob >/dev/null
OUT=$(p a send bob "hello bob") || fail "send"
echo "$OUT" | grep -q "^stored [0-9a-f]\{64\}$" || fail "send output: $OUT"
p b send "${A_ID:0:8}" "hello alice" >/dev/null || fail "send by short id"
EXPECT=1 wait_until 10 count_is b "$A_ID" received || fail "b did not receive"
EXPECT=1 wait_until 10 count_is a "$B_ID" received || fail "a did not receive"
EXPECT=1 wait_until 10 count_is a bob delivered || fail "a's message never delivered"
EXPECT=1 wait_until 10 count_is b "$A_ID" delivered || fail "b's message never delivered"
p b history "$A_ID" --json | jqe '.[0].text == "hello alice" or .[1].text == "hello alice"' \
    >/dev/null || fail "history text"
wait_until 5 grep -q '"method":"message"' "$TMP/watch.b" || fail "watch saw no message"
wait_until 5 grep -q '"state":"delivered"' "$TMP/watch.b" || fail "watch saw no delivery"
p a history bob | grep -q "hello bob" || fail "history text output"
p a peers --json | jqe --arg id "$B_ID" '.[] | select(.id == $id) | .online and
    .connected_since > 0 and .last_seen > 0' >/dev/null || fail "peers fields"
p a status --json | jqe '.log.envelopes >= 3 and .peers.online == 1' >/dev/null \
    || fail "status"

# Restart both: history and states survive.
node_stop b; node_stop a
LISTEN=$(endpoint a) node_start a
node_start b --seed "$(endpoint a)#$A_ID"
EXPECT=2 wait_until 5 count_is a bob || fail "history lost on restart"
p a history bob --json | jqe 'map(.state) | sort == ["delivered", "received"]' >/dev/null \
    || fail "states lost on restart"

# A DM to a node never met waits, queued, and goes when its prekey arrives.
C_ID=$(node_init c)
p a send "$C_ID" "early" --json | jqe '.state == "queued"' >/dev/null || fail "not queued"
p a history "$C_ID" | grep -q "queued" || fail "history does not say queued"
node_start c --seed "$(endpoint a)#$A_ID"
EXPECT=1 wait_until 15 count_is c "$A_ID" received || fail "queued DM never arrived"
EXPECT=1 wait_until 10 count_is a "$C_ID" delivered || fail "queued DM never delivered"
echo "ok"

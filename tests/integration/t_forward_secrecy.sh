#!/bin/bash
# Forward secrecy for real: with short periods, after the grace window a
# stolen identity.key plus every stored envelope (and whatever keys the
# databases still hold) opens no old DM. Before it, the same attack works —
# the control that shows the attack tool can succeed.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="--no-mdns --ping-ms 500 --retry-ms 1000 --ratchet-ms 1000 --grace-ms 2000 --prekey-rotate-ms 1000"
pair a b
for i in 1 2 3; do
    p a send "$B_ID" "secret a$i" >/dev/null
    p b send "$A_ID" "secret b$i" >/dev/null
done
EXPECT=3 wait_until 10 count_is a "$B_ID" delivered || fail "a's DMs not delivered"
EXPECT=3 wait_until 10 count_is b "$A_ID" delivered || fail "b's DMs not delivered"
node_stop a; node_stop b
OUT=$("$BIN/fs_attack" "$TMP/a" "$TMP/b") || fail "fs_attack failed"
echo "before the window: $OUT"
opened=$(echo "$OUT" | awk '{print $2}')
[ "$opened" -gt 0 ] || fail "control: the attack should open fresh DMs ($OUT)"
LISTEN_A=$(endpoint a)
LISTEN=$LISTEN_A node_start a
node_start b --seed "$LISTEN_A#$A_ID"
sleep 4
node_stop a; node_stop b
OUT=$("$BIN/fs_attack" "$TMP/a" "$TMP/b") || fail "fs_attack failed"
echo "after the window: $OUT"
[ "$(echo "$OUT" | awk '{print $2}')" = 0 ] || fail "old DMs still open: $OUT"
[ "$(echo "$OUT" | awk '{print $4}')" -ge 6 ] || fail "envelopes missing: $OUT"
# The owners' own history is kept.
LISTEN=$LISTEN_A node_start a
p a history "$B_ID" | grep -q "secret b3" || fail "history lost"
echo "ok"

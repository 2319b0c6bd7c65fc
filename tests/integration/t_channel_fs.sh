#!/bin/bash
# Forward secrecy in a channel, for real, with short periods: A, B and C in
# a from-join channel send messages; then C is removed. A stolen
# identity.key plus both databases (fs_attack) opens them at first — the
# control, so the test can fail. The channel's admin rekeys by itself once
# its key is older than --chan-rotate-ms; grace-ms after the new key came,
# members wipe the keys and chains of earlier epochs, and C, gone, wipes
# all of its own: the same attack then opens no channel message, on A and B
# or on C. Everyone keeps the history they read.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="--no-mdns --no-local --ping-ms 500 --retry-ms 1000 --sync-ms 500 --ratchet-ms 1000
    --grace-ms 3000 --prekey-rotate-ms 1000 --chan-rotate-ms 5000"
NODE_ARGS=$(echo $NODE_ARGS)

pair a b
node_start c --seed "$(endpoint a)#$A_ID"
C_ID=$(nid c)
wait_until 20 online a "$C_ID" || fail "a never saw c"

p a channel create fs --history from-join >/dev/null || fail "create"
p a channel add fs "$B_ID" "$C_ID" >/dev/null || fail "add"
keyed() { p "$1" channel list --json | jqe '.channels[] | select(.name == "fs") | .keyed' >/dev/null; }
for n in a b c; do wait_until 15 keyed $n || fail "$n has no key for #fs"; done
has() { [ "$(p "$1" history '#fs' --json | jq '.messages | length')" -ge "$2" ]; }
for i in 1 2; do
    p a send '#fs' "secret a$i" >/dev/null || fail "a send"
    p b send '#fs' "secret b$i" >/dev/null || fail "b send"
done
for n in a b c; do wait_until 10 has $n 4 || fail "$n did not get all four"; done
epoch() { p a channel list --json | jq '.channels[] | select(.name == "fs") | .epoch'; }
E0=$(epoch)

node_stop a; node_stop b; node_stop c
OUT=$("$BIN/fs_attack" "$TMP/a" "$TMP/b") || fail "fs_attack failed"
echo "before the window: $OUT"
[ "$(echo "$OUT" | awk '{print $6}')" -gt 0 ] || fail "control: the attack should open messages ($OUT)"
[ "$(echo "$OUT" | awk '{print $8}')" -ge 4 ] || fail "channel messages missing: $OUT"

LISTEN_A=$(endpoint a)
LISTEN=$LISTEN_A node_start a
node_start b --seed "$LISTEN_A#$A_ID"
node_start c --seed "$LISTEN_A#$A_ID"
wait_until 20 online a "$B_ID" || fail "a never saw b again"
p a channel remove fs "$C_ID" >/dev/null || fail "remove"
# The removal raises the epoch; the key older than the period raises it again.
rekeyed() { [ "$(epoch)" -ge $((E0 + 2)) ] && keyed a && keyed b; }
wait_until 20 rekeyed || fail "no rotation by age: epoch $(epoch) from $E0"
sleep 4 # the grace window, and a second
grep -q "keys of past epochs wiped" "$(node_log a)" || fail "a never wiped a past key"
grep -q "keys of past epochs wiped" "$(node_log c)" || fail "c never wiped its keys"
node_stop a; node_stop b; node_stop c
OUT=$("$BIN/fs_attack" "$TMP/a" "$TMP/b") || fail "fs_attack failed"
echo "after the window: $OUT"
# Only the current epoch's (the settings repeated under its key) still open.
[ "$(echo "$OUT" | awk '{print $10}')" = 0 ] || fail "old channel messages still open: $OUT"
[ "$(echo "$OUT" | awk '{print $8}')" -ge 4 ] || fail "channel messages missing: $OUT"
OUT=$("$BIN/fs_attack" "$TMP/c" "$TMP/b") || fail "fs_attack failed"
echo "c, removed, after the window: $OUT"
[ "$(echo "$OUT" | awk '{print $10}')" = 0 ] || fail "c's keys still open old messages: $OUT"

LISTEN=$LISTEN_A node_start a
p a history '#fs' | grep -q "secret b2" || fail "a lost its history"
node_start c
p c history '#fs' | grep -q "secret a1" || fail "c lost its history"
echo "ok"

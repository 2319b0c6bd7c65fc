#!/bin/bash
# The transport refuses what it must: a seed whose node holds a key other
# than the pinned one, unauthenticated (NULL) clients, clients pinning a
# wrong key; and forged or tampered envelopes never reach the log.
. "$(dirname "$0")/lib.sh"
# Only the (wrong) seed may join these two: host-local discovery would find
# the real key and hide the refusal.
NODE_ARGS="$NODE_ARGS --no-local"
node_start a
A_ID=$(nid a)
WRONG=$(node_init x)
node_start b --seed "$(endpoint a)#$WRONG"
sleep 2
B_ID=$(nid b)
online b "$WRONG" && fail "connected to a node that does not hold the pinned key"
online a "$B_ID" && fail "a accepted b although b pinned another key"
p b peers --json | jqe '.[0].online == false and (.[0].last_error | test("handshake|unreachable|connecting"))' \
    >/dev/null || fail "peers does not explain: $(p b peers --json)"
# The doctor names each reason: key mismatch, unreachable endpoint, never seen.
p b doctor "$WRONG" --json | jqe '.peer.reason | test("key mismatch")' >/dev/null \
    || fail "doctor: $(p b doctor "$WRONG" --json | jq -c .peer)"
p b doctor "$WRONG" | grep -q "key mismatch" || fail "doctor text output"
NEVER=$(node_init y)
p b doctor "$NEVER" --json | jqe '.peer.reason | test("never seen")' >/dev/null \
    || fail "doctor never-seen: $(p b doctor "$NEVER" --json | jq -c .peer)"
Z_ID=$(node_init z)
node_start c --seed "tcp://127.0.0.1:9#$Z_ID"
reason_unreachable() {
    p c doctor "$Z_ID" --json | jqe '.peer.reason | test("unreachable|timeout")' >/dev/null
}
wait_until 10 reason_unreachable || fail "doctor unreachable: $(p c doctor "$Z_ID" --json | jq -c .peer)"
p c doctor --json | jqe '.discovery.mdns.state == "off" and (.discovery.mdns.instance |
    startswith("parley-"))' >/dev/null || fail "doctor discovery: $(p c doctor --json | jq -c .discovery)"
[ "$("$BIN/zap_probe" "$(endpoint a)" "$A_ID" null)" = refused ] || fail "NULL client got in"
[ "$("$BIN/zap_probe" "$(endpoint a)" "$A_ID" wrongkey)" = refused ] || fail "wrong key got in"
[ "$("$BIN/zap_probe" "$(endpoint a)" "$A_ID" right)" = accepted ] || fail "control failed"
echo "ok"

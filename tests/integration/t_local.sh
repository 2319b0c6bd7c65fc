#!/bin/bash
# Host-local discovery: 20 nodes on one host with --no-mdns and no seeds find
# each other through the runtime directory: every node knows every other and
# is connected to its ring neighbours (8 by default, SPEC §11.1); a node killed with SIGKILL leaves a stale file that is ignored, and a
# restarted node (new port) is found again.
. "$(dirname "$0")/lib.sh"
N=${NODES:-20}
NODE_ARGS="--ping-ms 500 --retry-ms 1000 --no-mdns"
NAMES=$(seq -f 'n%g' 1 "$N")
for n in $NAMES; do
    node_start "$n"
done
K=$((N - 1 < 8 ? N - 1 : 8))
# shellcheck disable=SC2086 # NAMES is a list
mesh() { known_all $((N - 1)) $NAMES && for n in $NAMES; do
    [ "$(online_count "$n")" -ge "$K" ] || return 1; done; }
# shellcheck disable=SC2086 # NAMES is a list
wait_until 60 mesh || fail "not all known and linked (known/online/linked): $(linked $NAMES)"
p n1 peers --json | jqe 'all(.source == "local" or .source == "inbound")' >/dev/null \
    || fail "sources: $(p n1 peers --json | jq -c 'map(.source)')"
p n1 status --json | jqe '.discovery.local.state == "up" and .discovery.mdns.state == "off"' \
    >/dev/null || fail "status discovery: $(p n1 status --json | jq -c .discovery)"
# A DM between two nodes that never configured each other.
ID2=$(nid n2)
p n1 send "$ID2" "found you" >/dev/null || fail "send"
EXPECT=1 wait_until 10 count_is n2 "$(nid n1)" received || fail "DM over discovery"
# SIGKILL leaves a stale file; the restarted node (new port) is found again.
node_kill n3
node_start n3
ID3=$(nid n3)
wait_until 30 online n1 "$ID3" || fail "restarted node not rediscovered"
node_stop n4
[ -e "$PARLEY_RUNTIME_DIR/$(nid n4)" ] && fail "endpoint file left after a clean stop"
echo "ok"

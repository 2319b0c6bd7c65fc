#!/bin/bash
# tests/netns/t_nodes.sh — real parleyd nodes find each other with real mDNS.
#
# N simulated hosts (default 3; NODES=10 for the mesh), each a network
# namespace with its own D-Bus and avahi-daemon (tests/netns/lib.sh), each
# running parleyd with no seeds and no host-local discovery. Checks:
#   1. every node knows every other and is connected to its ring neighbours
#      (8 by default, SPEC §11.1: all of them up to 9 nodes), first contacts
#      coming from mDNS;
#   2. a DM from host 1 to host N arrives and its receipt comes back;
#   3. avahi-daemon stopped on host 1: the node keeps its connections and
#      reports mDNS down; restarted: it reports mDNS up again;
#   4. a node host 1 is connected to killed with SIGKILL: host 1 marks it
#      offline through pings within a bounded time (mDNS records would linger).
# Root only; everything runs in namespaces it creates, removed on exit.
set -u
cd "$(dirname "$0")/../.." || exit 2
N=${NODES:-3}
. tests/netns/lib.sh
FAIL_TAIL=15
HOSTS=$(seq "$N")

netns_setup "$N"
t0=$(now)
for i in $HOSTS; do
    node_spawn "$i"
done
K=$((N - 1 < 8 ? N - 1 : 8))
# shellcheck disable=SC2086 # HOSTS is a list
mesh() { known_all $((N - 1)) $HOSTS && for i in $HOSTS; do
    [ "$(online_count "$i")" -ge "$K" ] || return 1; done; }
wait_until 60 mesh || fail "mesh of $N did not converge (known/online/linked): $(linked $HOSTS)"
echo "mesh of $N converged in $(since "$t0") s"
# No seeds: the first contacts can only have come from mDNS (a node may then
# learn others by peer exchange, or be dialled first: pex and inbound).
for i in $HOSTS; do p "$i" peers --json; done | jq -s 'add | map(.source)' >"$NETNS_DIR/src"
jqe 'any(.[]; . == "mdns") and all(.[]; . == "mdns" or . == "pex" or . == "inbound")' \
    "$NETNS_DIR/src" >/dev/null || fail "sources: $(jq -c . "$NETNS_DIR/src")"

ID1=$(nid 1)
IDN=$(nid "$N")
p 1 send "$IDN" "across the LAN" >/dev/null || fail "send"
received() { p "$N" history "$ID1" --json | jqe 'length == 1' >/dev/null; }
delivered() { p 1 history "$IDN" --json | jqe '.[0].state == "delivered"' >/dev/null; }
wait_until 15 received || fail "DM not received"
wait_until 15 delivered || fail "receipt did not come back"

p 1 doctor --json | jqe '.discovery.mdns.state == "up" and (.discovery.mdns.interfaces |
    map(.name) | index("eth0") != null)' >/dev/null \
    || fail "doctor: $(p 1 doctor --json | jq -c .discovery)"
mdns_state() { [ "$(p 1 status --json | jq -r .discovery.mdns.state)" = "$1" ]; }
wait_until 10 mdns_state up || fail "mDNS not up on host 1"
netns_avahi_stop 1
wait_until 10 mdns_state down || fail "Avahi stopped but the node does not say so"
[ "$(online_count 1)" -ge "$K" ] || fail "connections lost with Avahi"
netns_avahi_start 1
wait_until 20 mdns_state up || fail "Avahi back but the node did not recover"

if [ "$N" -ge 3 ]; then
    VICTIM=""
    for i in $(seq 2 $((N - 1))); do
        online 1 "$(nid "$i")" && { VICTIM=$i; break; }
    done
    [ -n "$VICTIM" ] || fail "host 1 is connected to none of hosts 2..$((N - 1))"
    IDV=$(nid "$VICTIM")
    node_kill "$VICTIM"
    gone() { ! online 1 "$IDV"; }
    wait_until 10 gone || fail "a node killed with SIGKILL still shows online"
fi
echo "ok"

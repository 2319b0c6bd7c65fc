#!/bin/bash
# tests/netns/t_mdns_routed.sh — the two-subnet topology of tests/netns/lib.sh
# behaves as branch offices do: hosts 1 and 2 on subnet 1, host 3 on subnet
# 2, a router between them. Checks that TCP crosses the router (host 1 can
# reach host 3) while mDNS does not: probes 1 and 2 see each other, and
# neither sees probe 3 nor probe 3 them. Seeds and peer exchange, not mDNS,
# must link such offices. Prints "ok" and exits 0 on success.
#
#   BUILD=build bash tests/netns/t_mdns_routed.sh
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/netns/lib.sh

PROBE=$BUILD/mdns_probe
[ -x "$PROBE" ] || make -s "BUILD=$BUILD" "$PROBE" >/dev/null 2>&1
[ -x "$PROBE" ] || { echo "FAIL: no $PROBE (see tests/netns/t_mdns.sh)"; exit 1; }

netns_setup_routed 2 1
FAIL_TAIL=+1 # the probes' whole output
FAIL_LOGS=("$NETNS_DIR"/p{1,2,3}.log)

# TCP across the router: a one-shot listener on host 3, a dial from host 1.
netns_bg 3 "$NETNS_DIR/listen.log" python3 -c '
import socket
s = socket.socket()
s.bind(("0.0.0.0", 7100))
s.listen(1)
s.settimeout(10)
c, a = s.accept()
print("accepted", a[0])'
DIAL="import socket; socket.create_connection(('$(netns_addr 3)', 7100), 1)"
wait_until 10 netns_exec 1 python3 -c "$DIAL"
sleep 0.2
grep -qx "accepted $(netns_addr 1)" "$NETNS_DIR/listen.log" || fail "no TCP across the router"

declare -a ID
for i in 1 2 3; do
    netns_bg "$i" "$NETNS_DIR/p$i.log" "$PROBE" new $((7000 + i)) 60
done
for i in 1 2 3; do
    wait_until 5 grep -qs '^ID ' "$NETNS_DIR/p$i.log"
    ID[$i]=$(sed -n 's/^ID //p' "$NETNS_DIR/p$i.log")
    [ -n "${ID[$i]}" ] || fail "probe $i did not start"
done
same_subnet_seen() {
    grep -q "^SEEN ${ID[2]} " "$NETNS_DIR/p1.log" && grep -q "^SEEN ${ID[1]} " "$NETNS_DIR/p2.log"
}
wait_until 10 same_subnet_seen
grep -q "^SEEN ${ID[2]} " "$NETNS_DIR/p1.log" || fail "probe 1 did not see probe 2 (same subnet)"
grep -q "^SEEN ${ID[1]} " "$NETNS_DIR/p2.log" || fail "probe 2 did not see probe 1 (same subnet)"
# Announcements repeat at 1 s and 3 s after publishing: wait past them.
sleep 4
for i in 1 2; do
    ! grep -q "^SEEN ${ID[3]} " "$NETNS_DIR/p$i.log" || fail "mDNS crossed the router to $i"
    ! grep -q "^SEEN ${ID[$i]} " "$NETNS_DIR/p3.log" || fail "mDNS crossed the router to 3"
done
echo ok

#!/bin/bash
# tests/netns/t_pex.sh — two branch offices joined by one seed.
#
# Two subnets (hosts 1..3 and 4..6) behind a router namespace; mDNS stays in
# each subnet. Every host runs parleyd with mDNS (its own Avahi) and no
# host-local discovery; only host 4 names a seed: host 1. With peer exchange
# every node ends up connected to every other across the router, and a DM
# from host 2 reaches host 6.
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/netns/lib.sh
FAIL_TAIL=8
HOSTS="1 2 3 4 5 6"

netns_setup_routed 3 3
ID1=$(node_init 1) || fail "init of host 1"
for i in $HOSTS; do
    seed=()
    [ "$i" = 4 ] && seed=(--seed "tcp://$(netns_addr 1):7400#$ID1")
    node_spawn "$i" "${seed[@]}"
done
# shellcheck disable=SC2086 # HOSTS is a list
wait_until 60 meshed 5 $HOSTS || fail "not meshed: $(online_counts $HOSTS)"
p 2 peers --json | jqe 'map(.source) | index("pex") != null' >/dev/null \
    || fail "no pex source on host 2: $(p 2 peers --json | jq -c 'map(.source)')"
ID6=$(nid 6)
ID2=$(nid 2)
p 2 send "$ID6" "across offices" >/dev/null || fail "send"
arrived() { p 6 history "$ID2" --json | jqe 'length == 1'; }
wait_until 15 arrived || fail "DM did not cross"
echo "ok"

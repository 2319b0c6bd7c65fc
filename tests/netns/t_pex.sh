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
BUILD=${BUILD:-build}
. tests/common.sh
. tests/netns/lib.sh

fail() {
    echo "FAIL: $*"
    local i
    for i in 1 2 3 4 5 6; do
        [ -f "$NETNS_DIR/n$i.log" ] && tail -n 8 "$NETNS_DIR/n$i.log" | sed "s/^/  node $i | /"
    done
    exit 1
}
p() { local i=$1; shift; "$BUILD/parley" --home "$NETNS_DIR/h$i" "$@"; }
online_count() { p "$1" status --json 2>/dev/null | jq -r '.peers.online // 0'; }
all_meshed() {
    local i
    for i in 1 2 3 4 5 6; do
        [ "$(online_count "$i")" = 5 ] || return 1
    done
}

netns_setup_routed 3 3
for i in 1 2 3 4 5 6; do
    mkdir -p "$NETNS_DIR/h$i"
done
ID1=$("$BUILD/parley" --home "$NETNS_DIR/h1" init --json | jq -r .id)
for i in 1 2 3 4 5 6; do
    seed=()
    [ "$i" = 4 ] && seed=(--seed "tcp://$(netns_addr 1):7400#$ID1")
    netns_bg "$i" "$NETNS_DIR/n$i.log" "$BUILD/parleyd" --home "$NETNS_DIR/h$i" \
        --listen tcp://0.0.0.0:7400 --no-local --ping-ms 500 --retry-ms 1000 "${seed[@]}"
done
wait_until 60 all_meshed || fail "not meshed: $(for i in 1 2 3 4 5 6; do online_count "$i"; done |
    tr '\n' ' ')"
p 2 peers --json | jqe 'map(.source) | index("pex") != null' >/dev/null \
    || fail "no pex source on host 2: $(p 2 peers --json | jq -c 'map(.source)')"
ID6=$(p 6 id --json | jq -r .id)
ID2=$(p 2 id --json | jq -r .id)
p 2 send "$ID6" "across offices" >/dev/null || fail "send"
arrived() { p 6 history "$ID2" --json | jqe 'length == 1'; }
wait_until 15 arrived || fail "DM did not cross"
echo "ok"

#!/bin/bash
# tests/netns/t_channel.sh — a channel across two branch offices joined only
# by their gateways.
#
# Subnet 1: hosts 1..4, subnet 2: hosts 5..7 (netns_setup_routed 4 3). Host 1
# (G1) and host 5 (G2) are the gateways, both `parleyd --relay`; G1 names G2
# as its only seed. The router forwards only G1<->G2 (nftables), as in
# t_branch.sh: members find their own office by mDNS and reach the other
# office only through the two relays. The five members are hosts 2, 3, 4
# (office 1) and 6, 7 (office 2).
#
# Checks:
#   1. host 2 creates #branch and adds the other four: each lists it with 5
#      members and holds its key (KEYS crossed the gateways, sealed under
#      DM sessions);
#   2. messages both ways (2, 6 and 7 post): every member holds all of them
#      in the same order;
#   3. offline and back: host 7 stops; host 3 posts, host 2 removes host 4
#      (a new epoch whose key host 4 never gets), host 6 posts; host 7
#      starts again, finds its office by mDNS, and catches up: every
#      message, the new epoch's key, and a post of its own reaches the
#      others. Host 4 holds nothing posted after its removal;
#   4. the gateways carry but cannot read: their envelope logs hold the
#      channel's messages, and no text of them is in either gateway's
#      database or log (the control: the same grep finds each text in a
#      member's database).
# Root only; everything runs in namespaces it creates, removed on exit.
# Needs nftables (nft).
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/netns/lib.sh
. tests/netns/netlib.sh
FAIL_TAIL=12

G1=1
G2=5
M1=(2 3 4)
M2=(6 7)
MEMBERS=(2 3 4 6 7)
ALL=(1 2 3 4 5 6 7)

command -v nft >/dev/null \
    || { echo "FAIL: nft not found: apt-get install -y --no-install-recommends nftables"; exit 1; }

netns_setup_routed 4 3
GW1_ADDR=$(netns_addr $G1)
GW2_ADDR=$(netns_addr $G2)
ip netns exec "$NETNS_ROUTER_NS" nft -f - <<EOF || fail "cannot load the router's rules"
table inet branch {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ip saddr $GW1_ADDR ip daddr $GW2_ADDR accept
        ip saddr $GW2_ADDR ip daddr $GW1_ADDR accept
    }
}
EOF

IDG2=$(node_init $G2)
[ -n "$IDG2" ] && [ "$IDG2" != null ] || fail "init of G2"
declare -a ID
NODE_ARGS="$NODE_ARGS --sync-ms 1000"
gw_args() { # gw_args I: host I's parleyd options
    if [ "$1" = $G1 ]; then
        echo "--relay --seed tcp://$GW2_ADDR:7400#$IDG2"
    elif [ "$1" = $G2 ]; then
        echo "--relay"
    fi
}
for i in "${ALL[@]}"; do
    # shellcheck disable=SC2046 # options
    node_spawn "$i" $(gw_args "$i")
done
for i in "${ALL[@]}"; do
    node_wait_up "$i"
    ID[$i]=$(nid "$i")
done
# Each node online with the others of its office; the gateways with each other too.
offices_meshed() {
    meshed 4 $G1 && meshed 3 "${M1[@]}" && meshed 3 $G2 && meshed 2 "${M2[@]}" && online $G1 "$IDG2"
}
t0=$(now)
wait_until 60 offices_meshed || fail "offices not meshed: $(online_counts "${ALL[@]}")"
echo "offices meshed in $(since "$t0") s"

# --- 1. the channel -------------------------------------------------------------
p 2 channel create branch --topic "both offices" >/dev/null || fail "create"
for i in 3 4 6 7; do p 2 channel add branch "${ID[$i]}" >/dev/null || fail "add host $i"; done
ch() { # ch I JQ: host I's #branch object passes JQ
    p "$1" channel list --json 2>/dev/null \
        | jqe ".channels[] | select(.name == \"branch\") | $2" >/dev/null
}
t0=$(now)
for i in "${MEMBERS[@]}"; do
    wait_until 45 ch "$i" '.members == 5 and .keyed and .topic == "both offices"' \
        || fail "host $i: #branch not listed with 5 members and its key: $(p "$i" channel list)"
done
echo "every member holds #branch and its key after $(since "$t0") s"

# --- 2. both ways ---------------------------------------------------------------
TEXTS=()
post() { # post I TEXT: I posts TEXT once it holds the epoch's key
    local i=$1 t=$2 end=$((SECONDS + 30))
    until p "$i" send '#branch' "$t" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || fail "host $i could not post '$t'"
        sleep 0.3
    done
    TEXTS+=("$t")
}
holds() { # holds I N: I's history of #branch has at least N messages
    [ "$(p "$1" history '#branch' --limit 0 --json 2>/dev/null | jq '.messages | length')" -ge "$2" ]
}
order() { p "$1" history '#branch' --limit 0 --json | jq -c '[.messages[] | [.from, .text]]'; }
t0=$(now)
post 2 "office one says hello $NETNS_RAND"
post 6 "office two says hello $NETNS_RAND"
post 7 "office two again $NETNS_RAND"
for i in "${MEMBERS[@]}"; do
    wait_until 45 holds "$i" 3 || fail "host $i does not hold the three posts: $(order "$i")"
done
echo "three posts reached all five members after $(since "$t0") s"
for i in 3 4 6 7; do [ "$(order "$i")" = "$(order 2)" ] || fail "host $i shows another order"; done

# --- 3. offline and back --------------------------------------------------------
node_stop 7 || fail "host 7 did not stop cleanly"
post 3 "while seven is away $NETNS_RAND"
p 2 channel remove branch "${ID[4]}" >/dev/null || fail "remove host 4"
wait_until 30 ch 6 '.members == 4 and .keyed and .epoch == 1' \
    || fail "host 6 did not reach epoch 1 with its key: $(p 6 channel list)"
post 6 "after four was removed $NETNS_RAND"
t0=$(now)
node_start 7
wait_until 60 ch 7 '.members == 4 and .keyed and .epoch == 1' \
    || fail "host 7 did not catch up with the epoch: $(p 7 channel list)"
wait_until 60 holds 7 5 || fail "host 7 did not catch up: $(order 7)"
echo "host 7 caught up (epoch 1, 5 posts) $(since "$t0") s after its restart"
post 7 "seven is back $NETNS_RAND"
for i in 2 3 6; do wait_until 45 holds "$i" 6 || fail "host $i missed host 7's post: $(order "$i")"; done
for i in 3 6 7; do [ "$(order "$i")" = "$(order 2)" ] || fail "host $i shows another order"; done
ch 4 '.state == "gone"' || fail "host 4 does not show #branch as left: $(p 4 channel list)"
for t in "after four was removed $NETNS_RAND" "seven is back $NETNS_RAND"; do
    grep -qaF "$t" "$(home 4)"/parley.db* && fail "host 4 holds '$t', posted after its removal"
done

# --- 4. the gateways carry, and read nothing --------------------------------------
for t in "${TEXTS[@]}"; do
    grep -qaF "$t" "$(home 2)"/parley.db* || fail "control: '$t' not in host 2's database"
    for g in $G1 $G2; do
        grep -qaF "$t" "$(home $g)"/parley.db* && fail "plaintext '$t' in gateway $g's database"
        grep -qaF "$t" "$(node_log $g)" && fail "message text in gateway $g's log"
    done
done
for g in $G1 $G2; do
    n=$(db_count $g 'SELECT count(*) FROM envelopes WHERE kind = 5')
    [ "$n" -ge 6 ] || fail "gateway $g holds $n channel messages, not the six posts"
    [ "$(db_count $g 'SELECT count(*) FROM chan_msgs')" = 0 ] || fail "gateway $g opened messages"
    echo "gateway $g: $n channel messages (posts, settings, receipts), none readable"
done
echo "ok"

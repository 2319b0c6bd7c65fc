#!/bin/bash
# tests/netns/t_branch.sh — two branch offices joined only by their gateways.
#
# Subnet 1: hosts 1..4, subnet 2: hosts 5..8 (netns_setup_routed 4 4). Host 1
# (G1) and host 5 (G2) are the offices' gateways, both `parleyd --relay`; G1
# names G2 as its only seed. The rest are members with no seeds: they find
# their own gateway and each other by mDNS, which stays in its subnet.
#
# The routed harness forwards IPv4 between the subnets. Here the router
# namespace gets an nftables forward chain that drops everything but G1<->G2,
# as a branch firewall would: members cannot reach across, even when peer
# exchange tells them where the other office's nodes are. Members only ever
# reach the other office through the two relays.
#
# Checks:
#   1. isolation: a member cannot open a TCP connection to a member or to the
#      gateway across; G1 can reach G2. Each member is online with exactly
#      the three other nodes of its subnet, and never with a node across;
#   2. a DM from each member of subnet 1 to host 6 and from each member of
#      subnet 2 to host 2 arrives (recipient: received) and its receipt comes
#      back (sender: delivered or read); the time each crossing took is
#      printed;
#   3. the gateways carry but cannot read: no message text in either
#      gateway's database (parley.db, -wal) or its log; each gateway's
#      history with every member is empty and it holds no messages, while
#      its envelope log (.log.envelopes) counts at least the six DMs and
#      their six receipts.
# Root only; everything runs in namespaces it creates, removed on exit.
# Needs nftables (nft).
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/netns/lib.sh
FAIL_TAIL=12

G1=1
G2=5
M1=(2 3 4)
M2=(6 7 8)
ALL=(1 2 3 4 5 6 7 8)

command -v nft >/dev/null \
    || { echo "FAIL: nft not found: apt-get install -y --no-install-recommends nftables"; exit 1; }

online_ids() { p "$1" peers --json 2>/dev/null | jq -r '.[] | select(.online) | .id'; }
# tcp_reaches I ADDR: a TCP connection from host I to ADDR:7400 opens within 2 s.
tcp_reaches() { netns_exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/7400" 2>/dev/null; }

netns_setup_routed 4 4
GW1_ADDR=$(netns_addr $G1)
GW2_ADDR=$(netns_addr $G2)
# The branch firewall: the router forwards only between the two gateways.
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
t0=$(now)
for i in "${ALL[@]}"; do
    args=()
    [ "$i" = $G1 ] && args=(--relay --seed "tcp://$GW2_ADDR:7400#$IDG2")
    [ "$i" = $G2 ] && args=(--relay)
    node_spawn "$i" "${args[@]}"
done
for i in "${ALL[@]}"; do
    node_wait_up "$i"
    ID[$i]=$(nid "$i")
done

# Every node online with the other three of its subnet; gateways also with
# each other.
offices_meshed() { meshed 4 $G1 $G2 && meshed 3 "${M1[@]}" "${M2[@]}"; }
wait_until 60 offices_meshed || fail "offices not meshed: $(online_counts "${ALL[@]}")"
echo "offices meshed in $(since "$t0") s"

# Isolation, checked on the wire and in the nodes' own view.
for i in "${M1[@]}"; do
    tcp_reaches "$i" "$(netns_addr 6)" && fail "host $i reaches host 6 across the router"
done
tcp_reaches 6 "$GW1_ADDR" && fail "host 6 reaches G1 across the router"
tcp_reaches $G1 "$GW2_ADDR" || fail "G1 cannot reach G2"
online $G1 "$IDG2" || fail "G1 not linked to G2"
for i in "${M1[@]}" "${M2[@]}"; do
    if [ "$i" -lt $G2 ]; then across=("${M2[@]}" "$G2"); else across=("${M1[@]}" "$G1"); fi
    on=$(online_ids "$i")
    for j in "${across[@]}"; do
        grep -qx "${ID[$j]}" <<<"$on" && fail "host $i is online with host $j across the offices"
    done
done

# One DM from each member to a member of the other office. Every member's
# notifications are timestamped as they come (parley watch): the figures
# printed are from the send to the recipient's "message" and to the sender's
# "delivery". The checks themselves read history.
for i in "${M1[@]}" "${M2[@]}"; do
    netns_bg "$i" "$NETNS_DIR/w$i.log" perl -MTime::HiRes=time -e '$| = 1;
        open(my $w, "-|", @ARGV) or die "watch: $!"; printf "%.3f %s", time, $_ while <$w>' \
        "$BIN/parley" --home "$(home "$i")" --json watch
done
sleep 0.5
declare -A TEXT TSENT
pairs=()
for i in "${M1[@]}"; do pairs+=("$i:6"); done
for i in "${M2[@]}"; do pairs+=("$i:2"); done
for pr in "${pairs[@]}"; do
    s=${pr%:*}
    r=${pr#*:}
    TEXT[$pr]="branch $s to $r $NETNS_RAND"
    TSENT[$pr]=$(now)
    p "$s" send "${ID[$r]}" "${TEXT[$pr]}" --json >"$NETNS_DIR/send.json" \
        || fail "send from $s to $r"
    jqe '.state == "stored" or .state == "queued"' "$NETNS_DIR/send.json" >/dev/null \
        || fail "send from $s: $(cat "$NETNS_DIR/send.json")"
done
received() { # received S R TEXT: exactly once in R's history with S
    p "$2" history "${ID[$1]}" --limit 0 --json \
        | jqe --arg t "$3" '[.[] | select(.text == $t and (.outgoing | not))] | length == 1' \
        >/dev/null
}
delivered() { # delivered S R TEXT: S has seen the receipt
    p "$1" history "${ID[$2]}" --limit 0 --json \
        | jqe --arg t "$3" '.[] | select(.text == $t) | .state == "delivered" or .state == "read"' \
        >/dev/null
}
all_crossed() {
    local pr
    for pr in "${pairs[@]}"; do
        received "${pr%:*}" "${pr#*:}" "${TEXT[$pr]}" || return 1
        delivered "${pr%:*}" "${pr#*:}" "${TEXT[$pr]}" || return 1
    done
}
wait_until 45 all_crossed
# when HOST METHOD TEXT: the first time HOST's watch saw METHOD for TEXT.
when() {
    jq -Rr --arg m "$2" --arg t "$3" 'split(" ") as $f | ($f[1:] | join(" ") | fromjson?) as $n
        | select($n.method == $m and $n.params.text == $t and ($m == "message"
            or $n.params.state == "delivered" or $n.params.state == "read")) | $f[0]' \
        "$NETNS_DIR/w$1.log" 2>/dev/null | head -n 1
}
for pr in "${pairs[@]}"; do
    s=${pr%:*}
    r=${pr#*:}
    printf 'host %s -> host %s: received after %s s, receipt back after %s s\n' "$s" "$r" \
        "$(elapsed "${TSENT[$pr]}" "$(when "$r" message "${TEXT[$pr]}")")" \
        "$(elapsed "${TSENT[$pr]}" "$(when "$s" delivery "${TEXT[$pr]}")")"
done
states() { # states I J: I's history with J, as "in|out state" items
    p "$1" history "${ID[$2]}" --limit 0 --json \
        | jq -c 'map("\(if .outgoing then "out" else "in" end) \(.state)")'
}
for pr in "${pairs[@]}"; do
    s=${pr%:*}
    r=${pr#*:}
    received "$s" "$r" "${TEXT[$pr]}" \
        || fail "DM $s -> $r not received: $r has $(states "$r" "$s"), $s has $(states "$s" "$r")"
    delivered "$s" "$r" "${TEXT[$pr]}" || fail "no receipt for $s -> $r: $s has $(states "$s" "$r")"
done

# The gateways carried everything and can read none of it. The control: the
# same grep finds each text in its recipient's database.
for pr in "${pairs[@]}"; do
    grep -qaF "${TEXT[$pr]}" "$(home "${pr#*:}")"/parley.db* \
        || fail "control: '${TEXT[$pr]}' not found in host ${pr#*:}'s database"
done
for g in $G1 $G2; do
    for pr in "${pairs[@]}"; do
        grep -qaF "${TEXT[$pr]}" "$(home $g)"/parley.db* \
            && fail "plaintext '${TEXT[$pr]}' in gateway $g's database"
        grep -qaF "${TEXT[$pr]}" "$(node_log $g)" && fail "message text in gateway $g's log"
    done
    for i in "${M1[@]}" "${M2[@]}"; do
        p "$g" history "${ID[$i]}" --limit 0 --json | jqe 'length == 0' >/dev/null \
            || fail "gateway $g has a history with host $i: $(p "$g" history "${ID[$i]}" --json)"
    done
    # Six DMs and six receipts crossed through both gateways.
    p "$g" status --json >"$NETNS_DIR/g.json"
    jqe '.log.envelopes >= 12 and .log.messages == 0' "$NETNS_DIR/g.json" >/dev/null \
        || fail "gateway $g log: $(jq -c '{log, sync}' "$NETNS_DIR/g.json")"
    echo "gateway $g: $(jq -c '{envelopes: .log.envelopes, messages: .log.messages,
        rounds: .sync.rounds_ended, streamed: .sync.envelopes_streamed}' "$NETNS_DIR/g.json")"
done
echo "ok"

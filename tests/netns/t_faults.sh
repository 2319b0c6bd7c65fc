#!/bin/bash
# tests/netns/t_faults.sh — messages survive a bad network and crashing nodes.
#
# Five simulated hosts on one subnet (netns_setup 5), each with real Avahi:
# host 1 runs `parleyd --relay`, hosts 2..5 are members; all mesh by mDNS.
# Members 2, 3 and 4 send DMs to the other members in rounds, through four
# phases of faults:
#   (a) 10% packet loss and shaping on every host, 3 senders x 30 DMs;
#   (b) 30% packet loss (shaping kept), 3 senders x 15 DMs;
#   (c) partition: host 5 cut off entirely while 2, 3, 4 send to it and it
#       sends to them; then healed, and the time until every DM of the
#       phase is received and its receipt seen is printed;
#   (d) kill -9 of two random members (never the relay) while 3 senders send
#       20 DMs each; restarted on the same home and port.
# After the loss, the partition and the faults as a whole, every node must
# see every other online again within 30 s (the network is healthy then).
# Then, with every fault removed, once everything settles (time printed):
# every DM whose `parley send` returned success (acknowledged: durable on the
# sender) is in its recipient's history exactly once (texts are unique), its
# sender sees it delivered (or read), and no text, acknowledged or not, is
# there twice.
#
# What is emulated, and how (this kernel has no netem: CONFIG_NET_SCH_NETEM
# is not set, so no fixed delay, no jitter distribution, no reordering):
#   - loss: an nftables input chain in every host namespace drops a random
#     N% of the packets that arrive on eth0 (`numgen random mod 100 < N`).
#     Each packet between two hosts meets exactly one such hook, at its
#     receiver, so N is the per-packet loss of every path, both directions.
#     Dropping on output as well would double it, and a drop on output is
#     reported to the sending socket (EPERM), which a lossy network is not.
#   - delay and jitter: only as queueing, by a token bucket on every host's
#     egress (tc tbf rate 1mbit burst 8kb latency 100ms): bursts wait up to
#     100 ms behind the 1 Mbit/s bottleneck, idle traffic is not delayed.
#   - reordering: not emulated (it needs netem); TCP would hide it from the
#     application anyway.
#   - partition: input and output of host 5's eth0 dropped: silence for the
#     others, as a cut cable somewhere in the network (host 5's own packets
#     fail locally; its `parley send` still stores durably).
#   - crash: SIGKILL, no chance to flush or say goodbye.
# Root only; needs nftables (nft) and tc; everything runs in namespaces it
# creates, removed on exit. About 30 s on two cores when all goes well; every
# wait is bounded (a failing run ends within about 150 s).
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
. tests/common.sh
. tests/netns/lib.sh

RELAY=1
MEMBERS=(2 3 4 5)
SENDERS=(2 3 4)
X=5
ALL=(1 2 3 4 5)
LOOPS=()

fail() {
    echo "FAIL: $*"
    local pid f
    for pid in "${LOOPS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for f in "$NETNS_DIR"/n*.log; do
        [ -f "$f" ] && tail -n 10 "$f" | sed "s/^/  $(basename "$f" .log) | /"
    done
    exit 1
}
for cmd in nft tc; do
    command -v $cmd >/dev/null \
        || { echo "FAIL: $cmd not found: apt-get install -y --no-install-recommends nftables iproute2"; exit 1; }
done

p() { local i=$1; shift; "$BUILD/parley" --home "$NETNS_DIR/h$i" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
online_count() { p "$1" status --json 2>/dev/null | jq -r '.peers.online // 0'; }
all_meshed() {
    local i
    for i in "${ALL[@]}"; do
        [ "$(online_count "$i")" = 4 ] || return 1
    done
}
# mesh_report: per host, the peers it does not see online and why.
mesh_report() {
    local i
    for i in "${ALL[@]}"; do
        echo "host $i: $(p "$i" doctor --json | jq -c '[.peers[] | select(.online | not)
            | "\(.short_id) \(.reason)"]') rejected $(p "$i" status --json | jq -c '.rejected
            | with_entries(select(.value > 0))')"
    done
}
is_online() { # is_online I J: host I sees host J online
    p "$1" peers --json | jqe --arg id "${ID[$2]}" '.[] | select(.id == $id and .online)' >/dev/null
}

declare -a ID PID
RUNS=0
start_node() { # start_node I: on its home and port (logs n<I>.log, then n<I>-r<k>.log)
    local i=$1 log="$NETNS_DIR/n$1.log" args=()
    [ -f "$log" ] && RUNS=$((RUNS + 1)) && log="$NETNS_DIR/n$1-r$RUNS.log"
    [ "$i" = $RELAY ] && args=(--relay)
    netns_bg "$i" "$log" "$BUILD/parleyd" --home "$NETNS_DIR/h$i" \
        --listen tcp://0.0.0.0:7400 --no-local --ping-ms 500 --retry-ms 1000 --sync-ms 1000 \
        "${args[@]}"
    PID[$i]=$NETNS_LAST_PID
}
# A restarted node's old API socket is still there: ready is when it answers.
node_ready() { p "$1" status --json >/dev/null 2>&1 && kill -0 "${PID[$1]}" 2>/dev/null; }

# --- faults -----------------------------------------------------------------

# fault_rules I IN_RULE [OUT_RULE]: host I's fault table holds exactly these
# (none when empty).
fault_rules() {
    local i=$1 in=${2:-} out=${3:-}
    netns_exec "$i" nft delete table inet fault 2>/dev/null
    [ -n "$in$out" ] || return 0
    netns_exec "$i" nft -f - <<EOF || fail "cannot load fault rules on host $i"
table inet fault {
    chain in {
        type filter hook input priority 0; policy accept;
        $in
    }
    chain out {
        type filter hook output priority 0; policy accept;
        $out
    }
}
EOF
}
loss() { # loss PCT: on every host (0: none)
    local i
    for i in "${ALL[@]}"; do
        if [ "$1" = 0 ]; then
            fault_rules "$i"
        else
            fault_rules "$i" "iifname \"eth0\" numgen random mod 100 < $1 counter drop"
        fi
    done
}
dropped() { # dropped: packets dropped by every host's fault rules so far
    local i n=0 c
    for i in "${ALL[@]}"; do
        c=$(netns_exec "$i" nft -j list table inet fault 2>/dev/null \
            | jq '[.. | .counter? | objects | .packets] | add // 0')
        n=$((n + ${c:-0}))
    done
    echo "$n"
}
shaping() { # shaping on|off: the token bucket on every host's egress
    local i
    for i in "${ALL[@]}"; do
        if [ "$1" = on ]; then
            netns_exec "$i" tc qdisc replace dev eth0 root tbf rate 1mbit burst 8kb latency 100ms \
                || fail "tc tbf on host $i"
        else
            netns_exec "$i" tc qdisc del dev eth0 root 2>/dev/null
        fi
    done
    return 0
}

# --- traffic and the ledger -------------------------------------------------

# Every send is written to $NETNS_DIR/acked (the command returned success with
# state stored or queued) or $NETNS_DIR/unacked, as "sender<TAB>recipient<TAB>text".
TOKEN=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
send_loop() { # send_loop PHASE S COUNT DELAY RECIPIENT...
    local phase=$1 s=$2 n=$3 d=$4 k r text out
    shift 4
    local to=("$@")
    for k in $(seq "$n"); do
        r=${to[$(((k - 1) % ${#to[@]}))]}
        text="$phase $s>$r #$k $TOKEN"
        out=$(timeout 10 "$BUILD/parley" --home "$NETNS_DIR/h$s" send "${ID[$r]}" "$text" \
            --json 2>/dev/null)
        if jqe '.state == "stored" or .state == "queued"' >/dev/null 2>&1 <<<"$out"; then
            printf '%s\t%s\t%s\n' "$s" "$r" "$text" >>"$NETNS_DIR/acked"
        else
            printf '%s\t%s\t%s\n' "$s" "$r" "$text" >>"$NETNS_DIR/unacked"
        fi
        sleep "$d"
    done
}
others() { # others S: the members but S
    local m
    for m in "${MEMBERS[@]}"; do
        [ "$m" != "$1" ] && echo "$m"
    done
}
loops_start() { # loops_start PHASE COUNT DELAY: every sender, in the background
    local s
    for s in "${SENDERS[@]}"; do
        # shellcheck disable=SC2046
        send_loop "$1" "$s" "$2" "$3" $(others "$s") &
        LOOPS+=($!)
    done
}
loops_wait() {
    local pid
    for pid in "${LOOPS[@]}"; do
        wait "$pid"
    done
    LOOPS=()
}

# dump: every member's history with every other member, as
# "host<TAB>in|out<TAB>state<TAB>text" lines in $NETNS_DIR/hist.
dump() {
    local r s
    : >"$NETNS_DIR/hist.new"
    for r in "${MEMBERS[@]}"; do
        for s in $(others "$r"); do
            p "$r" history "${ID[$s]}" --limit 0 --json | jq -r --arg h "$r" \
                '.[] | [$h, (if .outgoing then "out" else "in" end), .state, .text] | @tsv' \
                >>"$NETNS_DIR/hist.new" || return 1
        done
    done
    mv "$NETNS_DIR/hist.new" "$NETNS_DIR/hist"
}
# tally [PHASE]: compares the ledger (only PHASE's sends, if given) with the
# last dump; prints the counts; true when every acknowledged DM is received
# exactly once and delivered, and nothing is anywhere twice.
tally() {
    awk -F'\t' -v phase="${1:-}" '
        FILENAME ~ /hist$/ {
            if ($2 == "in") { got[$1 SUBSEP $4]++ }
            else { state[$1 SUBSEP $4] = $3; sent[$1 SUBSEP $4]++ }
            next
        }
        phase != "" && index($3, phase " ") != 1 { next }
        {
            acked = FILENAME ~ /\/acked$/
            n_acked += acked
            n_unacked += !acked
            g = got[$2 SUBSEP $3]
            if (g > 1 || sent[$1 SUBSEP $3] > 1) { dups++ }
            if (!acked) { if (g == 1) { unacked_arrived++ }; next }
            if (g == 1) { received++ } else if (g == 0) { missing++ }
            st = state[$1 SUBSEP $3]
            if (st == "delivered" || st == "read") { delivered++ }
        }
        END {
            printf "acknowledged %d (received %d, missing %d, delivered %d), " \
                "not acknowledged %d (arrived anyway %d), duplicates %d\n", n_acked, received,
                missing, delivered, n_unacked, unacked_arrived, dups
            exit !(received == n_acked && delivered == n_acked && dups == 0)
        }' "$NETNS_DIR/hist" "$NETNS_DIR/acked" "$NETNS_DIR/unacked"
}
settled() { dump && tally "$@"; }
converge() { # converge PHASE: under the phase's faults, waits up to 20 s and reports
    local t r
    t=$(now)
    if wait_until 20 settled "$1"; then
        r="all there after $(since "$t") more s"
    else
        settled "$1" >/dev/null
        r="not all there after 20 s: $(tally "$1")"
    fi
    echo "$r; $(dropped) packets dropped in the phase (all hosts)"
}

# --- the run ----------------------------------------------------------------

T_START=$SECONDS
netns_setup 5
for i in "${ALL[@]}"; do
    start_node "$i"
done
for i in "${ALL[@]}"; do
    wait_until 20 node_ready "$i" || fail "node $i did not start"
    ID[$i]=$(p "$i" id --json | jq -r .id)
done
t0=$(now)
wait_until 30 all_meshed || fail "not meshed: $(mesh_report)"
echo "mesh of 5 in $(since "$t0") s"
: >"$NETNS_DIR/acked"
: >"$NETNS_DIR/unacked"

echo "(a) 10% loss on every host, shaping 1 Mbit/s with up to 100 ms queueing"
shaping on
loss 10
t0=$(now)
loops_start a 30 0.1
loops_wait
echo "    sent in $(since "$t0") s; $(converge a)"

echo "(b) 30% loss"
loss 30
t0=$(now)
loops_start b 15 0.2
loops_wait
echo "    sent in $(since "$t0") s; $(converge b)"
loss 0
t0=$(now)
wait_until 30 all_meshed || fail "no full mesh 30 s after the loss stopped: $(mesh_report)"
echo "    loss off: full mesh again after $(since "$t0") s"

echo "(c) host $X cut off"
t0=$(now)
fault_rules $X 'iifname "eth0" counter drop' 'oifname "eth0" counter drop'
x_gone() { ! is_online $RELAY $X; }
wait_until 10 x_gone || fail "host $X still online on the relay while cut off"
echo "    the relay saw host $X offline after $(since "$t0") s"
for s in "${SENDERS[@]}"; do
    send_loop c "$s" 5 0.1 $X &
    LOOPS+=($!)
done
# shellcheck disable=SC2046
send_loop c $X 6 0.1 $(others $X) &
LOOPS+=($!)
loops_wait
sleep 3
fault_rules $X
t_heal=$(now)
if wait_until 20 settled c; then
    echo "    healed: every DM of the phase received and its receipt seen after $(since "$t_heal") s"
else
    echo "    healed, NOT converged after 20 s"
fi
settled c >/dev/null
echo "    $(tally c)"

wait_until 30 all_meshed || fail "no full mesh after the partition: $(mesh_report)"
mapfile -t VICTIMS < <(shuf -n 2 -e "${MEMBERS[@]}")
echo "(d) kill -9 of hosts ${VICTIMS[*]} mid-traffic, restarted on the same home and port"
t0=$(now)
loops_start d 20 0.1
sleep 1
for v in "${VICTIMS[@]}"; do
    kill -KILL "${PID[$v]}"
    wait "${PID[$v]}" 2>/dev/null
done
sleep 1
for v in "${VICTIMS[@]}"; do
    start_node "$v"
done
for v in "${VICTIMS[@]}"; do
    wait_until 20 node_ready "$v" || fail "host $v did not restart"
done
echo "    restarted after $(since "$t0") s"
loops_wait

echo "faults removed"
shaping off
t_end=$(now)
wait_until 30 all_meshed || fail "no full mesh after the faults: $(mesh_report)"
echo "    full mesh again after $(since "$t_end") s"
if ! wait_until 45 settled; then
    settled >/dev/null
    fail "did not settle within 45 s: $(tally)"
fi
echo "    settled after $(since "$t_end") s"
# Two more rounds: nothing may arrive twice late.
sleep 2
settled >/dev/null || fail "after settling: $(tally)"
for ph in a b c d; do
    echo "    ($ph) $(tally $ph)"
done
echo "    all: $(tally)"
for i in "${ALL[@]}"; do
    p "$i" status --json | jq -c --arg h "$i" '{host: $h, envelopes: .log.envelopes,
        rounds: .sync.rounds_ended, streamed: .sync.envelopes_streamed,
        rejected: (.rejected | with_entries(select(.value > 0)))}'
done
echo "total $((SECONDS - T_START)) s"
echo "ok"

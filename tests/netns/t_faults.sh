#!/bin/bash
# tests/netns/t_faults.sh — messages survive a bad network and crashing nodes.
#
# Five simulated hosts on one subnet, each with real Avahi, each plugged into
# the bridge through its own userspace netem (netns_setup_tap 5, below): host
# 1 runs `parleyd --relay`, hosts 2..5 are members; all mesh by mDNS, through
# the emulated links. Members 2, 3 and 4 send DMs to the other members in
# rounds, through four phases of faults:
#   (a) 20 ms delay, +-10 ms jitter, 25% reordering and 10% loss on every
#       host, 3 senders x 30 DMs;
#   (b) the same with 30% loss, 3 senders x 15 DMs;
#   (c) partition: host 5 cut off entirely while 2, 3, 4 send to it and it
#       sends to them; then healed, and the time until every DM of the
#       phase is received and its receipt seen is printed;
#   (d) kill -9 of two random members (never the relay) while 3 senders send
#       20 DMs each; restarted on the same home and port.
# Delay, jitter and reordering stay on from (a) to the end of (d); loss only
# in (a) and (b). After the loss, the partition and the faults as a whole,
# every node must see every other online again within 30 s. Then, with every
# fault removed, once everything settles (time printed): every DM whose
# `parley send` returned success (acknowledged: durable on the sender) is in
# its recipient's history exactly once (texts are unique), its sender sees it
# delivered (or read), and no text, acknowledged or not, is there twice.
#
# What is emulated, and how. This kernel has no sch_netem
# (CONFIG_NET_SCH_NETEM is not set), so the faults are made in userspace:
# each host's eth0 is a TAP device whose other end is a TAP port of the
# bridge, and between the two runs tests/netem_tap, which copies every
# Ethernet frame (unicast, ARP, mDNS multicast alike) and applies, per
# direction, the parameters of that host's file (netns_tap_set):
#   - delay and jitter: a frame is held delay_ms + U(-jitter_ms, +jitter_ms)
#     in a queue ordered by due time (uniform, as netem's jitter without a
#     distribution table); frames closer together than the jitter leave in
#     a different order than they came;
#   - reordering: besides that, reorder_pct of the frames skip the delay and
#     overtake the ones held (netem's reorder);
#   - loss: a frame dropped with probability loss_pct;
#   - partition: down=1 drops every frame both ways, held ones included: a
#     cut cable (host 5's own frames vanish too, silently).
# Delay, jitter, reordering and loss are set on each host's transmit side
# only (tx.*), as netem on every host's egress: a frame between two hosts
# meets exactly one of them, at its sender, so every path has 20 +- 10 ms
# one way (about 40 ms round trip), 25% reordering and N% loss per frame in
# each direction.
#   - crash: SIGKILL, no chance to flush or say goodbye.
# Each phase prints what the emulators did in it, summed over every host's
# transmit side (each frame on the wire counted once): frames sent, lost,
# delayed (and their mean time held), sent ahead, reordered (delivered after
# a frame that its sender sent later to the same destination MAC address:
# what a receiver sees out of order), and the frames cut, both ways. The run
# fails unless (a), (b) and (d) really delayed, sent ahead and reordered
# frames, (a) and (b) lost some and (c) cut some.
# Root only; needs /dev/net/tun and $BUILD/netem_tap (make build/netem_tap);
# everything runs in namespaces it creates, removed on exit (the TAPs go with
# their netem_tap processes). About 30 s on two cores when all goes well;
# every wait is bounded (a failing run ends within about 150 s).
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/netns/lib.sh
FAIL_TAIL=10
NODE_ARGS="$NODE_ARGS --sync-ms 1000"

RELAY=1
MEMBERS=(2 3 4 5)
SENDERS=(2 3 4)
X=5
ALL=(1 2 3 4 5)

all_meshed() { meshed 4 "${ALL[@]}"; }
# mesh_report: per host, the peers it does not see online and why.
mesh_report() {
    local i
    for i in "${ALL[@]}"; do
        echo "host $i: $(p "$i" doctor --json | jq -c '[.peers[] | select(.online | not)
            | "\(.short_id) \(.reason)"]') rejected $(p "$i" status --json | jq -c '.rejected
            | with_entries(select(.value > 0))')"
    done
}

declare -a ID

# --- faults -----------------------------------------------------------------

# Every host's link, transmit side (see the header): the lasting faults, and
# those of (a) and (b) with loss on top.
JITTERY="tx.delay_ms=20 tx.jitter_ms=10 tx.reorder_pct=25"
faults() { # faults PARAMS: on every host's link
    local i
    for i in "${ALL[@]}"; do
        netns_tap_set "$i" "$1"
    done
}
# tap_totals: the counters of every link, summed over hosts per direction, as
# "tx.KEY value" and "rx.KEY value" lines, and "lines N" (report lines read).
tap_totals() {
    local i
    for i in "${ALL[@]}"; do
        netns_tap_report "$i"
    done | awk '{
            for (f = 5; f <= NF; f++) {
                if (split($f, kv, "=") == 2 && kv[1] != "avg_ms" && kv[1] != "held") {
                    s[$4 "." kv[1]] += kv[2]
                }
            }
        }
        END { for (k in s) { print k, s[k] }; print "lines", NR }'
}
declare -A TAP_PREV TAP_D
# tap_phase: what the emulators did since the last call, into TAP_D (and
# TAP_D[cut]: frames cut in either direction).
tap_phase() {
    local k v
    local -A cur=()
    while read -r k v; do
        cur[$k]=$v
    done < <(tap_totals)
    [ "${cur[lines]:-0}" = $((2 * ${#ALL[@]})) ] || fail "netem_tap counters missing"
    for k in "${!cur[@]}"; do
        TAP_D[$k]=$((${cur[$k]} - ${TAP_PREV[$k]:-0}))
        TAP_PREV[$k]=${cur[$k]}
    done
    TAP_D[cut]=$((${TAP_D[tx.cut]} + ${TAP_D[rx.cut]}))
}
# tap_summary: TAP_D in words. The faults are on the transmit side, so the tx
# counters are the frames on the wire, each counted once; cut is both ways.
tap_summary() {
    awk -v in_="${TAP_D[tx.in]}" -v lost="${TAP_D[tx.lost]}" -v del="${TAP_D[tx.delayed]}" \
        -v us="${TAP_D[tx.hold_us]}" -v ahead="${TAP_D[tx.bypassed]}" \
        -v reord="${TAP_D[tx.reordered]}" -v cut="${TAP_D[cut]}" \
        -v full="$((${TAP_D[tx.full]} + ${TAP_D[rx.full]}))" 'BEGIN {
            pct = in_ ? 100 * lost / in_ : 0
            printf "emulators: %d frames sent, %d lost (%.1f%%), %d delayed (mean %.1f ms), " \
                "%d sent ahead, %d reordered; %d cut, %d dropped on a full queue\n", in_, lost,
                pct, del, del ? us / del / 1000 : 0, ahead, reord, cut, full
        }'
}
# tap_expect KEY...: each of these counters moved in the phase.
tap_expect() {
    local k
    for k in "$@"; do
        [ "${TAP_D[$k]:-0}" -gt 0 ] || fail "the emulators show no $k frames in this phase"
    done
}
phase_end() { # phase_end KEY...: prints the phase's counters, checks KEYs moved
    tap_phase
    echo "    $(tap_summary)"
    tap_expect "$@"
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
        out=$(timeout 10 "$BIN/parley" --home "$(home "$s")" send "${ID[$r]}" "$text" \
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
loop_bg() { # loop_bg ARGS...: send_loop ARGS... in the background, its PID in PIDS
    send_loop "$@" &
    PIDS[loop$!]=$!
}
loops_start() { # loops_start PHASE COUNT DELAY: every sender, in the background
    local s
    for s in "${SENDERS[@]}"; do
        # shellcheck disable=SC2046
        loop_bg "$1" "$s" "$2" "$3" $(others "$s")
    done
}
loops_wait() {
    local k
    for k in "${!PIDS[@]}"; do
        [[ $k == loop* ]] || continue
        wait "${PIDS[$k]}"
        unset "PIDS[$k]"
    done
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
    echo "$r"
}

# --- the run ----------------------------------------------------------------

T_START=$SECONDS
netns_setup_tap 5
FAIL_LOGS=("$NETNS_DIR"/tap-h*.log)
node_spawn $RELAY --relay
for i in "${MEMBERS[@]}"; do
    node_spawn "$i"
done
for i in "${ALL[@]}"; do
    node_wait_up "$i"
    ID[$i]=$(nid "$i")
done
t0=$(now)
wait_until 30 all_meshed || fail "not meshed: $(mesh_report)"
# No seeds: the first contacts can only have come from mDNS, through the TAPs.
for i in "${ALL[@]}"; do p "$i" peers --json; done | jq -s 'add | map(.source)' >"$NETNS_DIR/src"
jqe 'any(.[]; . == "mdns")' "$NETNS_DIR/src" >/dev/null \
    || fail "no peer found by mDNS: $(jq -c . "$NETNS_DIR/src")"
echo "mesh of 5 in $(since "$t0") s (mDNS through netem_tap)"
: >"$NETNS_DIR/acked"
: >"$NETNS_DIR/unacked"

echo "(a) 20 ms delay, +-10 ms jitter, 25% reordering, 10% loss on every host"
faults "$JITTERY tx.loss_pct=10"
tap_phase
t0=$(now)
loops_start a 30 0.1
loops_wait
echo "    sent in $(since "$t0") s; $(converge a)"
phase_end tx.delayed tx.reordered tx.bypassed tx.lost

echo "(b) 30% loss (delay, jitter, reordering kept)"
faults "$JITTERY tx.loss_pct=30"
t0=$(now)
loops_start b 15 0.2
loops_wait
echo "    sent in $(since "$t0") s; $(converge b)"
phase_end tx.delayed tx.reordered tx.bypassed tx.lost
faults "$JITTERY"
t0=$(now)
wait_until 30 all_meshed || fail "no full mesh 30 s after the loss stopped: $(mesh_report)"
echo "    loss off: full mesh again after $(since "$t0") s"

echo "(c) host $X cut off (down=1 on its link)"
tap_phase
t0=$(now)
netns_tap_set $X "$JITTERY down=1"
x_gone() { ! online $RELAY "${ID[$X]}"; }
wait_until 10 x_gone || fail "host $X still online on the relay while cut off"
echo "    the relay saw host $X offline after $(since "$t0") s"
for s in "${SENDERS[@]}"; do
    loop_bg c "$s" 5 0.1 $X
done
# shellcheck disable=SC2046
loop_bg c $X 6 0.1 $(others $X)
loops_wait
sleep 3
netns_tap_set $X "$JITTERY"
t_heal=$(now)
if wait_until 20 settled c; then
    echo "    healed: every DM of the phase received and its receipt seen after $(since "$t_heal") s"
else
    echo "    healed, NOT converged after 20 s"
fi
settled c >/dev/null
echo "    $(tally c)"
phase_end tx.delayed cut

wait_until 30 all_meshed || fail "no full mesh after the partition: $(mesh_report)"
mapfile -t VICTIMS < <(shuf -n 2 -e "${MEMBERS[@]}")
echo "(d) kill -9 of hosts ${VICTIMS[*]} mid-traffic, restarted on the same home and port"
tap_phase
t0=$(now)
loops_start d 20 0.1
sleep 1
for v in "${VICTIMS[@]}"; do
    node_kill "$v"
done
sleep 1
for v in "${VICTIMS[@]}"; do
    node_spawn "$v" # on the same home and port
done
for v in "${VICTIMS[@]}"; do
    node_wait_up "$v"
done
echo "    restarted after $(since "$t0") s"
loops_wait
phase_end tx.delayed tx.reordered tx.bypassed

echo "faults removed"
faults ""
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

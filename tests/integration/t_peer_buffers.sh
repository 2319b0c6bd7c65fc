#!/bin/bash
# A CURVE peer floods node a with frames of the largest size the transport
# takes (1 MiB of garbage each), as fast as the link takes them and never
# reading, for FLOOD_S seconds. What a has not read yet waits in its libzmq
# queues, which node/transport.h bounds (TRANSPORT_HWM frames per connection
# each way). Two floods:
#   1. a as it is: an honest DM between a and its peer b goes through both
#      ways while the flood still runs.
#   2. a slowed down: a's peak resident memory (VmHWM) stays within
#      RSS_MAX_MB of what it was before the flood, and DMs sent during it
#      arrive once it ends.
# After each, a still answers the flooder's PING; at the end, its API.
#
# A node that reads as fast as the flood comes queues nothing, so the
# second flood makes a slow: while it runs, a's own threads (all but libzmq's
# ZMQbg/* I/O and reaper threads) are SCHED_IDLE and every thread of a and
# of the flooder shares one CPU. libzmq's I/O thread keeps taking frames off
# the socket while a's loop barely runs: the worst case for the queue (a
# loop stalled on a slow disk looks the same). Lowering a thread's priority
# and pinning threads of one's own processes needs no privilege.
. "$(dirname "$0")/lib.sh"
FLOOD_S=${FLOOD_S:-10}
RSS_MAX_MB=${RSS_MAX_MB:-100}
command -v chrt >/dev/null && command -v taskset >/dev/null || fail "needs chrt, taskset"

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; } # kib FIELD PID

# slow PID: a's loop starved, everything on CPU 0. fast PID: all CPUs again
# (SCHED_IDLE stays unless we may lift it; once the flood ends it costs
# nothing, the CPU being idle).
slow() {
    local t
    for t in /proc/"$1"/task/*; do
        taskset -p -c 0 "${t##*/}" >/dev/null || fail "taskset"
        case $(cat "$t/comm") in
        ZMQbg/*) ;;
        *) chrt -i -p 0 "${t##*/}" || fail "chrt" ;;
        esac
    done
}
fast() {
    local t
    for t in /proc/"$1"/task/*; do
        taskset -p -c "0-$(($(nproc) - 1))" "${t##*/}" >/dev/null || fail "taskset"
        chrt -o -p 0 "${t##*/}" 2>/dev/null || true # unprivileged: stays idle
    done
}

PEAK=0
sample() { # keeps the largest VmRSS of a seen so far in PEAK
    local r
    r=$(kib VmRSS "$A_PID")
    [ -n "$r" ] && [ "$r" -gt "$PEAK" ] && PEAK=$r
    return 0
}

# flood N [taskset args]: hostile_peer bigflood against a, in the background.
flood() {
    local out=$TMP/flood$1.out
    shift
    "$@" "$BIN/hostile_peer" "$(endpoint a)" "$A_ID" "bigflood:$FLOOD_S" >"$out" 2>&1 &
    PIDS[flood]=$!
}
# flood_end N: waits for the flood, sampling a's memory; checks its report.
flood_end() {
    local out=$TMP/flood$1.out sent
    while kill -0 "${PIDS[flood]}" 2>/dev/null; do sample; sleep 0.25; done
    wait "${PIDS[flood]}" || fail "hostile_peer: $(cat "$out")"
    unset "PIDS[flood]"
    sed "s/^/flood$1 /" "$out"
    grep -q '^pong 1$' "$out" || fail "a did not answer the flooder's PING (flood $1)"
    sent=$(awk '$1 == "sent" { print $2 }' "$out")
    [ "${sent:-0}" -ge 64 ] || fail "flood $1 sent only ${sent:-0} frames: no pressure"
}

pair a b
A_PID=${PIDS[a]}
p a contacts add "$B_ID" bob >/dev/null
p b contacts add "$A_ID" alice >/dev/null

# 1. The flood against a as it is: honest DMs both ways while it runs.
BASE1=$(kib VmRSS "$A_PID")
[ -n "$BASE1" ] || fail "no VmRSS for a"
PEAK=$BASE1
flood 1
sleep 2
T0=$(now)
p b send alice "during flood 1" >/dev/null || fail "b could not send"
p a send bob "during flood 1 too" >/dev/null || fail "a could not send"
EXPECT=1 wait_until "$FLOOD_S" count_is a "$B_ID" received || fail "b's DM did not reach a"
EXPECT=1 wait_until "$FLOOD_S" count_is b "$A_ID" received || fail "a's DM did not reach b"
DM1_S=$(since "$T0")
kill -0 "${PIDS[flood]}" 2>/dev/null || fail "the DMs took longer than the flood (${DM1_S} s)"
flood_end 1
PEAK1=$PEAK
echo "flood1 rss_base_kib $BASE1 rss_peak_kib $PEAK1 growth_mib $(((PEAK1 - BASE1) / 1024))"
echo "flood1 dm_both_ways_s $DM1_S (the flood still running)"

# 2. a slowed down: its queues fill; memory must stay bounded.
sleep 1
BASE=$(kib VmRSS "$A_PID")
PEAK=$BASE
slow "$A_PID"
flood 2 taskset -c 0
for _ in 1 2 3 4; do sleep 0.5; sample; done
# Honest traffic sent while the flood runs: b's DM waits for a's loop, a's
# for its API (both starved); each must arrive by FLOOD_S + 30 s.
T0=$(now)
p b send alice "during flood 2" >/dev/null || fail "b could not send"
p a send bob "during flood 2 too" >/dev/null &
PIDS[send]=$!
flood_end 2
sample
fast "$A_PID"
wait "${PIDS[send]}" || fail "a could not send"
unset "PIDS[send]"
LIMIT=$((FLOOD_S + 30))
EXPECT=2 wait_until "$LIMIT" count_is a "$B_ID" received || fail "b's DM did not reach a"
EXPECT=2 wait_until "$LIMIT" count_is b "$A_ID" received || fail "a's DM did not reach b"
DM_S=$(since "$T0")
HWM=$(kib VmHWM "$A_PID")
[ "$PEAK" -gt "$HWM" ] && HWM=$PEAK # VmHWM is updated lazily
echo "flood2 rss_base_kib $BASE vmhwm_kib $HWM rss_after_kib $(kib VmRSS "$A_PID")"
echo "flood2 growth_mib $(((HWM - BASE) / 1024)) (bound $RSS_MAX_MB)"
echo "flood2 dm_both_ways_s $DM_S (sent during the flood, a's loop starved)"
[ $((HWM - BASE)) -le $((RSS_MAX_MB * 1024)) ] \
    || fail "a grew by $(((HWM - BASE) / 1024)) MiB under the flood (bound $RSS_MAX_MB MiB)"
p a status --json | jqe '.rejected.bad_frame >= 64' >/dev/null || fail "no bad frames counted"
kill -0 "$A_PID" || fail "node died"
echo "ok"

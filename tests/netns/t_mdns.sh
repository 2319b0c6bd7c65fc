#!/bin/bash
# tests/netns/t_mdns.sh — real mDNS discovery between simulated hosts.
#
# Three network namespaces on one bridge, each with its own D-Bus and Avahi
# daemon (tests/netns/lib.sh), each running tests/mdns_probe with a fresh
# node id. Checks, in order:
#   1. every probe reports SEEN for the two others, at the right endpoint,
#      within 10 s;
#   2. bogus _parley._tcp services with garbage TXT records (published with
#      avahi-publish on host 2) are resolved by Avahi but never reported; a
#      record that claims a probe's own id is ignored by that probe; no probe
#      crashes, and each logs the malformed records once;
#   3. avahi-daemon stopped on host 1: its probe reports STATUS mdns down,
#      the others GONE for it;
#   4. avahi-daemon restarted: probe 1 reports STATUS mdns up, republishes
#      (the others see it again) and sees the others again;
#   5. D-Bus stopped too on host 1 (the client cannot be made; retries stay
#      quiet), then both restarted: probe 1 recovers as in 4;
#   6. a second probe with host 2's id, on host 3, reports the collision of
#      its instance name once and stays unpublished;
#   7. blinded records (SPEC §19.3): probes 5 and 6 hold network secret S1,
#      probe 7 holds S2: 5 and 6 see each other, 7 sees neither and they do
#      not see it, no open probe reports them and they report no open probe,
#      and what Avahi resolves on every host names none of their ids (or
#      short ids) nor the tag; then probe 7 is given S1 at run time
#      (SIGHUP: the node's KEYS command) and 5, 6, 7 all see each other,
#      7 under a new random name; then probe 6 goes back to open mode (no
#      keys) and the open probes see it; then probe 6 hushes (the node's
#      HUSH, joining a network): its record is withdrawn (GONE), its host
#      resolves none of it, and it reports no one;
#   8. every probe exits 0 on SIGTERM (under BUILD=build-san: no leaks).
# Prints "ok" and exits 0 on success. Root only; everything it starts runs in
# namespaces it creates and is removed on exit.
#
#   BUILD=build bash tests/netns/t_mdns.sh
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/netns/lib.sh
FAIL_TAIL=+1 # the probes' whole output

count() { # count I PATTERN: lines of probe I's output equal to PATTERN
    local n
    n=$(grep -csxF -- "$2" "$NETNS_DIR/p$1.log")
    echo "${n:-0}"
}

has_lines() { # has_lines I N REGEX: at least N lines of probe I's output match
    local n
    n=$(grep -cs -- "$3" "$NETNS_DIR/p$1.log")
    [ "${n:-0}" -ge "$2" ]
}

has_at_least() { # has_at_least I N PATTERN
    [ "$(count "$1" "$3")" -ge "$2" ]
}

PROBE=$BUILD/mdns_probe
if [ ! -x "$PROBE" ]; then
    make -s "BUILD=$BUILD" "$PROBE" >/dev/null 2>&1
fi
if [ ! -x "$PROBE" ]; then
    # No Makefile rule yet: link it from the layer archives.
    make -s "BUILD=$BUILD" "$BUILD/tests/mdns_probe.o" "$BUILD/libdiscovery.a" \
        "$BUILD/libproto.a" >/dev/null || exit 1
    PROBE=$(mktemp /tmp/parley-mdns-probe.XXXXXX)
    trap 'rm -f "$PROBE"' EXIT
    SANFLAGS=""
    [ "$BUILD" = build-san ] && SANFLAGS="-fsanitize=address,undefined"
    # shellcheck disable=SC2046 # pkg-config's flags are meant to split
    cc $SANFLAGS "$BUILD/tests/mdns_probe.o" "$BUILD/libdiscovery.a" "$BUILD/libproto.a" \
        $(pkg-config --libs libsodium libzmq libczmq avahi-client) -lpthread -o "$PROBE" \
        || exit 1
    PROBE_TMP=$PROBE
fi
command -v avahi-publish >/dev/null \
    || { echo "FAIL: avahi-publish missing (apt-get install avahi-utils)"; exit 1; }

netns_setup 3
FAIL_LOGS=("$NETNS_DIR"/p{1,2,3,4,5,6,7}.log)
[ -n "${PROBE_TMP:-}" ] && trap 'netns_teardown; rm -f "$PROBE_TMP"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}

declare -a ID PID PORT
for i in 1 2 3; do
    PORT[$i]=$((7000 + i))
    netns_bg "$i" "$NETNS_DIR/p$i.log" "$PROBE" new "${PORT[$i]}" 120
    PID[$i]=$NETNS_LAST_PID
done
for i in 1 2 3; do
    wait_until 5 grep -qs '^ID ' "$NETNS_DIR/p$i.log" || fail "probe $i did not start"
    ID[$i]=$(sed -n 's/^ID //p' "$NETNS_DIR/p$i.log")
done

seen() { # seen I J: the line probe I prints when it sees host J
    echo "SEEN ${ID[$2]} tcp://$(netns_addr "$2"):${PORT[$2]} mdns"
}
sees_all() { # sees_all I [N]: probe I saw each other host at least N times
    local j
    for j in 1 2 3; do
        [ "$j" = "$1" ] && continue
        has_at_least "$1" "${2:-1}" "$(seen "$1" "$j")" || return 1
    done
}

# 1. Discovery.
t0=$SECONDS
for i in 1 2 3; do
    wait_until 10 sees_all "$i" || fail "probe $i did not see the others within 10 s"
    [ "$(grep -c '^STATUS mdns up ' "$NETNS_DIR/p$i.log")" = 1 ] || fail "probe $i: no STATUS up"
done
echo "discovery: all three saw each other in $((SECONDS - t0)) s"

# 2. Garbage. Each service holds one kind of bad record; the last claims
#    probe 1's id from host 2: probe 1 must ignore it (its own id), the
#    others may take it as a hint (CURVE would refuse the impostor).
# A fresh valid id, from a probe that reaches no bus (so publishes nothing).
BOGUS_ID=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/parley "$PROBE" new 1 0 2>/dev/null \
    | sed -n 's/^ID //p')
[ ${#BOGUS_ID} = 52 ] || fail "cannot make a node id"

bogus() { # bogus NAME TXT...
    netns_bg 2 "$NETNS_DIR/bogus-$1.log" avahi-publish -s "parley-bogus-$1" _parley._tcp 7999 \
        "${@:2}"
}
bogus noeq garbage
bogus empty
bogus badid v=1 net=open id=notanid
bogus upper v=1 net=open "id=${BOGUS_ID^^}"
bogus dup v=1 net=open "id=$BOGUS_ID" "id=$BOGUS_ID"
bogus ctrl v=1 $'net=op\x01en' "id=$BOGUS_ID"
bogus long v=1 "net=$(printf 'n%.0s' $(seq 65))" "id=$BOGUS_ID"
bogus v2 v=2 "id=$BOGUS_ID"
bogus noid v=1 net=open
bogus self v=1 net=open "id=${ID[1]}"
# Wait until Avahi on host 3 has resolved all ten, so the probes had them.
resolved_bogus() {
    [ "$(netns_browse 3 2>/dev/null \
        | grep -c '^=;eth0;IPv4;parley-bogus-')" -ge 10 ]
}
wait_until 10 resolved_bogus || fail "the bogus services were not resolved on host 3"
sleep 1
for i in 1 2 3; do
    kill -0 "${PID[$i]}" 2>/dev/null || fail "probe $i died on garbage"
    bad=$(grep '^SEEN ' "$NETNS_DIR/p$i.log" | grep -v -e "${ID[1]}" -e "${ID[2]}" -e "${ID[3]}")
    [ -z "$bad" ] || fail "probe $i reported garbage: $bad"
    ! grep -q "^SEEN ${ID[$i]} " "$NETNS_DIR/p$i.log" || fail "probe $i reported itself"
    n=$(grep -c 'malformed TXT record' "$NETNS_DIR/p$i.log")
    [ "$n" = 1 ] || fail "probe $i logged $n malformed-record lines, want 1"
done
for i in 2 3; do
    has_at_least "$i" 1 "SEEN ${ID[1]} tcp://$(netns_addr 2):7999 mdns" \
        || fail "probe $i ignored a valid record (the impostor of probe 1)"
done
echo "garbage: ignored, no crash"
for pid in "${NETNS_BG_PIDS[@]}"; do
    case " ${PID[*]} " in *" $pid "*) ;; *) netns_kill_wait "$pid" ;; esac
done

# 3. Avahi stops on host 1.
netns_avahi_stop 1
wait_until 5 grep -q '^STATUS mdns down ' "$NETNS_DIR/p1.log" \
    || fail "probe 1 did not report STATUS mdns down"
for i in 2 3; do
    wait_until 5 has_at_least "$i" 1 "GONE ${ID[1]} mdns" || fail "probe $i: no GONE for host 1"
done
echo "avahi stopped: probe 1 down, the others saw it go"

# 4. ... and comes back.
back() { # back N: probe 1 is up for the Nth time and all see each other N times
    local i
    wait_until 10 has_lines 1 "$1" '^STATUS mdns up ' \
        || fail "probe 1 did not report STATUS mdns up again"
    for i in 2 3; do
        wait_until 10 has_at_least "$i" "$1" "$(seen "$i" 1)" \
            || fail "probe $i did not see host 1 again"
    done
    wait_until 10 sees_all 1 "$1" || fail "probe 1 did not see the others again"
}
netns_avahi_start 1
back 2
has_lines 1 1 '^STATUS mdns down ' && ! has_lines 1 2 '^STATUS mdns down ' \
    || fail "probe 1: STATUS down repeated"
echo "avahi restarted: probe 1 up and republished"

# 5. D-Bus goes too, so no client can even be made; the retries (every 2 s)
#    stay quiet; then the bus and the daemon come back.
netns_avahi_stop 1
netns_dbus_stop 1
wait_until 5 has_lines 1 2 '^STATUS mdns down ' || fail "probe 1: no STATUS down without D-Bus"
sleep 3
! has_lines 1 3 '^STATUS mdns down ' || fail "probe 1: STATUS down repeated without D-Bus"
kill -0 "${PID[1]}" 2>/dev/null || fail "probe 1 died without D-Bus"
netns_dbus_start 1
netns_avahi_start 1
back 3
echo "D-Bus and avahi restarted: probe 1 up and republished"

# 6. Host 3 starts a second probe with host 2's id: its instance name is
#    taken, it says so once and does not rename or retry in a loop.
netns_bg 3 "$NETNS_DIR/p4.log" "$PROBE" "${ID[2]}" 7004 120
PID[4]=$NETNS_LAST_PID
wait_until 10 has_lines 4 1 '^STATUS mdns down instance name .* is taken on the network' \
    || fail "the duplicate did not report its collision"
sleep 2
[ "$(grep -c '^STATUS ' "$NETNS_DIR/p4.log")" = 2 ] || fail "the duplicate's status flapped"
! grep -q "^SEEN ${ID[2]} tcp://$(netns_addr 3):7004 " "$NETNS_DIR/p1.log" \
    || fail "the duplicate was published"
echo "name collision: reported once, not published"

# 7. Blinded records. The secrets: two fixed, distinct 32-byte values.
S1=$(printf '5%.0s' $(seq 64))
S2=$(printf 'a%.0s' $(seq 64))
echo "$S1" >"$NETNS_DIR/k5"
echo "$S1" >"$NETNS_DIR/k6"
echo "$S2" >"$NETNS_DIR/k7"
for i in 5 6 7; do
    h=$((i - 4))
    PORT[$i]=$((7000 + i))
    netns_bg "$h" "$NETNS_DIR/p$i.log" "$PROBE" new "${PORT[$i]}" 120 secret-net "$NETNS_DIR/k$i"
    PID[$i]=$NETNS_LAST_PID
done
for i in 5 6 7; do
    wait_until 5 grep -qs '^ID ' "$NETNS_DIR/p$i.log" || fail "blinded probe $i did not start"
    ID[$i]=$(sed -n 's/^ID //p' "$NETNS_DIR/p$i.log")
done
bseen() { # bseen I J: the line probe I prints when it sees blinded probe J
    echo "SEEN ${ID[$2]} tcp://$(netns_addr $(($2 - 4))):${PORT[$2]} mdns"
}
wait_until 10 has_at_least 5 1 "$(bseen 5 6)" || fail "probe 5 did not see probe 6 (same secret)"
wait_until 10 has_at_least 6 1 "$(bseen 6 5)" || fail "probe 6 did not see probe 5 (same secret)"
# What every host's Avahi resolves, as an outsider on the LAN sees it.
captured() { # captured: every resolved _parley._tcp record on every host
    local h
    for h in 1 2 3; do
        netns_browse "$h" 2>/dev/null
    done
}
wait_until 10 eval '[ "$(captured | grep -c "^=.*\"b=")" -ge 9 ]' \
    || fail "the blinded records were not resolved on every host"
sleep 1
CAPTURE=$(captured)
for i in 5 6 7; do
    for j in 1 2 3; do
        ! grep -q "^SEEN ${ID[$j]} " "$NETNS_DIR/p$i.log" \
            || fail "blinded probe $i reported open probe $j"
    done
    for j in 1 2 3 7; do
        [ "$j" = 7 ] && [ "$i" = 7 ] && continue
        ! grep -q "^SEEN ${ID[$i]} " "$NETNS_DIR/p$j.log" \
            || fail "probe $j reported blinded probe $i"
    done
    for needle in "${ID[$i]}" "${ID[$i]:0:8}" secret-net; do
        ! grep -qiF -- "$needle" <<<"$CAPTURE" || fail "the mDNS records name probe $i ($needle)"
    done
    kill -0 "${PID[$i]}" 2>/dev/null || fail "blinded probe $i died"
done
! grep -q "^SEEN " "$NETNS_DIR/p7.log" || fail "probe 7 (another secret) saw someone"
grep -q 'ignoring blinded records no key of ours opens' "$NETNS_DIR/p1.log" \
    || fail "open probe 1 did not count the blinded records"
grep -q 'ignoring open records' "$NETNS_DIR/p5.log" \
    || fail "blinded probe 5 did not count the open records"
name7() { sed -n 's/^NAME mdns //p' "$NETNS_DIR/p7.log"; }
for i in 1 2 3; do
    [ "$(sed -n 's/^NAME mdns //p' "$NETNS_DIR/p$i.log")" = "parley-${ID[$i]:0:16}" ] \
        || fail "open probe $i: no NAME report of its id-derived name"
done
[ "$(name7 | wc -l)" = 1 ] && [[ "$(name7)" =~ ^parley-[a-z2-7]{16}$ ]] \
    && [[ "$CAPTURE" == *"$(name7)"* ]] \
    || fail "probe 7: no random NAME, or not the one published ($(name7))"
echo "blinded: members see each other; outsiders and other networks see nothing"

# Probe 7 joins the network at run time: a new name, and everyone meets.
echo "$S1" >"$NETNS_DIR/k7"
kill -HUP "${PID[7]}"
wait_until 5 grep -qx 'KEYS 1' "$NETNS_DIR/p7.log" || fail "probe 7 did not take the new secret"
for pair in "5 7" "6 7" "7 5" "7 6"; do
    set -- $pair
    wait_until 10 has_at_least "$1" 1 "$(bseen "$1" "$2")" \
        || fail "probe $1 did not see probe $2 after the key change"
done
[ "$(name7 | sort -u | wc -l)" = 2 ] || fail "probe 7 kept its instance name: $(name7 | tr '\n' ' ')"
echo "key change: probe 7 republished as $(name7 | tail -n 1) and sees the network"

# Probe 6 leaves (no keys): open again, seen by the open probes.
: >"$NETNS_DIR/k6"
kill -HUP "${PID[6]}"
wait_until 5 grep -qx 'KEYS 0' "$NETNS_DIR/p6.log" || fail "probe 6 did not drop its keys"
wait_until 10 has_at_least 1 1 "SEEN ${ID[6]} tcp://$(netns_addr 2):${PORT[6]} mdns" \
    || fail "open probe 1 did not see probe 6 in open mode"
echo "back to open mode: probe 6 announced in the open"

# Probe 6 joins another network (HUSH: no secret yet): its record goes, it
# reports no one, and nothing of it is published until it has keys.
echo hush >"$NETNS_DIR/k6"
mark6=$(wc -l <"$NETNS_DIR/p6.log")
kill -HUP "${PID[6]}"
wait_until 5 grep -qx 'HUSH' "$NETNS_DIR/p6.log" || fail "probe 6 did not hush"
wait_until 10 has_at_least 1 1 "GONE ${ID[6]} mdns" \
    || fail "open probe 1 did not see probe 6's record withdrawn"
sleep 3
hushed_pub=$(netns_browse 2 2>/dev/null \
    | grep -c "^=;[^;]*;IPv4;[^;]*;[^;]*;[^;]*;[^;]*;$(netns_addr 2);${PORT[6]};" || true)
[ "$hushed_pub" = 0 ] || fail "probe 6's host still resolves a record of it while hushed"
! tail -n +"$((mark6 + 1))" "$NETNS_DIR/p6.log" | grep -q '^SEEN ' \
    || fail "probe 6 reported a peer while hushed"
echo "hush: probe 6 withdrew its record and reported no one"

# 8. Clean exits.
for i in 1 2 3 4 5 6 7; do
    kill -TERM "${PID[$i]}"
    wait "${PID[$i]}"
    rc=$?
    [ $rc = 0 ] || fail "probe $i exited with $rc"
done
NETNS_BG_PIDS=()
echo ok

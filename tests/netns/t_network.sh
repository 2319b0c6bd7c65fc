#!/bin/bash
# tests/netns/t_network.sh — a private network (issue 10, proto/SPEC.md
# §17–19) across simulated hosts with real Avahi, and the capture that
# proves blinding.
#
# Six hosts on one bridge (tests/netns/lib.sh), each with its own Avahi;
# nodes have no seeds and no host-local discovery. 1 = F, the founder;
# 2 = R, a relay (--relay, designated by F); 3, 4, 5 = staff S1, S2, S3;
# 6 = X, a stranger in open mode. Checks, in order:
#   1. F creates the network; R joins with an invite and F designates it
#      a relay; S1 and S2 join with invites.
#   2. F makes S3's invite while connected to R (so the code lists R), F
#      stops, S3 joins through R.
#   3. All five restart at once with their saved peers cleared, and mesh by
#      blinded mDNS alone (first contacts from mdns, then pex and inbound).
#   4. X (fresh key, open mode, a seed for every member) is refused by every
#      member (zap_denied/not_member rise), never gets a member online, and
#      what it sends a member never becomes relayed or delivered; R's
#      database holds nothing of X's.
#   5. Every frame on the bridge during 1–4 was recorded by a raw-socket
#      sniffer in the bridge namespace (tests/netns/capture.py): no node id,
#      short id, raw or X25519 key (or hex), member name, network name or
#      network id of the network is in it; the sniffer saw mDNS and the
#      CURVE handshakes (ZMTP greetings, HELLO, INITIATE), and finds X's id
#      in X's own open mDNS record (the search works).
#   6. F removes S2: every member drops S2 within seconds (and S2 sees no
#      one online), the secret rotates everywhere; S2 restarted with a seed
#      for each member is refused at ZAP by all; S2 restarted with no saved
#      peers has the members' new blinded records resolved on its host and
#      opens none.
# Figures: join → member → connected to all, per joiner; removal → S2
# dropped everywhere; packets and bytes captured.
#
# Why joiners start with --no-mdns: a node outside a network is in open mode
# and announces its id in clear, by design, until it is told to join (from
# then on its discovery is silent until a member hands it the network
# secret: HUSH, tests/netns/t_mdns.sh). The capture is about members, so a
# joiner runs mDNS only once it is a member with a secret (read from its
# database).
# Root only; everything runs in namespaces it creates, removed on exit.
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/netns/lib.sh
FAIL_TAIL=12
CAPTURE=tests/netns/capture.py

. tests/netns/netlib.sh

clear_peers() { # clear_peers I: deletes the peers stopped node I saved
    python3 - "$(home "$1")/parley.db" <<'EOF' || fail "cannot clear host $1's saved peers"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("DELETE FROM peers")
c.commit()
EOF
}
refusals() { echo $(($(counter "$1" zap_denied) + $(counter "$1" not_member))); }
# connected_to I J...: I sees each J online.
connected_to() {
    local i=$1 j
    shift
    for j in "$@"; do
        [ "$j" = "$i" ] && continue
        online "$i" "${ID[$j]}" || return 1
    done
}

NAMES=([1]=Fennimore [2]=Relayhouse [3]=Saskia [4]=Sigismund [5]=Svetlana)
NETNAME=Quarrybank-Clinic
declare -a ID
MEMBERS=(1)
FIG=()
fig() { FIG+=("$(printf '%s' "$@")"); } # fig TEXT...: one figure, joined

netns_setup 6
PCAP=$NETNS_DIR/bridge.pcap
FAIL_LOGS=("$NETNS_DIR/capture.log")
# The sniffer lives in the bridge namespace; ip netns exec execs it, so $!
# is its PID, stopped by teardown like any netns_bg command.
ip netns exec "$NETNS_BRIDGE_NS" python3 "$CAPTURE" sniff "$PCAP" >"$NETNS_DIR/capture.log" 2>&1 &
SNIFF_PID=$!
NETNS_BG_PIDS+=("$SNIFF_PID")
wait_until 5 grep -qx ready "$NETNS_DIR/capture.log" || fail "the sniffer did not start"

for i in 1 2 3 4 5 6; do
    ID[$i]=$(node_init "$i") || fail "init of host $i"
done

# 1. The founder creates the network with mDNS off (open mode until then),
#    then runs with it: blinded from its first record.
node_start 1 --no-mdns
rpc 1 network.create "{\"name\":\"$NETNAME\",\"my_name\":\"${NAMES[1]}\"}" >/dev/null \
    || fail "network.create"
NETID=$(rpc 1 network.show | jq -r .id)
[ ${#NETID} = 52 ] || fail "network.show: no id"
wait_until 10 has_secret 1 || fail "the founder made no network secret"
node_stop 1 || fail "F did not stop cleanly"
node_start 1

invite() { # invite: a one-use invite from F; prints the invite.create result
    rpc 1 invite.create '{"uses":1,"expires_ms":600000}'
}

# join_member I CODE [parleyd args]: I joins with CODE (mDNS off), becomes a
# member holding a secret, restarts with mDNS, connects to every member
# online. Records the figures.
join_member() {
    local i=$1 code=$2 t0 t_member t_secret t_all
    shift 2
    node_start "$i" --no-mdns "$@"
    t0=$(now)
    rpc "$i" join "{\"code\":\"$code\",\"name\":\"${NAMES[$i]}\"}" >/dev/null || fail "join of $i"
    wait_until 30 is_member "$i" \
        || fail "host $i is not a member 30 s after join: $(rpc "$i" network.show)"
    t_member=$(since "$t0")
    wait_until 20 has_secret "$i" || fail "host $i holds no network secret 20 s after joining"
    t_secret=$(since "$t0")
    node_stop "$i" || fail "host $i did not stop cleanly"
    node_start "$i" "$@"
    MEMBERS+=("$i")
    wait_until 30 connected_to "$i" "${ONLINE[@]}" \
        || fail "host $i not connected to all of ${ONLINE[*]}: $(p "$i" peers --json | jq -c \
            'map({short_id, online, source})')"
    t_all=$(since "$t0")
    fig "join of ${NAMES[$i]} (host $i): member after $t_member s, secret after $t_secret s," \
        " connected to all ${#ONLINE[@]} other online members after $t_all s (with a restart" \
        " to turn mDNS on)"
    ONLINE+=("$i")
}

ONLINE=(1)
out=$(invite) || fail "invite for R"
join_member 2 "$(jq -r .code <<<"$out")" --relay
rpc 1 relay.set "{\"peer\":\"${ID[2]}\",\"on\":true}" >/dev/null || fail "relay.set"
rpc 1 network.show | jqe --arg r "${ID[2]}" '.relays | index($r) != null' >/dev/null \
    || fail "R is not a relay: $(rpc 1 network.show | jq -c .relays)"

# 2a. S3's invite, made while F is connected to R: its code lists R.
wait_until 30 online 1 "${ID[2]}" || fail "F does not see R"
R_EP="tcp://$(netns_addr 2):7400"
has_r() { S3_INV=$(invite) && jqe --arg e "$R_EP" '.endpoints | index($e) != null' <<<"$S3_INV"; }
wait_until 15 has_r || fail "F's invite does not list R: $S3_INV"
S3_CODE=$(jq -r .code <<<"$S3_INV")
S3_INV_ID=$(jq -r .invite_id <<<"$S3_INV")
r_has_invite() {
    rpc 2 invite.list | jqe --arg v "$S3_INV_ID" 'map(.invite_id) | index($v) != null'
}
wait_until 15 r_has_invite || fail "R never got S3's invite: $(rpc 2 invite.list)"

# 1b. S1 and S2.
out=$(invite) || fail "invite for S1"
join_member 3 "$(jq -r .code <<<"$out")"
out=$(invite) || fail "invite for S2"
join_member 4 "$(jq -r .code <<<"$out")"

# 2b. F stops; S3 joins through R (the code's other endpoint).
node_stop 1 || fail "F did not stop cleanly"
ONLINE=(2 3 4)
jq -r '.endpoints[]' <<<"$S3_INV" | grep -qvx -e "tcp://$(netns_addr 1):7400" -e "$R_EP" \
    && echo "note: S3's code lists more than F and R: $(jq -c .endpoints <<<"$S3_INV")"
join_member 5 "$S3_CODE"
grep -q "joined network .* through $R_EP" "$(node_log 5)" \
    || fail "S3 did not join through R: $(grep 'joined network' "$(node_log 5)")"
# 3. The mesh, by blinded mDNS alone: every member stops, forgets the peers
#    it saved (the test deletes the rows), and all start at once. Nothing
#    else tells them where the others are (no seeds, no host-local, no saved
#    peers), so the first contacts can only come from mDNS records that only
#    members can open (pex and inbound follow).
for i in 2 3 4 5; do
    node_stop "$i" || fail "host $i did not stop cleanly"
done
for i in 1 2 3 4 5; do clear_peers "$i"; done
t0=$(now)
node_spawn 1
node_spawn 2 --relay
for i in 3 4 5; do node_spawn "$i"; done
for i in 1 2 3 4 5; do node_wait_up "$i"; done
ONLINE=(1 2 3 4 5)
mesh() { meshed 4 1 2 3 4 5; }
wait_until 30 mesh || fail "the members do not mesh: $(online_counts 1 2 3 4 5)"
t_mesh=$(since "$t0")
for i in 1 2 3 4 5; do
    connected_to "$i" 1 2 3 4 5 || fail "host $i is not connected to every member"
    rpc "$i" network.show | jqe '.members | length == 5' >/dev/null \
        || fail "host $i's roster: $(rpc "$i" network.show | jq -c '.members | map(.name)')"
done
for i in 1 2 3 4 5; do p "$i" peers --json; done | jq -s 'add | map(.source)' >"$NETNS_DIR/src"
jqe 'index("mdns") != null and all(.[]; . == "mdns" or . == "pex" or . == "inbound")' \
    "$NETNS_DIR/src" >/dev/null || fail "sources: $(jq -c . "$NETNS_DIR/src")"
fig "mesh of 5 members from blinded mDNS alone (all restarted, saved peers cleared):" \
    " $t_mesh s; sources: $(jq -c 'group_by(.) | map({(.[0]): length}) | add' "$NETNS_DIR/src")"

# 4. The stranger: open mode, a fresh key, a seed for every member.
declare -a REF0
for i in 1 2 3 4 5; do REF0[$i]=$(refusals "$i"); done
seeds=()
for i in 1 2 3 4 5; do seeds+=(--seed "tcp://$(netns_addr "$i"):7400#${ID[$i]}"); done
node_start 6 "${seeds[@]}"
refused_by_all() {
    local i
    for i in 1 2 3 4 5; do
        [ "$(refusals "$i")" -gt "${REF0[$i]}" ] || return 1
    done
}
wait_until 20 refused_by_all || fail "not every member refused X: $(for i in 1 2 3 4 5; do
    printf '%s:%s->%s ' "$i" "${REF0[$i]}" "$(refusals "$i")"; done)"
p 6 send "${ID[1]}" "let me in" --json >"$NETNS_DIR/xsend" 2>&1
p 6 send "${ID[2]}" "hold this for me" --json >>"$NETNS_DIR/xsend" 2>&1
sleep 5
[ "$(online_count 6)" = 0 ] || fail "X has a peer online: $(p 6 peers --json | jq -c .)"
for i in 1 2 3 4 5; do
    ! online "$i" "${ID[6]}" || fail "member $i sees X online"
done
for i in 1 2; do
    st=$(p 6 history "${ID[$i]}" --json | jq -r 'map(.state) | join(",")')
    case ",$st," in
    *,relayed,* | *,delivered,* | *,read,*) fail "X's message to host $i became $st" ;;
    esac
done
# R holds nothing of X's: no envelope by it, and its key in no byte of R's
# database files (the log and the write-ahead log).
XRAW=$(raw_hex "${ID[6]}")
[ "$(db_count 2 "SELECT count(*) FROM envelopes WHERE author = x'$XRAW'")" = 0 ] \
    || fail "R stores envelopes of X"
python3 - "$XRAW" "$(home 2)"/parley.db* <<'EOF' || fail "X's key is in R's database files"
import sys
key = bytes.fromhex(sys.argv[1])
sys.exit(any(key in open(f, "rb").read() for f in sys.argv[2:]))
EOF
fig "stranger X: refused by all 5 members (zap_denied + not_member:$(for i in 1 2 3 4 5; do
    printf ' %s->%s' "${REF0[$i]}" "$(refusals "$i")"; done)), messages stay ${st:-none}"

# 5. The capture: stop the sniffer, search it.
pid_stop "$SNIFF_PID" 5
NETNS_BG_PIDS=("${NETNS_BG_PIDS[@]/$SNIFF_PID/}")
grep -q '^stopped ' "$NETNS_DIR/capture.log" || fail "the sniffer did not stop cleanly"
names=$(printf '"%s",' "${NAMES[@]}" "$NETNAME")
nodes=$(for i in 1 2 3 4 5; do printf '"%s":"%s",' "${NAMES[$i]}" "${ID[$i]}"; done)
echo "{\"nodes\":{${nodes%,},\"X\":\"${ID[6]}\"},\"networks\":{\"network\":\"$NETID\"},
    \"names\":[${names%,}]}" >"$NETNS_DIR/spec.json"
python3 "$CAPTURE" needles "$NETNS_DIR/spec.json" >"$NETNS_DIR/needles.json" || fail "needles"
python3 "$CAPTURE" check "$PCAP" "$NETNS_DIR/needles.json" >"$NETNS_DIR/found.json" \
    || fail "capture check"
R=$NETNS_DIR/found.json
jq -c 'del(.found)' "$R"
# The sniffer really saw the traffic: mDNS, and CURVE handshakes on TCP.
jqe '.mdns_packets >= 20 and .tcp_payload_bytes >= 10000 and .zmtp_greetings >= 8
    and .curve_hello >= 4 and .curve_initiate >= 4' "$R" >/dev/null \
    || fail "the capture is too thin to prove anything: $(jq -c 'del(.found)' "$R")"
for i in 1 2 3 4 5; do
    jqe --arg a "$(netns_addr "$i")" '.mdns_by_src[$a][1] >= 1' "$R" >/dev/null \
        || fail "no blinded record of host $i captured: $(jq -c .mdns_by_src "$R")"
done
jqe '.zmtp_other_mechanism == 0' "$R" >/dev/null || fail "a ZMTP greeting without CURVE"
# The control: X is in open mode, its id is in its own mDNS records.
jqe --arg a "mdns from $(netns_addr 6) " '.found["X id"] | any(startswith($a))' "$R" >/dev/null \
    || fail "X's id not found in X's mDNS records: the search proves nothing"
jqe '.found["X short id"] | length > 0' "$R" >/dev/null || fail "X's short id not found"
# Nothing of the members or the network.
leaks=$(jq -c '.found | to_entries | map(select((.key | startswith("X ")) | not)
    | select(.value | length > 0)) | map({(.key): .value[:3]}) | add // {}' "$R")
n_needles=$(jq -c '[.found | keys[] | select(startswith("X ") | not)] | length' "$R")
[ "$leaks" = "{}" ] || fail "identifying bytes in the capture: $leaks"
fig "capture of steps 1-4: $(jq -r '"\(.packets) packets, \(.bytes) bytes (\(.mdns_packets)
    mDNS packets, \(.tcp_streams) TCP streams, \(.tcp_payload_bytes) TCP payload bytes,
    \(.zmtp_greetings) ZMTP greetings all CURVE)"' "$R" | tr -s ' \n' ' ' | sed 's/ $//'), 0 identifying" \
    " ($n_needles values searched; X's open id found in its mDNS records as the control;" \
    " $(sed -n 's/^stopped //p' "$NETNS_DIR/capture.log"))"

# 6. Removal of S2.
node_stop 6
OTHERS=(1 2 3 5)
epoch0=$(rpc 1 network.show | jq -r .epoch)
declare -a ZAP0
for i in "${OTHERS[@]}"; do ZAP0[$i]=$(counter "$i" zap_denied); done
t0=$(now)
rpc 1 member.remove "{\"peer\":\"${ID[4]}\",\"reason\":\"left the clinic\"}" >/dev/null \
    || fail "member.remove"
dropped() {
    local i
    for i in "${OTHERS[@]}"; do
        ! online "$i" "${ID[4]}" || return 1
        rpc "$i" network.show | jqe --arg s "${ID[4]}" '.members | map(.id) | index($s) == null' \
            >/dev/null || return 1
    done
    [ "$(online_count 4)" = 0 ]
}
wait_until 15 dropped || fail "S2 not dropped everywhere: $(for i in "${OTHERS[@]}"; do
    printf '%s:%s ' "$i" "$(online "$i" "${ID[4]}" && echo online || echo offline)"; done) S2 sees
    $(online_count 4)"
t_drop=$(since "$t0")
# S2 was told why before its links went: it knows it is out (open mode).
s2_out() { [ "$(rpc 4 network.show | jq -r .mode)" = open ]; }
wait_until 10 s2_out || fail "S2 does not know it was removed: $(rpc 4 network.show | jq -c \
    '{mode, role}')"
rotated() {
    local i
    for i in "${OTHERS[@]}"; do
        rpc "$i" network.show | jqe --argjson e "$epoch0" '.epoch > $e' >/dev/null || return 1
    done
}
wait_until 15 rotated || fail "the network secret did not rotate everywhere: $(for i in \
    "${OTHERS[@]}"; do printf '%s:%s ' "$i" "$(rpc "$i" network.show | jq .epoch)"; done)"
t_rot=$(since "$t0")
# S2's reconnects: whether it keeps dialling after the members' BYE is its
# own affair, so it is restarted with a seed for every member (its saved
# peers alone may not reach them, see below): each must refuse it at ZAP.
natural=""
for i in "${OTHERS[@]}"; do
    [ "$(counter "$i" zap_denied)" -gt "${ZAP0[$i]}" ] && natural="$natural $i"
done
for i in "${OTHERS[@]}"; do ZAP0[$i]=$(counter "$i" zap_denied); done
node_stop 4 || fail "S2 did not stop cleanly"
# A peer first met on its own inbound connection is saved at the address its
# HELLO advertises; a node listening on a wildcard advertises
# tcp://0.0.0.0:PORT, which the receiver replaces by the address the
# connection came from: S2 must have saved every member at a dialable one.
WILD=()
for i in "${OTHERS[@]}"; do
    ep=$(python3 - "$(home 4)/parley.db" "$(raw_hex "${ID[$i]}")" <<'EOF'
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
r = c.execute("SELECT endpoint FROM peers WHERE pk = ?", (bytes.fromhex(sys.argv[2]),)).fetchone()
print(r[0] if r else "")
EOF
    )
    case $ep in
    tcp://0.0.0.0:* | "") WILD+=("$i:${ep:-unsaved}") ;;
    esac
done
[ ${#WILD[@]} = 0 ] || fail "S2 saved members at undialable addresses: ${WILD[*]}"
zap_rose() {
    local i
    for i in "${OTHERS[@]}"; do
        [ "$(counter "$i" zap_denied)" -gt "${ZAP0[$i]}" ] || return 1
    done
}
seeds=()
for i in "${OTHERS[@]}"; do seeds+=(--seed "tcp://$(netns_addr "$i"):7400#${ID[$i]}"); done
node_start 4 "${seeds[@]}"
wait_until 15 zap_rose || fail "S2's reconnects not refused at ZAP by every member: $(for i in \
    "${OTHERS[@]}"; do printf '%s:%s->%s ' "$i" "${ZAP0[$i]}" "$(counter "$i" zap_denied)"; done)"
[ "$(online_count 4)" = 0 ] || fail "S2 has a peer online after the removal"
meshed 3 "${OTHERS[@]}" || fail "the others lost each other: $(online_counts "${OTHERS[@]}")"
fig "removal of S2: dropped by all 4 others and S2 after $t_drop s, new secret everywhere" \
    " after $t_rot s; S2 restarted with a seed for each: refused at ZAP by all 4 (before the" \
    " restart, refused by:${natural:- none})"
# S2, restarted with its saved peers cleared, browses the members' new
# records: a member it could open would be in its peers with source mdns.
node_stop 4
clear_peers 4
log4=$(node_log 4)
from=$(($(wc -l <"$log4") + 1))
node_start 4
# What S2's host resolves: the members' records, blinded (b=), all there.
blinded_on_4() {
    [ "$(netns_browse 4 2>/dev/null | grep -c '^=.*"b=')" -ge 4 ]
}
wait_until 15 blinded_on_4 || fail "S2's host does not resolve the members' records:
    $(netns_browse 4 2>&1)"
sleep 3
p 4 peers --json | jqe --arg a "${ID[1]}" --arg b "${ID[2]}" --arg c "${ID[3]}" \
    --arg d "${ID[5]}" 'map(select(.id == $a or .id == $b or .id == $c or .id == $d)) |
    length == 0' >/dev/null || fail "S2 found members after the removal: $(p 4 peers --json \
        | jq -c 'map({short_id, source, online})')"
meshed 3 "${OTHERS[@]}" || fail "the others lost each other: $(online_counts "${OTHERS[@]}")"
own4=$(netns_browse 4 2>/dev/null \
    | grep "^=;eth0;IPv4;.*;$(netns_addr 4);7400;" | grep -c '"b=')
fig "S2 after the removal, restarted: its network.show says mode" \
    " $(rpc 4 network.show | jq -r '"\(.mode), role \(.role // "-"), epoch \(.epoch // "-")"')," \
    " it announces $own4 blinded record(s); its host resolves" \
    " $(netns_browse 4 2>/dev/null | grep -c '^=.*"b=') blinded" \
    " records, S2 opens none (no member in its peers)"

for f in "${FIG[@]}"; do echo "$f"; done
echo "ok"

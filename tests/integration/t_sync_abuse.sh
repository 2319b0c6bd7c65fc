#!/bin/bash
# Replication abuse by a peer that passes CURVE and HELLO (tests/hostile_peer.c)
# against node a of an honest pair a–b:
#   noconverge  answers every RECONCILE with a fingerprint that never matches
#   bigranges   RECONCILE and WANT at their limits, one past each, malformed,
#               and a frame over the transport's size limit
#   wantflood   WANT frames of 4096 prefixes far past the outstanding budget
#   envflood    validly signed envelopes of foreign scopes, and forged ones
# After each: a is alive; its counters say what happened (a ban where one is
# due, every malformed frame in bad_frame and none in a ban); a banned peer
# gets BYE, no answer on its old connection and no new handshake (ZAP), still
# so seconds later; and a and b exchange DMs with delivery receipts both ways.
#
# SYNC_ABUSE_HINTS=1 adds a burst of RECONCILE blocks hinting fresh authors
# (each costs node a one key exchange) and expects a–b to work through it.
. "$(dirname "$0")/lib.sh"

pair a b
EP=$(endpoint a)

ROUND=0
# dm_both_ways WHEN: a DM each way, each delivered (a receipt came back).
dm_both_ways() {
    ROUND=$((ROUND + 1))
    p a send "$B_ID" "from a, $ROUND, $1" >/dev/null || fail "a could not send $1"
    p b send "$A_ID" "from b, $ROUND, $1" >/dev/null || fail "b could not send $1"
    EXPECT=$ROUND wait_until 15 count_is a "$B_ID" delivered || fail "a's DM not delivered $1"
    EXPECT=$ROUND wait_until 15 count_is b "$A_ID" delivered || fail "b's DM not delivered $1"
    EXPECT=$ROUND wait_until 5 count_is b "$A_ID" received || fail "b lacks a's DM $1"
    EXPECT=$ROUND wait_until 5 count_is a "$B_ID" received || fail "a lacks b's DM $1"
}

status() { p a status --json >"$TMP/st.json" || fail "no status $1"; }
counter() { jq -r ".rejected.$1" "$TMP/st.json"; }
snapshot() { # remembers a's counters before a mode
    status "before $1"
    for c in banned bad_frame zap_denied not_ours bad_signature; do
        declare -g "B_$c=$(counter $c)"
    done
    B_wants_sent=$(jq .sync.wants_sent "$TMP/st.json")
}
delta() { local v="B_$1"; echo $(($(counter "$1") - ${!v})); }
val() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/$MODE.out"; }
new_seed() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# hostile MODE [SEED]: runs it against a; a must live through it.
hostile() {
    MODE=$1
    snapshot "$MODE"
    "$BIN/hostile_peer" "$EP" "$A_ID" "$@" >"$TMP/$MODE.out" 2>"$TMP/$MODE.err" \
        || fail "hostile_peer $MODE: $(cat "$TMP/$MODE.err")"
    H_ID=$(head -n 1 "$TMP/$MODE.out")
    [ ${#H_ID} = 52 ] || fail "hostile_peer $MODE printed no id"
    kill -0 "${PIDS[a]}" || fail "a died during $MODE"
    status "after $MODE"
    echo "$MODE: $(tail -n +2 "$TMP/$MODE.out" | tr '\n' ' ')"
    echo "$MODE: a counts $(jq -c '.rejected | with_entries(select(.value > 0))' "$TMP/st.json")"
}

# expect_ban REASON: one ban, with the reason (an extended regex) logged,
# seen from both ends.
expect_ban() {
    [ "$(delta banned)" = 1 ] || fail "$MODE: banned went up by $(delta banned), not 1"
    grep -Eq "disconnecting ${H_ID:0:8} for 60 s: ($1)" "$(node_log a)" \
        || fail "$MODE: no ban logged ($1)"
    [ "$(val bye)" = 1 ] || fail "$MODE: the peer got no BYE"
    [ "$(val pong)" = 0 ] || fail "$MODE: a answered a banned peer's PING"
    [ "$(val reconnect)" = refused ] || fail "$MODE: a banned key reconnected"
    [ "$(delta zap_denied)" -ge 1 ] || fail "$MODE: no ZAP denial counted"
    p a peers --json | jqe --arg id "$H_ID" '.[] | select(.id == $id) |
        (.online | not) and (.last_error | startswith("banned"))' >/dev/null \
        || fail "$MODE: peers does not show the ban"
}

dm_both_ways "before any abuse"

# A never-converging exchange ends in a ban after S_ROUND_MSGS_MAX (96) messages.
NC_SEED=$(new_seed)
hostile noconverge "$NC_SEED"
NC_BANNED_AT=$SECONDS
expect_ban "its reconciliation does not converge"
[ "$(val answered)" -ge 90 ] && [ "$(val answered)" -le 97 ] \
    || fail "noconverge: a answered $(val answered) messages of one exchange"
[ "$(val answered_after)" = 0 ] || fail "noconverge: a answered after the ban"
dm_both_ways "after noconverge"

# At the limits: answered; past them or malformed: bad_frame, one each, no ban.
hostile bigranges
for f in ranges blocks_foreign blocks_ours ids; do
    [ "$(val "answer_ms_$f")" -ge 0 ] || fail "bigranges: no answer to $f at the limit"
done
[ "$(val wrong_local)" = 0 ] || fail "bigranges: our own decoder disagrees on a frame"
[ "$(val malformed)" -ge 25 ] || fail "bigranges: only $(val malformed) malformed frames sent"
[ "$(delta bad_frame)" = "$(val malformed)" ] \
    || fail "bigranges: bad_frame went up by $(delta bad_frame) for $(val malformed) frames"
[ "$(delta banned)" = 0 ] || fail "bigranges: banned for frames within the limits"
[ "$(val pong)" = 1 ] || fail "bigranges: no PONG after the frames"
[ "$(val hello_after_oversize)" = 1 ] || fail "bigranges: no answer after an oversize frame"
# 64,512 ids it lacks, listed by the peer: a asks for at most S_WANTS_OUT_MAX.
wants=$(($(jq .sync.wants_sent "$TMP/st.json") - B_wants_sent))
[ $wants -ge 1 ] && [ $wants -le 16384 ] || fail "bigranges: a asked for $wants ids"
dm_both_ways "after bigranges"

# Far past S_WANTS_IN_MAX (65,536) outstanding prefixes: a ban. A node
# that looks the prefixes up as fast as they come never has that many
# outstanding; it bans for the misses instead (one strike per 64).
hostile wantflood
expect_ban "it floods WANT requests|it wants envelopes we never offered"
[ "$(val prefixes)" -gt 65536 ] || fail "wantflood: only $(val prefixes) prefixes sent"
dm_both_ways "after wantflood"

# Foreign-scope and forged envelopes: each weighs 1; S_BAD_MAX (512) bans.
hostile envflood
expect_ban "it sends"
bad=$(($(delta not_ours) + $(delta bad_signature)))
[ "$(delta not_ours)" -ge 1 ] && [ "$(delta bad_signature)" -ge 1 ] \
    || fail "envflood: not_ours +$(delta not_ours), bad_signature +$(delta bad_signature)"
[ $bad -ge 512 ] && [ $bad -le $((512 + 64)) ] \
    || fail "envflood: $bad bad envelopes counted (the ban is due at 512)"
dm_both_ways "after envflood"

# Opt-in: blocks hinting fresh authors cost node a one key exchange each and
# count against nothing; four keys sending two such messages at once.
if [ "${SYNC_ABUSE_HINTS:-0}" = 1 ]; then
    hp=()
    for i in 1 2 3 4; do
        "$BIN/hostile_peer" "$EP" "$A_ID" hintburst:2 >"$TMP/hint$i.out" 2>&1 &
        hp+=($!)
        PIDS[hint$i]=$!
    done
    wait "${hp[@]}"
    for i in 1 2 3 4; do unset "PIDS[hint$i]"; done
    echo "hintburst: $(tail -n +2 "$TMP/hint1.out" | tr '\n' ' ')"
    kill -0 "${PIDS[a]}" || fail "a died during hintburst"
    dm_both_ways "after hintburst"
fi

# The first ban still holds at least 10 s on (it lasts 60 s), and the probe
# tells a refused key from an admitted one.
wait_s=$((NC_BANNED_AT + 10 - SECONDS))
[ $wait_s -gt 0 ] && sleep $wait_s
MODE=redial-banned
"$BIN/hostile_peer" "$EP" "$A_ID" redial "$NC_SEED" >"$TMP/$MODE.out" || fail "redial"
[ "$(val reconnect)" = refused ] || fail "the noconverge key got in again: $(cat "$TMP/$MODE.out")"
MODE=redial-fresh
"$BIN/hostile_peer" "$EP" "$A_ID" redial "$(new_seed)" >"$TMP/$MODE.out" || fail "redial"
[ "$(val reconnect)" = accepted ] || fail "a fresh key was refused: $(cat "$TMP/$MODE.out")"
kill -0 "${PIDS[a]}" || fail "a died"
echo "ok"

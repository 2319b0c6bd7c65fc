#!/bin/bash
# Disk filling by a stranger (node/delivery.c): a peer that passes CURVE and
# HELLO sends, as fast as node a takes them, validly signed DMs in its own DM
# scope with a whose bodies cannot be opened (tests/hostile_peer.c
# diskflood: 32 KB each, a genuine header, a random key), then the same with
# a fresh ephemeral key in each header (diskflood-ek: each would open a
# receiving session), then each by a fresh author key in its scope with a
# (diskflood-fresh: no author's quota fills; the connection forwards them),
# then envelopes all at one seq (equivflood: evidence).
# Each from a fresh key. Meanwhile a and b exchange DMs. Then relay r gets
# the big ones in the stranger's scope with someone else (diskflood-relay).
# Afterwards:
#   - a's database (parley.db and its WAL) grew by less than GROWTH_MAX_KB
#     over all three floods (unbounded, the first one alone grew it by
#     hundreds of MB);
#   - each flooding peer was banned (banned +1, BYE, no PONG, ZAP refuses its
#     key);
#   - every DM between a and b arrived and was delivered;
#   - r keeps at most its per-author quota (64 MB) of envelopes, its files
#     grew by less than RELAY_GROWTH_MAX_KB, and it refused past the quota
#     and banned the author;
#   - with a stopped, sqlite3 counts on its file: envelopes, equivocation
#     evidence and receiving sessions per stranger stay under their caps.
# Sizes and rates are printed.
. "$(dirname "$0")/lib.sh"
FLOOD_S=${FLOOD_S:-15}
GROWTH_MAX_KB=$((24 * 1024))
UNDECRYPTABLE_MAX=16 # per author (DELIVERY_UNDEC_PER_AUTHOR)
EVIDENCE_MAX=16      # per author (STORE_EVIDENCE_PER_AUTHOR)
RECV_SESSIONS_MAX=8  # per peer (STORE_RECV_PER_PEER)
# A relay: 64 MB per author (DELIVERY_RELAY_AUTHOR_BYTES) of envelopes, and
# the file with its WAL (which a sanitizer build, checkpointing later, grows
# further) within twice that.
RELAY_QUOTA_KB=$((64 * 1024))
RELAY_GROWTH_MAX_KB=$((128 * 1024))

pair a b
EP=$(endpoint a)
DB=$(home a)/parley.db
db_kb() { du -k -c "$DB" "$DB-wal" 2>/dev/null | tail -n 1 | cut -f 1; }
T=a # the node flooded
status() { p $T status --json >"$TMP/st.json" || fail "no status $1"; }
counter() { jq -r ".rejected.$1" "$TMP/st.json"; }
val() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/$MODE.out"; }

SENT=0
# chat N: N DMs each way between a and b, while a flood runs.
chat() {
    local i
    for i in $(seq 1 "$1"); do
        SENT=$((SENT + 1))
        p a send "$B_ID" "from a $SENT" >/dev/null || fail "a could not send $SENT"
        p b send "$A_ID" "from b $SENT" >/dev/null || fail "b could not send $SENT"
        sleep 1
    done
}

db0=$(db_kb)
echo "before: db ${db0} kB"
STRANGERS=()
# flood MODE: hostile_peer MODE against a, with DMs a–b meanwhile; the
# stranger must end banned.
flood() {
    MODE=$1
    status "before $MODE"
    local b0 z0 hp
    b0=$(counter banned)
    z0=$(counter zap_denied)
    "$BIN/hostile_peer" "$(endpoint $T)" "$(nid $T)" "$MODE" >"$TMP/$MODE.out" 2>"$TMP/$MODE.err" &
    hp=$!
    PIDS[flood]=$hp
    chat 3
    wait $hp || fail "hostile_peer $MODE: $(cat "$TMP/$MODE.err")"
    unset "PIDS[flood]"
    kill -0 "${PIDS[$T]}" || fail "$T died during $MODE"
    status "after $MODE"
    [ $T = a ] && STRANGERS+=("$(head -n 1 "$TMP/$MODE.out")")
    echo "$MODE: $(tail -n +2 "$TMP/$MODE.out" | tr '\n' ' ')"
    echo "$MODE: $T counts $(jq -c '.rejected | with_entries(select(.value > 0))' "$TMP/st.json")"
    [ $T = a ] && echo "$MODE: db $(db_kb) kB (+$(($(db_kb) - db0)) kB since the start)"
    [ $(($(counter banned) - b0)) = 1 ] || fail "$MODE: banned went up by $(($(counter banned) - b0))"
    [ "$(val bye)" = 1 ] || fail "$MODE: the peer got no BYE"
    [ "$(val pong)" = 0 ] || fail "$MODE: a answered a banned peer's PING"
    [ "$(val reconnect)" = refused ] || fail "$MODE: a banned key reconnected"
    [ $(($(counter zap_denied) - z0)) -ge 1 ] || fail "$MODE: no ZAP denial counted"
    return 0
}

flood "diskflood:$FLOOD_S"
flood "diskflood-ek:5"
flood "diskflood-fresh:5"
flood "equivflood:5"

growth=$(($(db_kb) - db0))
echo "db growth over the floods: ${growth} kB (bound ${GROWTH_MAX_KB} kB)"
[ "$growth" -lt $GROWTH_MAX_KB ] || fail "a's database grew by $growth kB"

# A relay keeps envelopes it cannot read for anyone who signs: one author
# (the stranger, in its scope with a fresh key) fills its quota
# (DELIVERY_RELAY_AUTHOR_BYTES) and no more, and is banned.
node_start r --relay
RDB=$(home r)/parley.db
rdb_kb() { du -k -c "$RDB" "$RDB-wal" 2>/dev/null | tail -n 1 | cut -f 1; }
r0=$(rdb_kb)
T=r
flood "diskflood-relay:$((FLOOD_S * 2))"
rgrowth=$(($(rdb_kb) - r0))
echo "relay db growth: ${rgrowth} kB (bound ${RELAY_GROWTH_MAX_KB} kB);" \
    "relay_quota $(counter relay_quota)"
[ "$(counter relay_quota)" -ge 1 ] || fail "the relay never refused past the quota"
[ "$rgrowth" -lt $RELAY_GROWTH_MAX_KB ] || fail "the relay's database grew by $rgrowth kB"
node_stop r || fail "r did not stop cleanly"
kept=$(sqlite3 "$RDB" "SELECT CAST(max(t) / 1024 AS INTEGER) FROM
    (SELECT total(length(bytes)) AS t FROM envelopes GROUP BY author)")
echo "relay keeps at most ${kept} kB of one author's envelopes (quota ${RELAY_QUOTA_KB} kB)"
[ "$kept" -le $RELAY_QUOTA_KB ] || fail "the relay keeps $kept kB of one author's envelopes"
T=a

# Every honest DM arrived, both ways, and was delivered.
EXPECT=$SENT wait_until 30 count_is b "$A_ID" received || fail "b lacks some of a's DMs"
EXPECT=$SENT wait_until 30 count_is a "$B_ID" received || fail "a lacks some of b's DMs"
EXPECT=$SENT wait_until 30 count_is a "$B_ID" delivered || fail "a's DMs not all delivered"
EXPECT=$SENT wait_until 30 count_is b "$A_ID" delivered || fail "b's DMs not all delivered"

# The caps, counted in a's file once it stopped. Authors are the strangers
# (every author but a and b).
node_stop a || fail "a did not stop cleanly"
q() { sqlite3 "$DB" "$1"; }
# hex ID: a node id (base32 of the key) as the hex SQLite shows a blob in.
hex() { python3 -c 'import base64,sys; print(base64.b32decode(sys.argv[1].upper() + "====").hex().upper())' "$1"; }
per_author() { # per_author ID TABLE: ID's rows in TABLE
    q "SELECT count(*) FROM $2 WHERE hex(${3:-author}) = '$(hex "$1")'"
}
env_max=0
for s in "${STRANGERS[@]}"; do
    n=$(per_author "$s" envelopes)
    echo "stranger ${s:0:8}: $n envelopes, $(per_author "$s" equivocations) evidence," \
        "$(per_author "$s" recv_sessions peer) receiving sessions"
    [ "$n" -gt "$env_max" ] && env_max=$n
done
ev_max=$(q "SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM equivocations
            GROUP BY author)")
rs_max=$(q "SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM recv_sessions
            GROUP BY peer)")
rs_all=$(q "SELECT count(*) FROM recv_sessions")
pk_all=$(q "SELECT count(*) FROM peer_prekeys")
echo "evidence per author max $ev_max;" \
    "recv_sessions per peer max $rs_max (all $rs_all); peer_prekeys $pk_all"
[ "$env_max" -le $((UNDECRYPTABLE_MAX + 4)) ] || fail "a stranger keeps $env_max envelopes"
[ "$ev_max" -le $EVIDENCE_MAX ] || fail "a stranger left $ev_max pieces of evidence"
[ "$rs_max" -le $RECV_SESSIONS_MAX ] || fail "a stranger holds $rs_max receiving sessions"
echo "ok"

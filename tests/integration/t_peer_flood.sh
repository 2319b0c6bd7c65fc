#!/bin/bash
# Peer-table flooding (node/link.h states the bounds). Node a is flooded by
#   1. helloflood: 2,000 fresh keys, each a CURVE handshake and a HELLO;
#   2. gossipflood: one peer's PEERS frames carrying 2,000 validly signed
#      address records of fresh keys at an endpoint where nothing listens.
# While and after they run, a's resident memory and descriptors stay under
# RSS_MAX_MB and FDS_MAX; its table under LINK_TABLE_MAX links, of which at
# most LINK_UNVERIFIED_MAX unverified; none of the flood's keys is saved.
# Then a's peers table is filled as an older node's could be (20,000 rows,
# every endpoint dead), and a restarts under `ulimit -n 1024`: it starts,
# listens, and keeps its descriptors under the same cap while it redials.
# An honest node b then connects, and a DM goes a→b and b→a.
# Last, `parley peers forget` removes the flood's gossiping peer: gone from
# `parley peers`, and still gone after a restart; an unknown peer is an error.
. "$(dirname "$0")/lib.sh"
# LINK_TABLE_MAX and LINK_UNVERIFIED_MAX (node/link.h).
TABLE_MAX=1024
UNVERIFIED_MAX=256
# Descriptors: at most LINK_DEALER_MAX (128) DEALERs of 4 descriptors each
# (link.h: LINK_FDS_MAX 512) and about 30 fixed ones; what a flood leaves is
# only its LINK_DIAL_MAX (32) connecting dials, ~128 descriptors, and the
# flooders' open connections to a's ROUTER (hostile_peer keeps at most 200).
# Before the table was bounded, 1,100 gossiped records took a to 1,041.
FDS_MAX=${FDS_MAX:-600}
# Memory: a's growth over its resident size before the floods. 1,100 links
# used to cost 132 MB (their DEALERs); now at most 1,024 small links and 128
# DEALERs remain, plus libzmq's buffers for the flood's connections.
RSS_MAX_MB=${RSS_MAX_MB:-60}
# ASan's quarantine holds freed memory (256 MiB): no bound on that build.
[ "${BUILD:-build}" = build-san ] && RSS_MAX_MB=${RSS_MAX_MB_SAN:-1024}
command -v sqlite3 >/dev/null || fail "needs sqlite3"

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; } # kib FIELD PID
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }                     # fds PID

PEAK_RSS=0
PEAK_FDS=0
sample() { # the largest VmRSS and descriptor count of a seen so far
    local r f
    r=$(kib VmRSS "$A_PID")
    f=$(fds "$A_PID")
    [ -n "$r" ] && [ "$r" -gt "$PEAK_RSS" ] && PEAK_RSS=$r
    [ "$f" -gt "$PEAK_FDS" ] && PEAK_FDS=$f
    return 0
}
# flood MODE: hostile_peer MODE against a, sampling a until it ends.
flood() {
    local out=$TMP/$1.out
    "$BIN/hostile_peer" "$(endpoint a)" "$A_ID" "$1" >"$out" 2>&1 &
    PIDS[flood]=$!
    while kill -0 "${PIDS[flood]}" 2>/dev/null; do sample; sleep 0.2; done
    wait "${PIDS[flood]}" || fail "hostile_peer $1: $(cat "$out")"
    unset "PIDS[flood]"
    grep -v '^key ' "$out" | sed "s/^/$1 /"
}
st() { p a status --json; }

node_start a
A_ID=$(nid a)
A_PID=${PIDS[a]}
sleep 1
BASE_RSS=$(kib VmRSS "$A_PID")
BASE_FDS=$(fds "$A_PID")
echo "before rss_kib $BASE_RSS fds $BASE_FDS"

flood helloflood:2000
grep -q '^hello_sent 2000$' "$TMP/helloflood:2000.out" || fail "the HELLO flood did not run"
flood gossipflood:2000
grep -q '^records_sent 2000$' "$TMP/gossipflood:2000.out" || fail "the gossip flood did not run"
GOSSIPER=$(head -n 1 "$TMP/gossipflood:2000.out")
for _ in 1 2 3 4 5 6 7 8 9 10; do sample; sleep 0.5; done # its dials time out meanwhile
S=$(st)
echo "after rss_kib $(kib VmRSS "$A_PID") peak_rss_kib $PEAK_RSS fds $(fds "$A_PID") \
peak_fds $PEAK_FDS"
jq -c '{peers, rejected: (.rejected | {peer_evicted, peer_refused, record_dropped,
    dial_dropped, banned})}' <<<"$S"
jqe ".peers.known <= $TABLE_MAX and .peers.unverified <= $UNVERIFIED_MAX" <<<"$S" >/dev/null \
    || fail "a's table is past its bounds"
# 2,000 HELLOs into 256 unverified places: the rest evicted the oldest.
jqe '.rejected.peer_evicted >= 1700' <<<"$S" >/dev/null || fail "the HELLO flood was not evicted"
# One gossiping peer may introduce PEX_NEW_MAX (32) a minute; the rest are
# dropped, and each strikes it: past 512 it is banned and no longer read.
jqe '.rejected.record_dropped >= 500 and .rejected.banned >= 1' <<<"$S" >/dev/null \
    || fail "the gossip flood was not dropped and its sender not banned"
[ "$PEAK_FDS" -le "$FDS_MAX" ] || fail "a held $PEAK_FDS descriptors (cap $FDS_MAX)"
# The gossiped links (PEX_NEW_MAX, 32) dial a dead port: refused
# LINK_DIAL_TRIES times, they are dropped and their descriptors freed.
dropped() { st | jqe '.rejected.dial_dropped >= 32' >/dev/null; }
wait_until 60 dropped || fail "the gossiped links were not dropped: $(st | jq -c .rejected)"
back() { [ "$(fds "$A_PID")" -le $((BASE_FDS + 10)) ]; }
wait_until 30 back || fail "a holds $(fds "$A_PID") descriptors after the floods (${BASE_FDS} before)"
GROWTH=$(((PEAK_RSS - BASE_RSS) / 1024))
[ "$GROWTH" -le "$RSS_MAX_MB" ] || fail "a grew by $GROWTH MiB under the floods (cap $RSS_MAX_MB)"
echo "growth_mib $GROWTH (cap $RSS_MAX_MB) peak_fds $PEAK_FDS (cap $FDS_MAX)"

# Only peers a has really talked to are saved: of the floods, the gossiper.
node_stop a || fail "a did not stop cleanly"
DB=$(home a)/parley.db
ROWS=$(sqlite3 "$DB" 'SELECT count(*) FROM peers')
echo "saved_peers $ROWS"
[ "$ROWS" -le 1 ] || fail "a saved $ROWS peers from the floods"

# A peers table as an older node's was after such a flood: the 2,000 HELLO
# keys saved and redialled at start (every endpoint dead), and 20,000 more
# rows of random bytes (mostly no valid key; seen earlier).
{
    echo "BEGIN;"
    awk '$1 == "key" { printf "INSERT OR IGNORE INTO peers VALUES (X\x27%s\x27, \x27tcp://127.0.0.1:%d\x27, 1, %d);\n", $2, 20000 + NR % 2000, 100000 + NR }' \
        "$TMP/helloflood:2000.out"
    echo "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
        INSERT OR IGNORE INTO peers (pk, endpoint, first_seen_ms, last_seen_ms)
        SELECT randomblob(32), 'tcp://127.0.0.1:' || (20000 + i % 2000), 1, i FROM n;"
    echo "COMMIT;"
} | sqlite3 "$DB" || fail "cannot fill a's peers table"
echo "filled_peers $(sqlite3 "$DB" 'SELECT count(*) FROM peers')"
ulimit_1024() { NODE_PREFIX=(bash -c 'ulimit -n 1024 && exec "$@"' ulimit-1024); }
NODE_PREFIX_FN=ulimit_1024
node_start a
NODE_PREFIX_FN=
A_PID=${PIDS[a]}
grep -q '^Max open files *1024 ' "/proc/$A_PID/limits" || fail "a does not run under ulimit -n 1024"
PEAK_FDS=0
for _ in $(seq 1 20); do sample; sleep 0.25; done
S=$(st)
echo "restart fds $(fds "$A_PID") peak_fds $PEAK_FDS peers $(jq -c .peers <<<"$S")"
[ "$PEAK_FDS" -le "$FDS_MAX" ] || fail "a held $PEAK_FDS descriptors on restart (cap $FDS_MAX)"
# S_STORED_MAX (node.c): the 256 seen last; LINK_DIAL_MAX dials at once.
jqe '.peers.known == 256 and .peers.dialling <= 32' <<<"$S" >/dev/null \
    || fail "a loaded or dialled past its bounds"

# An honest node still connects, and DMs go both ways.
node_start b --seed "$(endpoint a)#$A_ID"
B_ID=$(nid b)
wait_until 20 online a "$B_ID" || fail "a never saw b online"
wait_until 20 online b "$A_ID" || fail "b never saw a online"
p a contacts add "$B_ID" bob >/dev/null
p b contacts add "$A_ID" alice >/dev/null
p a send bob "after the flood" >/dev/null || fail "a could not send"
p b send alice "after the flood too" >/dev/null || fail "b could not send"
EXPECT=1 wait_until 20 count_is b "$A_ID" received || fail "a's DM did not reach b"
EXPECT=1 wait_until 20 count_is a "$B_ID" received || fail "b's DM did not reach a"
p a peers --json | jqe --arg id "$B_ID" '.[] | select(.id == $id and .verified)' >/dev/null \
    || fail "b is not verified at a"

# Forget the gossiper: gone now, and after a restart.
p a peers --json | jqe --arg id "$GOSSIPER" '.[] | select(.id == $id)' >/dev/null \
    || fail "the gossiper is not among a's peers"
p a peers forget "$GOSSIPER" | grep -q "^forgot $GOSSIPER" || fail "peers forget failed"
p a peers --json | jqe --arg id "$GOSSIPER" '[.[] | select(.id == $id)] | length == 0' \
    >/dev/null || fail "the gossiper is still among a's peers"
if p a peers forget "$GOSSIPER" 2>/dev/null; then fail "forgetting it twice succeeded"; fi
node_stop a || fail "a did not stop cleanly"
node_start a
p a peers --json | jqe --arg id "$GOSSIPER" '[.[] | select(.id == $id)] | length == 0' \
    >/dev/null || fail "the gossiper came back after a restart"
echo "ok"

#!/bin/bash
# A relay's scope table under a flood of scopes nobody holds (node/replica.c):
# a peer that passes CURVE and HELLO sends RECONCILE messages of 4,096 blocks,
# each naming a fresh random scope (tests/hostile_peer.c hintflood, then
# hintburst), 65,536 scopes in all, and then r's own DM scopes with fresh keys
# (scopeflood), then envelopes that each make a new scope, by fresh author
# keys (scopestore), each from a fresh key, against relay r that a and b use. Meanwhile `parley status`
# on r keeps answering, and afterwards:
#   - r keeps none of those scopes: status.sync.scopes stays under SCOPES_MAX
#     (r holds a handful of real ones); of the stored ones, at most the
#     1,024 a peer may add in a minute;
#   - r's resident memory (VmRSS) grows by less than RSS_GROWTH_MAX_KB (a
#     bound on growth, so that sanitizer builds can run it too; keeping the
#     65,536 scopes grew it by 26 MB, 10.5 to 37 MB);
#   - each peer is banned (r's rejected.banned goes up by 1, the peer got BYE);
#   - a DM from a to b through r is still delivered.
# Timings (status latency, RSS) are printed, never asserted.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local --sync-ms 1000"
FLOOD_MSGS=${FLOOD_MSGS:-16} # × 4,096 scopes
SCOPES_MAX=1000
RSS_GROWTH_MAX_KB=$((12 * 1024))
# Sanitizer builds keep freed memory in quarantine (every flood message
# read and dropped stays resident: +40 MB over three floods that cost a
# normal build under 1 MB), so there RSS is printed, not checked.
case $BUILD in *san*) RSS_GROWTH_MAX_KB=0 ;; esac

node_start r --relay
R_ID=$(nid r)
SEED="$(endpoint r)#$R_ID"
node_start a --seed "$SEED"
A_ID=$(nid a)
node_start b --seed "$SEED"
B_ID=$(nid b)
wait_until 10 online r "$A_ID" || fail "a never reached r"
wait_until 10 online r "$B_ID" || fail "b never reached r"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/${PIDS[r]}/status"; }
# status_ms: how long one `parley status` on r takes, in ms.
status_ms() {
    local t0 t1
    t0=$(date +%s%N)
    p r status --json >"$TMP/st.json" || fail "no status from r"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
before_ms=$(status_ms)
rss0=$(rss_kb)
echo "before: status ${before_ms} ms, rss ${rss0} kB, scopes $(jq .sync.scopes "$TMP/st.json")"

# flood MODE: runs hostile_peer MODE (a fresh key) against r, timing r's
# status while it runs; then checks r's scopes, RSS and the ban.
flood() {
    local mode=$1 out="$TMP/$1.out" hp worst=0 n=0 max_scopes=0 ms sc b0
    b0=$(jq .rejected.banned "$TMP/st.json")
    "$BIN/hostile_peer" "$(endpoint r)" "$R_ID" "$mode" >"$out" 2>"$TMP/$mode.err" &
    hp=$!
    PIDS[flood]=$hp
    while kill -0 $hp 2>/dev/null; do
        ms=$(status_ms)
        sc=$(jq .sync.scopes "$TMP/st.json")
        [ "$ms" -gt "$worst" ] && worst=$ms
        [ "$sc" -gt "$max_scopes" ] && max_scopes=$sc
        n=$((n + 1))
        sleep 0.2
    done
    wait $hp || fail "hostile_peer $mode: $(cat "$TMP/$mode.err")"
    unset "PIDS[flood]"
    kill -0 "${PIDS[r]}" || fail "r died during $mode"
    echo "$mode: $(tail -n +2 "$out" | grep -v answer_ms | tr '\n' ' ')"
    ms=$(status_ms)
    sc=$(jq .sync.scopes "$TMP/st.json")
    [ "$sc" -gt "$max_scopes" ] && max_scopes=$sc
    local rss banned
    rss=$(rss_kb)
    banned=$(($(jq .rejected.banned "$TMP/st.json") - b0))
    echo "$mode: $n status calls during it, worst ${worst} ms; after: status ${ms} ms," \
        "rss ${rss} kB, scopes ${sc} (max seen ${max_scopes}), banned +${banned}"
    [ "$max_scopes" -lt $SCOPES_MAX ] || fail "$mode: r holds $max_scopes scopes (cap $SCOPES_MAX)"
    [ $RSS_GROWTH_MAX_KB = 0 ] || [ $((rss - rss0)) -lt $RSS_GROWTH_MAX_KB ] \
        || fail "$mode: r's RSS grew from $rss0 to $rss kB (bound +$RSS_GROWTH_MAX_KB kB)"
    [ "$banned" = 1 ] || fail "$mode: banned went up by $banned, not 1"
    grep -q '^bye 1' "$out" || fail "$mode: the flooding peer got no BYE"
}

# Random scopes, each message after the answer to the one before; the same
# all sent at once; blocks of r's real DM scopes with fresh keys (scopes r
# would be a party to, but nobody holds: r is a relay and the peer is not).
flood "hintflood:$FLOOD_MSGS"
flood "hintburst:$FLOOD_MSGS"
flood "scopeflood:4"
# Scopes taken up through stored envelopes: each by a fresh author key (the
# connection's key is another) in its scope with another fresh key. r takes
# up REPLICA_NEW_SCOPES_PER_MIN (1,024) of them from one peer in a minute,
# refuses the rest (scope_cap) and bans the peer (a member, not a relay).
SCOPES_MAX=$((1024 + 64))
flood "scopestore:16384"
jqe '.rejected.scope_cap >= 1' "$TMP/st.json" >/dev/null || fail "scopestore: no scope_cap counted"

# An honest DM through r still works.
p a send "$B_ID" "after the flood" >/dev/null || fail "a could not send"
EXPECT=1 wait_until 20 count_is b "$A_ID" received || fail "b never got a's DM through r"
EXPECT=1 wait_until 20 count_is a "$B_ID" delivered || fail "a's DM was never delivered"
echo "ok"

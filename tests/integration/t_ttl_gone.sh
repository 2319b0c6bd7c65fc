#!/bin/bash
# Disappearing means gone, on loopback through relay R. A writes to B with
# --ttl while B's prekey is unknown (the messages wait, QUEUED) and once it
# is known; B reads them (read receipts). Then:
#  - a queued message whose TTL runs out before B's prekey arrives is
#    deleted unsent: it never reaches B;
#  - one whose prekey arrives in time is sealed with the time that remains,
#    so it disappears on A, R and B like one sealed at once;
#  - the receipts for them expire with them: every log is back to the
#    envelopes it held before;
#  - a few seconds after expiry no plaintext is left in any node's database,
#    -wal or -shm file (the node checkpoints after deleting it).
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local --sync-ms 1000"

node_start r --relay
R_ID=$(nid r)
SEED="$(endpoint r)#$R_ID"
node_start a --seed "$SEED"
A_ID=$(nid a)
wait_until 10 online r "$A_ID" || fail "a never reached r"
B_ID=$(node_init b) || fail "init b"

envs() { p "$1" status --json | jq -r '.log.envelopes'; } # envs NAME
A0=$(envs a)
R0=$(envs r)
state_of() { # state_of NAME PEER TEXT: its state in NAME's history with PEER
    p "$1" history "$2" --limit 0 --json | jq -r --arg t "$3" '.[] | select(.text == $t) | .state'
}

# B's prekey is unknown to A: both wait, QUEUED, each with its TTL.
p a send "$B_ID" "alpha-expires-in-queue" --ttl 2 --json | jqe '.state == "queued"' >/dev/null ||
    fail "alpha was not queued"
T0=$(now)
p a send "$B_ID" "bravo-sealed-late" --ttl 14 --json | jqe '.state == "queued"' >/dev/null ||
    fail "bravo was not queued"
sleep 3
# alpha expired unsent: gone from A's history even though nothing was sealed.
[ -z "$(state_of a "$B_ID" alpha-expires-in-queue)" ] || fail "an expired queued message is kept"
[ "$(state_of a "$B_ID" bravo-sealed-late)" = queued ] || fail "bravo is no longer queued"

node_start b --seed "$SEED"
wait_until 10 online r "$B_ID" || fail "b never reached r"
sealed() { [ "$(state_of a "$B_ID" bravo-sealed-late)" != queued ]; }
wait_until 8 sealed || fail "bravo was never sealed once b's prekey came"
# Sealed at once now that the prekey is known.
p a send "$B_ID" "charlie-sealed-at-once" --ttl 4 --json | jqe '.state == "stored"' >/dev/null ||
    fail "charlie was not sealed at once"
EXPECT=2 wait_until 10 count_is b "$A_ID" received || fail "b did not get bravo and charlie"
p b read "$A_ID" | grep -q "2 marked read" || fail "read"
EXPECT=2 wait_until 10 count_is a "$B_ID" read || fail "a never saw them read"
[ -z "$(state_of b "$A_ID" alpha-expires-in-queue)" ] || fail "the expired queued message was sent"

# bravo was sealed with what remained of its 14 s: gone from both sides by
# then (sealed with no expiry, as before, it would stay).
gone() { EXPECT=0 count_is a "$B_ID" && EXPECT=0 count_is b "$A_ID"; }
wait_until 20 gone || fail "the messages did not disappear (a: $(history_count a "$B_ID"), b: $(history_count b "$A_ID"))"
elapsed "$T0" "$(now)" | awk '{ exit !($1 >= 13) }' || fail "bravo disappeared before its 14 s"

# Receipts expire with the messages: each log is back to what it held.
back() { [ "$(envs a)" = "$A0" ] && [ "$(envs r)" = "$R0" ] && [ "$(envs b)" = 0 ]; }
wait_until 15 back || fail "envelopes left: a $(envs a) (was $A0), r $(envs r) (was $R0), b $(envs b)"

# Within seconds, no plaintext in any file of any database.
sleep 3
for n in a r b; do
    for f in "$(home "$n")"/parley.db*; do
        for t in alpha-expires-in-queue bravo-sealed-late charlie-sealed-at-once; do
            grep -qa "$t" "$f" && fail "'$t' is still in $f"
        done
    done
done

# Nothing that expired is left in any table (read with the nodes stopped).
node_stop a
node_stop b
node_stop r
for n in a r b; do
    left=$(sqlite3 "$(home "$n")/parley.db" \
        "SELECT (SELECT count(*) FROM envelopes WHERE expires_ms > 0)
              + (SELECT count(*) FROM messages WHERE expires_ms > 0)
              + (SELECT count(*) FROM equivocations WHERE expires_ms > 0)") \
        || fail "cannot read $n's database"
    [ "$left" = 0 ] || fail "$n still holds $left expiring rows"
done
echo "ok"

#!/bin/bash
# Sequence numbers are never reused (store/store_log.c "Sequence numbers",
# node/node.c "A lost database"), on loopback, A writing to B:
#  (a) A's envelopes sent with --ttl expire at both; A's next message takes
#      a number above every one used before, and B takes it, with no
#      equivocation counted;
#  (b) A's parley.db (and -wal, -shm) is removed, identity.key kept, and A
#      restarted: it says it lost its database and is recovering, gets its
#      envelopes back from B, then sends above the floor (the time of the
#      loss); B opens it (A's new prekey won over the old one, whose id was
#      higher before the fix), B's reply reaches A, no equivocation;
#  (c) A is killed (SIGKILL) at random points while it sends, KILLS times:
#      afterwards B holds every message whose `send` returned (committed),
#      with no equivocation and no duplicate.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local --sync-ms 1000"
KILLS=${KILLS:-50}

pair a b
LISTEN_A=$(endpoint a)
SEED_A="$(endpoint a)#$A_ID"
equivocations() { p "$1" status --json | jq -r '.rejected.equivocation'; } # NAME
# seqs NAME PEER: the seq of every outgoing message in NAME's history with PEER
max_out_seq() {
    p "$1" history "$2" --limit 0 --json | jq '[.[] | select(.outgoing) | .seq] | max // 0'
}
seq_of() { # seq_of NAME PEER TEXT
    p "$1" history "$2" --limit 0 --json | jq -r --arg t "$3" '.[] | select(.text == $t) | .seq'
}
has_text() { [ -n "$(seq_of "$@")" ]; }

# ---- (a) expiry does not free numbers
p a send "$B_ID" "lasting-1" >/dev/null || fail "send lasting-1"
for i in 1 2 3; do
    p a send "$B_ID" "short-$i" --ttl 2 >/dev/null || fail "send short-$i"
done
EXPECT=4 wait_until 10 count_is b "$A_ID" received || fail "b did not get the four messages"
USED=$(max_out_seq a "$B_ID")
[ "$USED" -ge 4 ] || fail "a used seq $USED for four messages"
gone() { EXPECT=1 count_is a "$B_ID" && EXPECT=1 count_is b "$A_ID"; }
wait_until 20 gone || fail "the --ttl messages did not expire"
# Before the fix the next seq was max(seq held) + 1 = 2: a number used before.
p a send "$B_ID" "after-expiry" >/dev/null || fail "send after-expiry"
wait_until 10 has_text b "$A_ID" after-expiry || fail "b never got the message sent after expiry"
S=$(seq_of a "$B_ID" after-expiry)
[ "$S" -gt "$USED" ] || fail "after expiry a reused seq $S (used up to $USED)"
[ "$(equivocations b)" = 0 ] || fail "b counted $(equivocations b) equivocations after expiry"
echo "(a) after expiry: seq $S > $USED, no equivocation"

# ---- (b) a lost database, identity kept
node_stop a || fail "a did not stop cleanly"
HOLD=$(p b status --json | jq -r '.log.envelopes')
rm -f "$(home a)/parley.db" "$(home a)/parley.db-wal" "$(home a)/parley.db-shm"
[ -f "$(home a)/identity.key" ] || fail "identity.key went too"
T_LOSS=$(($(date +%s%3N) - 1))
LISTEN=$LISTEN_A node_start a
grep -q "the message database was lost" "$(node_log a)" || fail "a did not say it lost its database"
STATE=$(p a status --json | jq -r '.recovery.state')
case "$STATE" in recovering | recovered) ;; *) fail "a's status shows recovery '$STATE'" ;; esac
p a status | grep -q "^database:  lost, found at" || fail "parley status does not show the loss"
# What the user sends meanwhile waits, and is not lost.
p a send "$B_ID" "after-loss" --json | jqe '.state == "queued" or .state == "stored"' >/dev/null ||
    fail "send after the loss"
recovered() { [ "$(p a status --json | jq -r '.recovery.state')" = recovered ]; }
wait_until 30 recovered || fail "a never finished recovering"
N=$(p a status --json | jq -r '.recovery.envelopes_recovered')
[ "$N" -ge 2 ] || fail "a recovered $N envelopes of its own from b"
grep -q "recovery of the lost database done: $N envelopes" "$(node_log a)" ||
    fail "a's log does not say how many envelopes came back"
wait_until 20 has_text b "$A_ID" after-loss || fail "b never got the message sent after the loss"
S=$(seq_of b "$A_ID" after-loss)
[ "$S" -ge "$T_LOSS" ] || fail "after the loss a sent seq $S, below the floor $T_LOSS"
[ "$(equivocations b)" = 0 ] || fail "b counted $(equivocations b) equivocations after the loss"
# B writes back: it must have taken A's new prekey (a lower id than the old
# one before the fix), else A cannot open it.
p b send "$A_ID" "reply-after-loss" >/dev/null || fail "send reply"
wait_until 20 has_text a "$B_ID" reply-after-loss || fail "a cannot read b's reply after the loss"
echo "(b) lost database: $N envelopes recovered (b held $HOLD), seq $S >= floor $T_LOSS"

# ---- (c) SIGKILL while sending, KILLS times
node_stop a || fail "a did not stop cleanly"
rm -f "$TMP/sent"
T0=$(now)
for k in $(seq 1 "$KILLS"); do
    # --retry-ms 1: the outbox is resent in nearly every iteration, also in
    # the one that seals a send (the resend used to read it uncommitted)
    LISTEN=$LISTEN_A node_start a --retry-ms 1
    # sends back to back until the kill stops them, one of them mid-way
    (for j in $(seq 1 100); do
        p a send "$B_ID" "k$k-$j" >/dev/null 2>&1 || break
        echo "k$k-$j" >>"$TMP/sent"
    done) &
    sender=$!
    sleep "0.$((RANDOM % 40))"
    node_kill a
    wait "$sender" # the sender only: b's parleyd is a child too
done
LISTEN=$LISTEN_A node_start a
echo "(c) $KILLS kills in $(since "$T0") s; $(wc -l <"$TMP/sent") sends returned"
texts() { p b history "$A_ID" --limit 0 --json | jq -r '.[] | select(.outgoing | not) | .text'; }
all_there() {
    local have
    have=$(texts | sort -u)
    [ -z "$(comm -23 <(sort -u "$TMP/sent") <(echo "$have"))" ]
}
wait_until 60 all_there || fail "b misses committed messages: $(comm -23 <(sort -u "$TMP/sent") <(texts | sort -u) | head -5 | tr '\n' ' ')"
[ "$(equivocations b)" = 0 ] || fail "b counted $(equivocations b) equivocations in the kill loop"
[ "$(equivocations a)" = 0 ] || fail "a counted $(equivocations a) equivocations"
[ "$(texts | sort | uniq -d | wc -l)" = 0 ] || fail "duplicates at b"
echo "ok"

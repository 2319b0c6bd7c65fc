#!/bin/bash
# Offline delivery through a relay, on loopback: A and B are never online at
# the same time; relay R is. B's prekey reaches A through R; A's DM waits on R
# ("relayed"), reaches B when B comes; B's receipts wait on R and reach A when
# A is back ("delivered", then "read"). R holds no plaintext. A disappearing
# message is deleted on R and never reaches B after it expired.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local --sync-ms 1000"

node_start r --relay
R_ID=$(nid r)
SEED="$(endpoint r)#$R_ID"

node_start b --seed "$SEED"
B_ID=$(nid b)
wait_until 10 online r "$B_ID" || fail "b never reached r"
sleep 0.5
node_stop b

node_start a --seed "$SEED"
A_ID=$(nid a)
wait_until 10 online r "$A_ID" || fail "a never reached r"
# A never met B: its prekey comes from R, so the DM is sealed at once.
sealed() { p a send "$B_ID" 'meet me at noon' --json | jqe '.state == "stored"' >/dev/null; }
wait_until 10 sealed || fail "a could not seal to b (no prekey via r)"
EXPECT=1 wait_until 10 count_is a "$B_ID" relayed || fail "never relayed"
node_stop a

node_start b --seed "$SEED"
EXPECT=1 wait_until 15 count_is b "$A_ID" received || fail "b did not get the DM through r"
p b history "$A_ID" | grep -q "meet me at noon" || fail "text"
p b read "$A_ID" | grep -q "1 marked read" || fail "read"
sleep 1
node_stop b

node_start a --seed "$SEED"
EXPECT=1 wait_until 15 count_is a "$B_ID" read || fail "a never saw delivered/read"
p r status --json | jqe '.sync.relay and .sync.rounds_ended > 0' >/dev/null || fail "r status"

# The relay cannot read what it carries.
node_stop r
grep -qa "meet me at noon" "$TMP/r/parley.db"* && fail "plaintext in the relay's database"
LISTEN=$(echo "$SEED" | cut -d'#' -f1) node_start r --relay
wait_until 10 online a "$R_ID" || fail "a never reached r again"

# Disappearing: expired on R before B arrives, so B never gets it.
p a send "$B_ID" "gone soon" --ttl 2 >/dev/null || fail "send --ttl"
status_has() { p "$1" status --json | jqe "$2" >/dev/null; } # status_has NAME FILTER
wait_until 10 status_has r '.log.envelopes >= 4' || fail "r never held the disappearing DM"
wait_until 10 status_has r '.sync.expired >= 1' || fail "r never deleted it"
wait_until 10 status_has a '.sync.expired >= 1' || fail "a never deleted it"
node_stop a
node_start b --seed "$SEED"
sleep 3
p b history "$A_ID" | grep -q "gone soon" && fail "an expired message came back"
EXPECT=1 count_is b "$A_ID" || fail "b's history changed"
echo "ok"

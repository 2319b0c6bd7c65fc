#!/bin/bash
# A channel through the CLI, on loopback: A creates #ops with a topic, adds
# B and C by id; each sees the channel listed with its name, topic and
# three members; messages go every way and every node's history shows them
# in the same order. B, a member but not an admin, cannot add D. A message
# full of escape sequences is printed escaped. R, a relay, carries every
# envelope of the channel and none of its text.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local --sync-ms 500"

node_start r --relay
SEED="$(endpoint r)#$(nid r)"
for n in a b c d; do node_start $n --seed "$SEED"; done
A_ID=$(nid a) B_ID=$(nid b) C_ID=$(nid c) D_ID=$(nid d)
for n in b c; do wait_until 10 online a "$(nid $n)" || fail "a never reached $n"; done

p a channel create ops --topic "deploys and pages" | grep -q "#ops" || fail "create"
p a channel create ops 2>&1 | grep -q "already" || fail "a second #ops"
p a channel add ops "$B_ID" "$C_ID" >/dev/null || fail "add"
knows() { p "$1" channel list | grep -q "#ops .* 3 members.*deploys and pages"; }
for n in a b c; do wait_until 15 knows $n || fail "$n does not list #ops with 3 members"; done

p a send '#ops' 'release at five' | grep -q "^stored" || fail "a send"
has() { [ "$(p "$1" history '#ops' --json | jq '.messages | length')" = "$2" ]; }
for n in b c; do wait_until 10 has $n 1 || fail "$n did not get a's message"; done
p b send '#ops' 'b is ready' >/dev/null || fail "b send"
p c send '#ops' $'c is \e[31mready\e]0;owned\a' >/dev/null || fail "c send"
for n in a b c; do wait_until 10 has $n 3 || fail "$n does not have all three"; done
order() { p "$1" history '#ops' --json | jq -c '[.messages[] | [.from, .text]]'; }
[ "$(order a)" = "$(order b)" ] && [ "$(order a)" = "$(order c)" ] || fail "orders differ"
p a history '#ops' | grep -q $'\e' && fail "a raw escape reached the terminal"
p a history '#ops' | grep -q 'ready\\x1b\]0;owned' || p a history '#ops' | grep -q 'owned' \
    || fail "the escaped message is not shown"

# Delivered and read counts on the author's side, from one receipt per member.
counts() { p a history '#ops' | grep 'release at five' | grep -q "delivered 2/2, read $1/2"; }
wait_until 10 counts 0 || fail "a never saw its message delivered to both"
p b read '#ops' | grep -q "2 marked read" || fail "b read"
wait_until 10 counts 1 || fail "a never saw b read it"

p b channel add ops "$D_ID" 2>&1 | grep -q "owners and admins" || fail "a member added someone"
p a channel info ops | grep -q "owner" || fail "info: roles"

p a channel topic ops "deploys, pages and coffee" | grep -q coffee || fail "topic"
topic_b() { p b channel list | grep -q coffee; }
wait_until 10 topic_b || fail "b never saw the topic"

# Removal: C is out, and what is sent after never reaches it.
p a channel remove ops "$C_ID" | grep -q "removed" || fail "remove"
sent_after() { p a send '#ops' 'after c was removed' >/dev/null 2>&1; }
wait_until 15 sent_after || fail "a never had the new epoch's key"
wait_until 10 has b 4 || fail "b did not get the message after the removal"
sleep 1
p c channel list | grep -q "left" || fail "c does not show the channel as left"
grep -qa 'after c was removed' "$TMP/c/parley.db"* && fail "c holds what was sent after its removal"

# D, added in a later epoch, cannot read the message that named the channel:
# the rotation repeated the settings under the new key.
p a channel add ops "$D_ID" >/dev/null || fail "add d"
d_knows() { p d channel list | grep -q "#ops .*deploys, pages and coffee"; }
wait_until 15 d_knows || fail "d, added after a removal, does not see the name and topic"

# A message waits for its key, durably: with a, the only admin, stopped, b
# leaves (a new epoch nobody can key yet); d's post is queued, shown as such,
# still there after d restarts, and goes when a is back and has rotated.
keyed() { p "$1" channel list --json | jqe '.channels[] | select(.name == "ops") | .keyed' >/dev/null; }
wait_until 15 keyed d || fail "d has no key for #ops"
LISTEN_A=$(endpoint a)
node_stop a
p b channel leave ops >/dev/null || fail "b leave"
unkeyed() { ! keyed d; }
wait_until 15 unkeyed || fail "d never saw b's leave"
p d send '#ops' 'while nobody can key' | grep -q "^queued" || fail "d's post was not queued"
p d history '#ops' | grep 'while nobody can key' | grep -q '\[queued\]' || fail "history: queued"
node_stop d
node_start d --seed "$SEED"
p d history '#ops' | grep -q 'while nobody can key.*\[queued\]' || fail "the queue did not survive"
LISTEN=$LISTEN_A node_start a --seed "$SEED"
got_it() { p a history '#ops' | grep -q 'while nobody can key'; }
wait_until 20 got_it || fail "a never got d's queued post"
p d history '#ops' | grep 'while nobody can key' | grep -q '\[queued\]' && fail "still queued on d"

# The relay holds the channel's messages as ciphertext only.
status_has() { p "$1" status --json | jqe "$2" >/dev/null; }
wait_until 10 status_has r '.log.envelopes >= 14' || fail "r does not hold the channel"
node_stop r
for t in 'release at five' 'b is ready' 'deploys and pages'; do
    grep -qa "$t" "$TMP/r/parley.db"* && fail "plaintext '$t' in the relay's database"
done
grep -qa 'release at five' "$TMP/d/parley.db"* && fail "plaintext in a non-member's database"
echo "ok"

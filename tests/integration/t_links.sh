#!/bin/bash
# Links at scale (SPEC §11.1): 14 nodes on one host, each keeping links to 4
# ring neighbours, one connection per pair. Every node knows every other, yet
# dials few of them; a DM
# to a peer beyond the ring is dialled on demand and delivered, and that
# link closes once idle; a channel of all 14 carries a member's message to
# every member along the members' rings.
. "$(dirname "$0")/lib.sh"
N=14
K=4
NODE_ARGS="--ping-ms 500 --retry-ms 1000 --sync-ms 2000 --no-mdns --neighbours $K --link-idle-ms 3000"
NAMES=$(seq -f 'n%g' 1 "$N")
for n in $NAMES; do
    node_start "$n"
done
# shellcheck disable=SC2086 # NAMES is a list
wait_until 60 known_all $((N - 1)) $NAMES || fail "not all known: $(linked $NAMES)"
# Each node dials its K ring neighbours (and answers theirs), not N - 1.
# shellcheck disable=SC2086 # NAMES is a list
settled() { for n in $NAMES; do
    s=$(p "$n" status --json)
    [ "$(jq .peers.linked <<<"$s")" -le $K ] && [ "$(jq .peers.online <<<"$s")" -ge $K ] || return 1
done; }
# shellcheck disable=SC2086 # NAMES is a list
wait_until 30 settled || fail "links not bounded (known/online/linked): $(linked $NAMES)"
# One connection per pair: the ring's N*K/2 pairs are held by one DEALER each
# (the lower key's), not two.
one_each() {
    local sum=0 n
    for n in $NAMES; do sum=$((sum + $(p "$n" status --json | jq .peers.linked))); done
    [ "$sum" -le $((N * K / 2)) ]
}
wait_until 30 one_each || fail "more than one connection per pair: $(linked $NAMES)"
# A peer n1 has no link to: a DM dials it, is delivered, and the link closes
# once idle.
FAR=""
for n in $NAMES; do
    [ "$n" = n1 ] && continue
    online n1 "$(nid "$n")" || { FAR=$n; break; }
done
[ -n "$FAR" ] || fail "n1 is linked to everyone: $(linked n1)"
FAR_ID=$(nid "$FAR")
p n1 send "$FAR_ID" "beyond the ring" >/dev/null || fail "send"
EXPECT=1 wait_until 15 count_is "$FAR" "$(nid n1)" received || fail "DM beyond the ring not delivered"
EXPECT=1 wait_until 15 count_is n1 "$FAR_ID" delivered || fail "no delivery receipt"
gone() { ! online n1 "$FAR_ID"; }
wait_until 30 gone || fail "the idle link to $FAR stayed: $(linked n1 "$FAR")"
# A channel of all: created by n1, a message from n7 reaches every member.
p n1 channel create all >/dev/null || fail "channel create"
for n in $NAMES; do
    [ "$n" = n1 ] || p n1 channel add all "$(nid "$n")" >/dev/null || fail "add $n"
done
has_channel() { for n in $NAMES; do
    p "$n" channel list --json | jqe 'any(.channels[]; .name == "all" and .members == 14)' >/dev/null \
        || return 1; done; }
wait_until 60 has_channel || fail "not every member holds the channel: $(for n in $NAMES; do
    printf '%s:%s ' "$n" "$(p "$n" channel list --json | jq -c '.channels | map([.name, .members])')"; done)"
p n7 send '#all' "to all of you" >/dev/null || fail "channel send"
got_all() { for n in $NAMES; do
    p "$n" history '#all' --json | jqe 'any(.messages[]; .text == "to all of you")' >/dev/null || return 1
done; }
wait_until 60 got_all || fail "a member lacks the message: $(for n in $NAMES; do
    printf '%s:%s ' "$n" "$(p "$n" history '#all' --json | jq '.messages | length')"; done)"
# shellcheck disable=SC2086 # NAMES is a list
wait_until 30 settled || fail "links not bounded after the channel: $(linked $NAMES)"
echo "ok"

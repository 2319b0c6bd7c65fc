#!/bin/bash
# A network-wide channel on loopback: the founder F of a private network
# creates #all with --network; J1, a member already, is in it; J2 joins the
# network later and is in it without anyone adding it, and reads what is
# sent after. A member may not create one, and nobody adds to, removes from
# or leaves one by hand. J2 made a network admin becomes a channel admin.
# J1 removed from the network is removed from #all, the epoch moves, and J1
# holds nothing sent after.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local --sync-ms 500"

join_as() { # join_as NAME: NAME joins F's network with a fresh invite
    local code
    code=$(p f invite 2>/dev/null) || fail "invite for $1"
    p "$1" join "$code" --timeout 30 --name "$1" >/dev/null || fail "$1 could not join"
}
lists_all() { # lists_all NAME N: NAME lists #all with N members
    p "$1" channel list --json \
        | jqe --argjson n "$2" '.channels[] | select(.name == "all" and .network and .members == $n
            and .state == "member")' >/dev/null
}
has() { [ "$(p "$1" history '#all' --json | jq '.messages | length')" -ge "$2" ]; }

node_start f
p f network create "Acme staff" --my-name f >/dev/null || fail "network create"
node_start j1
J1_ID=$(nid j1)
join_as j1
wait_until 15 online f "$J1_ID" || fail "f never saw j1 as a member"

p j1 channel create nope --network 2>&1 | grep -q "only the network's admins" \
    || fail "a member created a network-wide channel"
p f channel create all --network --topic "everyone" | grep -q "network-wide" || fail "create"
wait_until 15 lists_all f 2 || fail "f: #all does not have j1: $(p f channel list --json)"
wait_until 15 lists_all j1 2 || fail "j1 is not in #all: $(p j1 channel list --json)"
p f send '#all' 'welcome, j1' >/dev/null || fail "f send"
wait_until 10 has j1 1 || fail "j1 did not get f's message"

# A new member of the network is in it, and reads what is sent from then on.
node_start j2
J2_ID=$(nid j2)
join_as j2
wait_until 20 lists_all j2 3 || fail "j2, new in the network, is not in #all: $(p j2 channel list)"
p j2 channel list | grep -q "#all .*network-wide.*everyone" || fail "j2 does not see the topic"
keyed() { p "$1" channel list --json | jqe '.channels[] | select(.name == "all") | .keyed' >/dev/null; }
wait_until 15 keyed j2 || fail "j2 has no key for #all"
p j2 send '#all' 'hello from j2' >/dev/null || fail "j2 send"
p f send '#all' 'welcome, j2' >/dev/null || fail "f send 2"
wait_until 10 has j1 3 || fail "j1 does not have j2's message and f's"
p j2 history '#all' | grep -q "welcome, j2" || wait_until 10 has j2 2 || fail "j2 missed f's message"

# By hand, membership does not move.
p f channel add all "$J2_ID" 2>&1 | grep -q "invite them to the network" || fail "add by hand"
p f channel remove all "$J1_ID" 2>&1 | grep -q "remove them from the network" \
    || fail "remove by hand"
p j1 channel leave all 2>&1 | grep -q "leaving the network" || fail "leave by hand"

# A network admin is a channel admin.
p f member role "$J2_ID" admin >/dev/null || fail "member role"
j2_admin() { p f channel info all --json | jqe --arg j "$J2_ID" '.member_list[] |
    select(.id == $j and .role == "admin")' >/dev/null; }
wait_until 15 j2_admin || fail "j2, a network admin, is not an admin of #all"

# Removed from the network, removed from the channel: a new epoch without it.
E0=$(p f channel list --json | jq '.channels[] | select(.name == "all") | .epoch')
p f member remove "$J1_ID" >/dev/null || fail "member remove"
wait_until 15 lists_all f 2 || fail "j1 is still in #all: $(p f channel info all)"
moved() {
    [ "$(p f channel list --json | jq '.channels[] | select(.name == "all") | .epoch')" -gt "$E0" ] \
        && keyed f
}
wait_until 15 moved || fail "no new epoch after j1's removal"
p f send '#all' 'after j1 left the network' >/dev/null || fail "f send after"
wait_until 10 has j2 4 || fail "j2 did not get the message after j1's removal"
sleep 1
grep -qa 'after j1 left the network' "$TMP/j1/parley.db"* && fail "j1 holds what was sent after"
echo "ok"

#!/bin/bash
# Private networks (issue 10; proto/SPEC.md §17, §18) with real parleyd
# processes on loopback: the founder creates a network and invites; a first
# joiner joins; a second joins through that member while the inviter is
# stopped (the code carries several endpoints); members exchange DMs; a node
# with a fresh key that never joined is refused (ZAP) and gets nothing
# delivered; revoked, used, expired and damaged codes are refused each with
# its own message; a removal takes effect (the removed node loses its links
# and its messages are not delivered); role and relay changes; the log lists
# every action; watch shows roster events; a member leaves.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --sync-ms 1000"

# later MESSAGE: a failed check that fails the test at its end rather than at
# once, so that one run also tries every step after it. For what the user
# sees (messages, details) and for what has a way round it in this test.
LATER=()
later() {
    echo "FAIL (at the end): $*" >&2
    LATER+=("$*")
}

# show NAME [JQ ARGS...] FILTER: NAME's network.show passes the jq FILTER.
show() {
    local n=$1
    shift
    p "$n" network show --json | jqe "$@" >/dev/null
}
zap_denied() { p "$1" status --json | jq -r '.rejected.zap_denied // 0'; }
members() { p "$1" network show --json | jq -r '.members | length'; }
# joined NAME CODE ARGS...: `parley join` succeeds and says so.
joined() {
    local n=$1 code=$2 out
    shift 2
    out=$(p "$n" join "$code" --timeout 30 "$@" 2>"$TMP/join.$n.err") \
        || fail "$n could not join: $(cat "$TMP/join.$n.err")"
    echo "$out" | grep -q "^joined Acme staff as member ([0-9]* members)$" \
        || fail "join output on $n: $out"
}
# refused NAME CODE PATTERN WHAT: `parley join` fails (exit 1) with a message
# that matches PATTERN (grep -E, case-insensitive).
refused() {
    local rc
    p "$1" join "$2" --timeout 20 >"$TMP/out" 2>"$TMP/err"
    rc=$?
    [ $rc = 1 ] || fail "$4 code: join exited $rc: $(cat "$TMP/out" "$TMP/err")"
    grep -qiE "$3" "$TMP/err" || later "$4 code: the message does not say so: $(cat "$TMP/err")"
}

# --- the founder ---------------------------------------------------------------
node_start f
F_ID=$(nid f)
show f '.mode == "open"' || fail "a new node is not in open mode: $(p f network show --json)"
p f network show | grep -q "open mode" || fail "network show text in open mode"
p f network create "Acme staff" --my-name founder --json >"$TMP/create.json" \
    || fail "network create"
jqe --arg f "$F_ID" '.mode == "network" and .name == "Acme staff" and .role == "admin" and
    .founder == $f and (.members | length == 1) and .members[0].id == $f and
    .members[0].role == "admin" and .members[0].name == "founder" and (.admins == [$f])' \
    "$TMP/create.json" >/dev/null || fail "network create result: $(cat "$TMP/create.json")"
NET_ID=$(jq -r .id "$TMP/create.json")
p f network create "Again" 2>"$TMP/err" && fail "created a second network"
p f network show | grep -q "Acme staff" || fail "network show text"

# Usage errors are exit 2 and never reach the node.
for bad in "--expires 5x" "--expires 0s" "--expires 1.5h" "--expires 24" "--uses 0" \
    "--uses 1001" "--role owner"; do
    # shellcheck disable=SC2086 # one option and its value
    p f invite $bad >/dev/null 2>&1
    [ $? = 2 ] || fail "invite $bad was not a usage error"
done
p f member role "$F_ID" boss >/dev/null 2>&1
[ $? = 2 ] || fail "member role boss was not a usage error"

# --- the first joiner, through the founder ---------------------------------------
CODE1=$(p f invite --name "for j1" 2>"$TMP/invite.err") || fail "invite: $(cat "$TMP/invite.err")"
[ "$(printf '%s\n' "$CODE1" | wc -l)" = 1 ] || fail "invite printed more than the code: $CODE1"
[[ "$CODE1" == parley-invite:* ]] || fail "invite code: $CODE1"
grep -q "bearer token" "$TMP/invite.err" || fail "invite does not warn: $(cat "$TMP/invite.err")"
node_start j1
J1_ID=$(nid j1)
joined j1 "$CODE1" --name j1
show j1 --arg f "$F_ID" '.mode == "network" and .founder == $f and .role == "member"' \
    || fail "j1's network show: $(p j1 network show --json)"
wait_until 15 show f --arg j "$J1_ID" '.members | any(.id == $j and .role == "member" and
    .name == "j1" and .via_invite)' || fail "f does not list j1: $(p f network show --json)"
wait_until 15 online f "$J1_ID" || fail "f never saw j1 online as a member"
# A member is not an admin: it cannot invite.
p j1 invite >/dev/null 2>"$TMP/err" && fail "a member created an invite"

# A used code is refused; so is an expired one (at once: the code says when it
# ends) and a damaged one.
node_start r1
CODEX=$(p f invite --expires 1s 2>/dev/null) || fail "invite --expires 1s"
sleep 2
refused r1 "$CODEX" "expired" "an expired"
BROKEN=${CODE1:0:30}$([ "${CODE1:30:1}" = a ] && echo b || echo a)${CODE1:31}
refused r1 "$BROKEN" "damaged|copy it again" "a damaged"
refused r1 "$CODE1" "used" "a used"
node_stop r1

# A revoked code is refused.
node_start r2
p f invite --name "to revoke" --json >"$TMP/revoke.json" || fail "invite to revoke"
p f invite revoke "$(jq -r .invite_id "$TMP/revoke.json")" | grep -q "^revoked invite" \
    || fail "invite revoke"
p f invite list --json | jqe --arg i "$(jq -r .invite_id "$TMP/revoke.json")" \
    '.[] | select(.invite_id == $i) | .revoked and (.live | not)' >/dev/null \
    || fail "invite list after revoke: $(p f invite list --json)"
p f invite list | grep -q "revoked" || fail "invite list text: no revoked invite"
p f invite list | grep -q "used up" || fail "invite list text: no used-up invite"
refused r2 "$(jq -r .code "$TMP/revoke.json")" "revoked" "a revoked"
node_stop r2

# --- the second joiner, through j1 while the founder is stopped --------------------
# f knows j1 (a member online): the code must name j1's endpoint as well. If
# it does not, j2 cannot join with f stopped; then it joins through f, so
# that the rest still runs, and the test fails at the end.
p f invite --json >"$TMP/code2.json" || fail "second invite"
J1_PORT=${NODE_EP[j1]##*:}
if jqe --arg port ":$J1_PORT" '(.endpoints | length >= 2) and (.endpoints | tostring |
    contains($port))' "$TMP/code2.json" >/dev/null; then
    node_stop f
else
    later "the code does not carry j1's endpoint: $(jq -c .endpoints "$TMP/code2.json")"
fi
p j1 watch --json >"$TMP/watch.j1" 2>/dev/null &
PIDS[watch]=$!
p j1 watch >"$TMP/watch.j1.txt" 2>&1 &
PIDS[watcht]=$!
node_start j2
J2_ID=$(nid j2)
# A bidi override in the name: shown escaped, never raw.
joined j2 "$(jq -r .code "$TMP/code2.json")" --name $'j2\xe2\x80\xaeevil'
wait_until 15 show j1 --arg j "$J2_ID" '.members | any(.id == $j)' \
    || fail "j1 does not list j2: $(p j1 network show --json)"
wait_until 5 grep -q '"method":"network"' "$TMP/watch.j1" || fail "watch saw no roster event"
[ -n "${PIDS[f]:-}" ] || LISTEN=$(endpoint f) node_start f
wait_until 20 show f --arg j "$J2_ID" '.members | length == 3 and any(.id == $j)' \
    || fail "f never learnt of j2: $(p f network show --json)"
p f network show >"$TMP/show.txt"
grep -q '<U+202E>' "$TMP/show.txt" || fail "network show does not escape a bidi control"
LC_ALL=C grep -qP '\xe2\x80\xae' "$TMP/show.txt" && fail "network show printed a raw bidi control"

# --- DMs between members -------------------------------------------------------------
wait_until 20 online j2 "$F_ID" || fail "j2 never saw f online"
p j2 send "$J1_ID" "hello j1" >/dev/null || fail "send j2 -> j1"
p j1 send "$F_ID" "hello f" >/dev/null || fail "send j1 -> f"
p f send "$J2_ID" "hello j2" >/dev/null || fail "send f -> j2"
EXPECT=1 wait_until 20 count_is j2 "$J1_ID" delivered || fail "j2 -> j1 never delivered"
EXPECT=1 wait_until 20 count_is j1 "$F_ID" delivered || fail "j1 -> f never delivered"
EXPECT=1 wait_until 20 count_is f "$J2_ID" delivered || fail "f -> j2 never delivered"

# --- an outsider with a fresh key that never joined ------------------------------------
Z0=$(zap_denied j1)
node_start x --seed "$(endpoint j1)#$J1_ID"
X_ID=$(nid x)
p x send "$J1_ID" "let me in" >/dev/null || fail "x could not even store its message"
zap_rose() { [ "$(zap_denied j1)" -gt "$Z0" ]; }
wait_until 15 zap_rose || fail "j1's zap_denied never rose ($Z0 -> $(zap_denied j1))"
sleep 3
online j1 "$X_ID" && fail "j1 lists the outsider online"
[ "$(history_count x "$J1_ID" delivered)" = 0 ] || fail "the outsider's message was delivered"
p j1 history "$X_ID" --json 2>/dev/null | jq -r '.[].text' | grep -q "let me in" \
    && fail "j1 received the outsider's message"
node_stop x

# --- removal ---------------------------------------------------------------------------
p f member remove "$J2_ID" --reason "left the company" | grep -q "^removed $J2_ID$" \
    || fail "member remove"
wait_until 15 show j1 --arg j "$J2_ID" '.members | all(.id != $j)' \
    || fail "j1 still lists j2: $(p j1 network show --json | jq -c '[.events, .epoch,
    [.members[].short_id]]'); j1's peers: $(p j1 peers); f's: $(p f peers)"
cut_off() { ! online j2 "$F_ID" && ! online j2 "$J1_ID"; }
wait_until 20 cut_off || fail "the removed j2 still sees members online: $(p j2 peers)"
p j2 send "$J1_ID" "after removal" >/dev/null 2>&1 # stored or refused: either way never delivered
sleep 5
p j1 history "$J2_ID" --json | jq -r '.[].text' | grep -q "after removal" \
    && fail "a removed member's message was delivered"
# Its next connections are refused at ZAP: restarted, it redials its saved peers.
node_stop j2
ZF0=$(zap_denied f) ZJ0=$(zap_denied j1)
LISTEN=$(endpoint j2) node_start j2
refused_again() { [ "$(zap_denied f)" -gt "$ZF0" ] || [ "$(zap_denied j1)" -gt "$ZJ0" ]; }
wait_until 15 refused_again || fail "the removed j2 was not refused at ZAP after a restart"
sleep 2
cut_off || fail "the removed j2 got back in: $(p j2 peers)"
node_stop j2
wait_until 5 grep -q "network remove by" "$TMP/watch.j1.txt" \
    || fail "watch text shows no removal: $(cat "$TMP/watch.j1.txt")"

# --- roles and relays -------------------------------------------------------------------
p f member role "$J1_ID" admin | grep -q "is now admin" || fail "member role admin"
show f --arg j "$J1_ID" '.admins | index($j) != null' || fail "j1 is not an admin"
wait_until 15 show j1 '.role == "admin"' || fail "j1 never learnt it is an admin"
p f member role "$J1_ID" member >/dev/null || fail "member role member"
p f relay add "$J1_ID" | grep -q "is a relay" || fail "relay add"
show f --arg j "$J1_ID" '.relays == [$j] and (.members | any(.id == $j and .relay))' \
    || fail "j1 is not a relay: $(p f network show --json)"
p f relay remove "$J1_ID" | grep -q "no longer a relay" || fail "relay remove"
show f '.relays == []' || fail "relays after remove: $(p f network show --json)"

# --- the audit trail ------------------------------------------------------------------------
p f network log --json >"$TMP/log.json" || fail "network log"
jqe '[.[] | .type] as $t | ["create", "invite", "revoke", "join", "remove", "role", "relay"] |
    all(. as $x | $t | index($x) != null)' "$TMP/log.json" >/dev/null \
    || fail "network log lacks an action: $(jq -c '[.[] | .type]' "$TMP/log.json")"
jqe --arg j "$J2_ID" --arg f "$F_ID" '.[] | select(.type == "remove") | .target == $j and
    .author == $f and .applied' "$TMP/log.json" \
    >/dev/null || fail "the removal in the log: $(jq -c '.[] | select(.type == "remove")' "$TMP/log.json")"
jqe '.[] | select(.type == "remove") | .detail.reason == "left the company"' "$TMP/log.json" \
    >/dev/null || later "the removal's reason is not in the log's detail: $(jq -c \
    '.[] | select(.type == "remove")' "$TMP/log.json")"
jqe '.[0].type == "create" and (map(.ts_ms) == (map(.ts_ms) | sort))' "$TMP/log.json" \
    >/dev/null || fail "the log is not oldest first"
p f network log >"$TMP/log.txt"
grep -q "left the company" "$TMP/log.txt" || later "network log text: no reason"
[ "$(wc -l <"$TMP/log.txt")" = "$(jq length "$TMP/log.json")" ] || fail "network log text lines"
[ "$(p f network log --limit 2 --json | jq length)" = 2 ] || fail "network log --limit 2"
for cmd in "network show" "network log" "invite list"; do
    # shellcheck disable=SC2086
    n=$(p f $cmd --json | jq -s length)
    [ "$n" = 1 ] || fail "'$cmd --json' printed $n values"
done

# --- leaving -----------------------------------------------------------------------------------
p j1 network leave --json | jqe --arg n "$NET_ID" '.left and .id == $n' >/dev/null \
    || fail "network leave"
show j1 '.mode == "open"' || fail "j1 not in open mode after leaving"
wait_until 15 show f --arg j "$J1_ID" '.members | all(.id != $j)' \
    || fail "f still lists j1 after it left: $(p f network show --json)"
p f network log --json | jqe --arg j "$J1_ID" '.[-1] | .type == "remove" and .author == $j and
    .target == $j' >/dev/null || fail "the leave is not in the log"
[ ${#LATER[@]} = 0 ] || fail "${#LATER[@]} check(s) failed on the way: $(printf '\n  %s' "${LATER[@]}")"
echo "ok"

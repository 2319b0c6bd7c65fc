#!/bin/bash
# CLI and identity: init, id, key file mode, sealed keys and passphrases,
# one daemon per home, clear errors, contacts, safety numbers, --json.
. "$(dirname "$0")/lib.sh"

p a init >/dev/null || fail "init"
[ "$(stat -c %a "$TMP/a/identity.key")" = 600 ] || fail "identity.key is not mode 0600"
[ "$(stat -c %a "$TMP/a")" = 700 ] || fail "home is not mode 0700"
p a init 2>"$TMP/err" && fail "init overwrote an identity"
grep -q "refusing to overwrite" "$TMP/err" || fail "init refusal unclear"
ID=$(p a id --json | jq -r .id)
[ ${#ID} = 52 ] || fail "node id is not 52 characters: $ID"
[ "$(p a id --json | jq -r .short_id)" = "${ID:0:8}" ] || fail "short id"
p a id | grep -q "fingerprint:" || fail "id text output"

# Sealed identity: parleyd needs the passphrase and rejects a wrong one.
echo "correct horse" >"$TMP/pass"; echo "wrong" >"$TMP/bad"
p s init --passphrase-file "$TMP/pass" >/dev/null || fail "sealed init"
p s id --json | jqe .id >/dev/null || fail "id of a sealed key needs no passphrase"
"$BIN/parleyd" --home "$TMP/s" --listen tcp://127.0.0.1:* 2>"$TMP/err" && fail "started sealed"
grep -q "passphrase" "$TMP/err" || fail "no clear message for a sealed key"
"$BIN/parleyd" --home "$TMP/s" --passphrase-file "$TMP/bad" 2>"$TMP/err" && fail "bad pass"
grep -q "bad passphrase" "$TMP/err" || fail "no clear message for a bad passphrase"
node_start s --passphrase-file "$TMP/pass"
[ "$(p s status --json | jq -r .id)" = "$(p s id --json | jq -r .id)" ] || fail "sealed node id"

# No daemon: a clear message, exit 3.
p a status 2>"$TMP/err"; [ $? = 3 ] || fail "no-daemon exit code"
grep -q "no parleyd is running" "$TMP/err" || fail "no-daemon message"

node_start a
[ "$(stat -c %a "$TMP/a/api.sock")" = 600 ] || fail "api.sock is not mode 0600"
"$BIN/parleyd" --home "$TMP/a" --listen tcp://127.0.0.1:* 2>"$TMP/err"
[ $? = 3 ] || fail "second parleyd on one home was not refused"
grep -q "already running" "$TMP/err" || fail "second-daemon message"

# Errors: malformed id, unknown peer, bad params.
p a send nosuchpeer hi 2>"$TMP/err" && fail "send to unknown peer"
grep -q "unknown peer" "$TMP/err" || fail "unknown-peer message: $(cat "$TMP/err")"
p a contacts add NOTANID bob 2>"$TMP/err" && fail "malformed id accepted"
grep -q "malformed node id" "$TMP/err" || fail "malformed-id message"
p a send "$ID" hi 2>"$TMP/err" && fail "message to self"

# Contacts, key change warning, verify, safety numbers agree on both sides.
SID=$(p s id --json | jq -r .id)
p a contacts add "$SID" sam >/dev/null || fail "contacts add"
p a contacts list --json | jqe '.[0].name == "sam" and .[0].verified == false' >/dev/null \
    || fail "contacts list"
OTHER=$(node_init o)
p a contacts add "$OTHER" sam 2>"$TMP/err" && fail "silent key change"
grep -q "KEY CHANGED" "$TMP/err" || fail "key change was not loud"
p a contacts verify sam --json | jqe .verified >/dev/null || fail "verify"
p a safety sam --json | jqe '.verified and (.safety_number | length == 60)' >/dev/null \
    || fail "safety"
S1=$(p a safety sam --json | jq -r .safety_number)
p s contacts add "$ID" alice >/dev/null
S2=$(p s safety alice --json | jq -r .safety_number)
[ "$S1" = "$S2" ] || fail "safety numbers differ: $S1 / $S2"
p a safety "${SID:0:8}" --json >/dev/null || fail "short id did not resolve"
p a contacts remove sam --json | jqe .removed >/dev/null || fail "remove"
p a contacts remove sam 2>/dev/null && fail "removed twice"

# history pages: the node answers at most 1000 per call (limit 0 too); the CLI
# pages back with `before` for more. OTHER never runs: these stay queued.
for i in $(seq 0 1002); do p a send "$OTHER" "m$i" >/dev/null || fail "send m$i"; done
[ "$(p a history "$OTHER" --limit 0 --json | jq length)" = 1003 ] || fail "history --limit 0"
p a history "$OTHER" --limit 1002 --json | jqe 'length == 1002 and .[0].text == "m1"' \
    >/dev/null || fail "history --limit 1002"
p a history "$OTHER" --limit 3 | tail -1 | grep -q "m1002" || fail "history --limit 3"
[ "$(p a history "$OTHER" --limit 0 | wc -l)" = 1003 ] || fail "history text over pages"

# --json prints exactly one JSON value for each command.
for cmd in "status" "peers" "contacts list" "id"; do
    # shellcheck disable=SC2086
    n=$(p a $cmd --json | jq -s length)
    [ "$n" = 1 ] || fail "'$cmd --json' printed $n values"
done
node_stop a || fail "parleyd did not stop cleanly"
grep -q "stopped cleanly" "$(node_log a)" || fail "no clean-stop message"
[ -S "$TMP/a/api.sock" ] && fail "api.sock left behind"
echo "ok"

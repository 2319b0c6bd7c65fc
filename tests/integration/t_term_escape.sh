#!/bin/bash
# A hostile message on the terminal: A sends B text full of escape sequences
# (clear screen, window title, colour), a C1 CSI, a bidi override, and a CR LF
# followed by a line made to look like an incoming message from someone else.
# B's `parley history` and `parley watch` must show it with no raw control
# byte, no C1 or bidi control, and the forged line never at the start of a
# line; with --json both still give the exact text (proto/textsafe.h).
. "$(dirname "$0")/lib.sh"

pair a b
p b watch >"$TMP/watch.b" 2>&1 &
PIDS[watch]=$!
p b watch --json >"$TMP/watch.b.json" 2>/dev/null &
PIDS[watchj]=$!
sleep 0.3

FORGED='2026-01-01 00:00:00  mallory -> you  [received] forged'
# ESC[2J, ESC]0;title BEL, a CSI colour, U+009B (C1 CSI) as UTF-8, U+202E
# (right-to-left override), and CR LF with the forged line.
TEXT=$'hi \e[2J\e]0;pwned title\a\e[31mred\e[0m \xc2\x9b31m c1 \xe2\x80\xae desrever\r\n'"$FORGED"
printf '%s' "$TEXT" >"$TMP/sent"

p a send "$B_ID" "$TEXT" >/dev/null || fail "send"
EXPECT=1 wait_until 10 count_is b "$A_ID" received || fail "b did not receive"

# no_raw FILE WHAT: FILE holds no byte a terminal would act on and no C1 or
# bidi control; the forged line never starts a line; the message is there,
# escaped, and its second line is marked as the continuation of the first.
no_raw() {
    local f=$1 what=$2 bad
    # od, byte by byte: any C0 but LF, or DEL.
    bad=$(od -An -v -tx1 "$f" | tr -s ' ' '\n' | grep -E '^(0[0-9a-f]|1[0-9a-f]|7f)$' \
        | grep -vx 0a | sort -u | tr '\n' ' ')
    [ -z "$bad" ] || fail "$what: raw control bytes: $bad"
    LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f]' "$f" && fail "$what: raw control bytes (grep)"
    LC_ALL=C grep -qP '\xc2[\x80-\x9f]' "$f" && fail "$what: a C1 control"
    LC_ALL=C grep -qP '\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]|\xd8\x9c' "$f" \
        && fail "$what: a bidi control"
    grep -q '^2026-01-01 00:00:00  mallory' "$f" && fail "$what: the forged line starts a line"
    grep -q 'mallory' "$f" || fail "$what: the forged text is not shown at all"
    grep -qF '^[[2J^[]0;pwned title^G^[[31mred^[[0m <U+009B>31m c1 <U+202E> desrever^M' "$f" \
        || fail "$what: the escapes are not shown as expected"
    grep -qxF "  | $FORGED" "$f" || fail "$what: the second line is not marked as a continuation"
    # Every line is a message header of the CLI's own, or a marked continuation.
    grep -vE '^([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}  (from  |you ->) |  \| |delivery |peer )' \
        "$f" && fail "$what: a line that is neither ours nor marked"
    return 0
}

p b history "$A_ID" >"$TMP/history.b" || fail "history"
no_raw "$TMP/history.b" "history on b"
[ "$(grep -c '^[0-9]' "$TMP/history.b")" = 1 ] || fail "history: not exactly one message line"
p a history "$B_ID" >"$TMP/history.a" || fail "history on a"
no_raw "$TMP/history.a" "history on a (the sender)"

wait_until 10 grep -q 'mallory' "$TMP/watch.b" || fail "watch showed no message"
no_raw "$TMP/watch.b" "watch on b"

# --json is the data, unchanged: the exact text, control bytes and all.
p b history "$A_ID" --json | jq -j '.[0].text' >"$TMP/history.json.text"
cmp -s "$TMP/sent" "$TMP/history.json.text" || fail "history --json text differs"
wait_until 10 grep -q '"method":"message"' "$TMP/watch.b.json" || fail "watch --json: no message"
jq -j 'select(.method == "message") | .params.text' "$TMP/watch.b.json" >"$TMP/watch.json.text"
cmp -s "$TMP/sent" "$TMP/watch.json.text" || fail "watch --json text differs"
echo "ok"

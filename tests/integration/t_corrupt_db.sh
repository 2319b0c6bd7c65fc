#!/bin/bash
# A corrupt or missing database: a stopped node's parley.db with pages
# overwritten in the middle (dd conv=notrunc, random bytes) is refused at
# start with what to do; `parley recover` (refused while parleyd runs) saves
# what can be read, keeps the damaged file aside, and the node starts with
# the history that survived. A truncated file is refused as damaged; a
# zero-length one, identity.key present, is refused unless --new-db.
. "$(dirname "$0")/lib.sh"

N=80
pair a b
H=$(home a)
PAD=$(printf 'x%.0s' $(seq 1 1500))
for i in $(seq 1 $N); do
    p b send "$A_ID" "message $i $PAD" >/dev/null || fail "send $i"
done
EXPECT=$N wait_until 30 count_is a "$B_ID" || fail "a did not get the $N messages"
p a recover 2>"$TMP/err" && fail "recover ran beside a running parleyd"
grep -q "is running on" "$TMP/err" || fail "recover refusal unclear: $(cat "$TMP/err")"
node_stop a || fail "a did not stop cleanly"
node_stop b

start_refused() { # start_refused PATTERN...: parleyd on a must exit, saying each PATTERN
    timeout 20 "$BIN/parleyd" --home "$H" --listen tcp://127.0.0.1:* --no-mdns 2>"$TMP/err" \
        && fail "parleyd started on a bad parley.db"
    local pat
    for pat in "$@"; do
        grep -qF -- "$pat" "$TMP/err" || fail "start refusal lacks '$pat': $(cat "$TMP/err")"
    done
}

# Overwrite pages in the middle of the file.
cp "$H/parley.db" "$TMP/good.db"
PAGES=$(($(stat -c %s "$H/parley.db") / 4096))
[ "$PAGES" -gt 40 ] || fail "database too small to damage: $PAGES pages"
dd if=/dev/urandom of="$H/parley.db" bs=4096 seek=$((PAGES / 2)) count=4 conv=notrunc \
    status=none || fail "dd"
start_refused "parley.db is damaged (" "keep a copy" "parley --home $H recover"

OUT=$(p a recover --json) || fail "recover failed"
KEPT=$(jq '.tables[] | select(.table == "messages") | .kept' <<<"$OUT")
ENVS=$(jq '.tables[] | select(.table == "envelopes") | .kept' <<<"$OUT")
LOSS=$(jq '[.tables[] | .stretches] | add' <<<"$OUT")
# Where the four pages fall depends on the layout: usually on table pages
# (rows lost, LOSS >= 1), but pages of an index only lose nothing.
[ "$LOSS" -ge 0 ] || fail "no per-table report: $OUT"
[ "$KEPT" -ge 1 ] || fail "no message kept: $OUT"
[ "$KEPT" -le $N ] || fail "kept $KEPT of $N messages: $OUT"
DAMAGED=$(jq -r .damaged <<<"$OUT")
[ -f "$DAMAGED" ] || fail "the damaged file was not kept: $DAMAGED"
case "$DAMAGED" in "$H/parley.db.damaged-"*) ;; *) fail "damaged file name: $DAMAGED" ;; esac
cmp -s "$DAMAGED" "$H/parley.db" && fail "parley.db is still the damaged file"
[ "$(stat -c %a "$H/parley.db")" = 600 ] || fail "recovered parley.db is not mode 0600"

node_start a
[ "$(history_count a "$B_ID" | tail -n 1)" = "$KEPT" ] || fail "history is not the $KEPT kept"
p a history "$B_ID" --limit 0 --json | jqe '.[0].text | startswith("message ")' >/dev/null \
    || fail "the history that survived does not read"
node_stop a || fail "a did not stop cleanly after recovery"

# A truncated file is damaged too.
cp "$TMP/good.db" "$H/parley.db"
truncate -s $((PAGES / 2 * 4096)) "$H/parley.db"
start_refused "parley.db is damaged (" "parley --home $H recover"

# Zero length, identity.key present: refused, unless --new-db.
: >"$H/parley.db"
start_refused "parley.db is empty" "identity.key exists" "parleyd --new-db"
p a recover 2>"$TMP/err" && fail "recover of an empty file"
grep -q "nothing to recover" "$TMP/err" || fail "empty recover message: $(cat "$TMP/err")"
node_start a --new-db
[ "$(history_count a "$B_ID" | tail -n 1)" = 0 ] || fail "--new-db did not start empty"
node_stop a
echo "ok t_corrupt_db: kept $KEPT of $N messages, $ENVS envelopes ($LOSS unreadable stretches)"

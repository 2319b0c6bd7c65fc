#!/bin/bash
# Seeds from HOME/config.json: a node reaches its seed without --seed; a bad
# config file stops parleyd with a clear message naming the file.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local"
node_start a
A_ID=$(nid a)
mkdir -m 700 "$TMP/b"
printf '{"seeds": ["%s#%s"]}\n' "$(endpoint a)" "$A_ID" >"$TMP/b/config.json"
node_start b
B_ID=$(nid b)
wait_until 20 online b "$A_ID" || fail "config seed not used"
p b peers --json | jqe '.[0].source == "seed"' >/dev/null || fail "source"
node_stop b
printf '{"seeds": ["tcp://nowhere"]}\n' >"$TMP/b/config.json"
"$BIN/parleyd" --home "$TMP/b" --no-mdns --no-local 2>"$TMP/err" && fail "bad config accepted"
grep -q "config.json" "$TMP/err" || fail "unclear message: $(cat "$TMP/err")"
printf '{"sedes": []}\n' >"$TMP/b/config.json"
"$BIN/parleyd" --home "$TMP/b" --no-mdns --no-local 2>"$TMP/err" && fail "typo accepted"
grep -q 'unknown key "sedes"' "$TMP/err" || fail "typo message: $(cat "$TMP/err")"
echo "ok"

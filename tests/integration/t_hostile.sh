#!/bin/bash
# A peer that passes CURVE and then sends replayed, equivocating, forged,
# tampered, future-dated, foreign-scope, oversized and garbage input: each is
# rejected and counted, only the two genuine messages are stored, and the
# node keeps serving (it ACKs the last genuine envelope, and its API answers).
. "$(dirname "$0")/lib.sh"
node_start a
A_ID=$(nid a)
H_ID=$("$BIN/hostile_peer" "$(endpoint a)" "$A_ID" | head -n 1) || fail "hostile_peer run"
[ ${#H_ID} = 52 ] || fail "hostile_peer did not finish: $H_ID"
p a status --json >"$TMP/st.json"
jqe '.rejected | .duplicate >= 1 and .equivocation == 1 and .bad_signature >= 2 and
       .future == 1 and .not_ours == 1 and .bad_frame >= 3 and
       .bad_address == 3' "$TMP/st.json" >/dev/null \
    || fail "counters: $(jq -c .rejected "$TMP/st.json")"
jqe '.log.equivocations == 1' "$TMP/st.json" >/dev/null || fail "no evidence kept"
p a history "$H_ID" --json | jqe 'map(.text) == ["valid 1", "valid 2"]' >/dev/null \
    || fail "history: $(p a history "$H_ID" --json | jq -c 'map(.text)')"
grep -q "equivocation by" "$(node_log a)" || fail "equivocation not logged"
kill -0 "${PIDS[a]}" || fail "node died"
echo "ok"

#!/bin/bash
# A burst of 1,000 DMs arrives exactly once and in order; the receiver is
# killed with SIGKILL mid-burst and restarted: nothing lost, nothing doubled.
# The backlog reaches the restarted receiver in frames of many envelopes,
# whose signatures its helper thread checks beside its loop.
. "$(dirname "$0")/lib.sh"
N=${BURST:-1000}
pair a b
LISTEN_A=$(endpoint a)
for i in $(seq -w 1 "$N"); do
    p b send "$A_ID" "m-$i" >/dev/null || fail "send $i"
    if [ "$i" = "$(printf "%0${#N}d" $((N / 3)))" ]; then
        node_kill a
    fi
    if [ "$i" = "$(printf "%0${#N}d" $((N / 2)))" ]; then
        LISTEN=$LISTEN_A node_start a --verify-threads 1
    fi
done
EXPECT=$N wait_until 120 count_is a "$B_ID" received || fail "a has $(history_count a "$B_ID")"
p a history "$B_ID" --limit 0 --json >"$TMP/h.json"
jqe --argjson n "$N" '[.[].text] | length == $n and (unique | length) == $n' "$TMP/h.json" \
    >/dev/null || fail "duplicates or losses"
jqe '[.[].text] == ([.[].text] | sort)' "$TMP/h.json" >/dev/null || fail "out of order"
jqe '[.[].seq] == ([.[].seq] | sort) and (map(.seq) | unique | length) == length' \
    "$TMP/h.json" >/dev/null || fail "seq order"
EXPECT=$N wait_until 120 count_is b "$A_ID" delivered || fail "not all delivered"
p a status --json >"$TMP/s.json"
jqe '.verify.threads == 1 and .verify.running == 1 and .verify.helped > 0' "$TMP/s.json" \
    >/dev/null || fail "no helper checked an envelope: $(jq -c .verify "$TMP/s.json")"
echo "ok"

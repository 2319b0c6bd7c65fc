#!/bin/bash
# `make run` (tools/run.sh) in a real terminal: with no node for the home it
# starts one, opens the chat, and stops the node when the chat quits,
# saying so; with a node already running it opens the chat on it and leaves
# the node running, saying that.
. "$(dirname "$0")/lib.sh"

H=$TMP/home
# Loopback only, no mDNS: what a test may send.
RUN=(env PARLEY_HOME="$H" ARGS="--no-mdns --listen tcp://127.0.0.1:*" PARLEY_RUNTIME_DIR="$TMP/run"
    sh "$ROOT/tools/run.sh" "$BUILD")

# 1. No node: one is started for the chat, and stopped after it.
tui_start run 100 30 sh -c '"$@"; echo "exit $?"; sleep 30' sh "${RUN[@]}"
wait_screen 20 run "connected to your node"
wait_screen 5 run "your id: "
[ -S "$H/api.sock" ] || fail "no node answers in $H"
"$BIN/parley" --home "$H" status >/dev/null || fail "the node does not answer"
type_line run "/quit"
wait_screen 15 run "parley: your node stopped"
wait_screen 5 run "exit 0"
wait_until 10 sh -c "! '$BIN/parley' --home '$H' status" || fail "the node still runs"
tui run kill-server

# 2. A node already running: the chat attaches, and the node stays.
LISTEN= NODE_HOME_PREFIX= node_start home
tui_start run2 100 30 sh -c '"$@"; echo "exit $?"; sleep 30' sh "${RUN[@]}"
wait_screen 20 run2 "connected to your node"
type_line run2 "/quit"
wait_screen 15 run2 "parley: your node keeps running"
p home status >/dev/null || fail "the node that ran before was stopped"
echo "ok"

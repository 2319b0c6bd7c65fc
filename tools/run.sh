#!/bin/sh
# tools/run.sh — `make run`: your node and its chat.
#
# If no node runs for the home ($PARLEY_HOME, else $XDG_DATA_HOME/parley,
# else ~/.local/share/parley), starts parleyd in the background (a new
# identity on first use; its log in HOME/parleyd.log), waits until it
# answers, and opens `parley chat`. Quitting the chat stops the node only if
# this script started it, and says which it was. Extra parleyd options:
#   make run ARGS="--seed tcp://HOST:PORT#ID"
BUILD=${1:-build}
BIN=$(cd "$(dirname "$0")/.." && pwd)/$BUILD
HOME_DIR=${PARLEY_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/parley}
pl() { "$BIN/parley" --home "$HOME_DIR" "$@"; }

if pl status >/dev/null 2>&1; then
    pl chat
    rc=$?
    echo "parley: your node keeps running (it was running before the chat)"
    exit $rc
fi

mkdir -p "$HOME_DIR" && chmod 700 "$HOME_DIR" || exit 1
echo "parley: starting your node (home $HOME_DIR, log $HOME_DIR/parleyd.log)"
# shellcheck disable=SC2086
"$BIN/parleyd" --home "$HOME_DIR" ${ARGS:-} >>"$HOME_DIR/parleyd.log" 2>&1 &
NODE=$!
stop_node() {
    kill -TERM "$NODE" 2>/dev/null
    wait "$NODE" 2>/dev/null
}
trap 'stop_node; exit 130' INT TERM
tries=0
until pl status >/dev/null 2>&1; do
    if ! kill -0 "$NODE" 2>/dev/null || [ $tries -ge 300 ]; then
        echo "parley: the node did not start; the end of its log:" >&2
        tail -n 20 "$HOME_DIR/parleyd.log" >&2
        stop_node
        exit 1
    fi
    tries=$((tries + 1))
    sleep 0.1
done
pl chat
rc=$?
stop_node
echo "parley: your node stopped (it was started for this chat; run parleyd to keep one running)"
exit $rc

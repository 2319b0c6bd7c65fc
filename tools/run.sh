#!/bin/sh
# tools/run.sh — `make run`: starts your node in the foreground (home from
# $PARLEY_HOME or ~/.local/share/parley) and says how to chat from another
# terminal. Extra parleyd options: make run ARGS="--seed tcp://HOST:PORT#ID".
BUILD=${1:-build}
BIN=$(cd "$(dirname "$0")/.." && pwd)/$BUILD
cat <<MSG
Parley: starting your node. Stop it with Ctrl-C.
In another terminal (add --home DIR if you set one):
  $BIN/parley id                       your id: give it to the people you talk to
  $BIN/parley contacts add ID NAME     name a colleague's id
  $BIN/parley send NAME "hello"        send a direct message
  $BIN/parley watch                    see messages and receipts as they come
  $BIN/parley history NAME             the conversation
A colleague on another machine connects with:
  parleyd --seed tcp://YOUR-ADDRESS:PORT#YOUR-ID   (PORT is printed below)
MSG
# shellcheck disable=SC2086
exec "$BIN/parleyd" ${ARGS:-}

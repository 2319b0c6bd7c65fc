#!/bin/bash
# tools/bench/chat.sh — how fast the terminal chat (`parley chat`) is, as a
# person at the keyboard sees it, and what it holds in memory.
#
#   tools/bench/chat.sh                          (N=30 lines, 10,000 messages)
#   CHAT_N=50 CHAT_MSGS=20000 tools/bench/chat.sh
#
# Two parleyd nodes a and b on loopback (tests/integration/lib.sh, `pair`),
# each chat in a private tmux server of COLS x ROWS (120x40; tests/common.sh
# tui_start), read back with `tmux capture-pane`. It prints:
#   1. keystroke to the peer's screen: both chats with their DM to each other
#      open; CHAT_N times, from the moment the typing of a unique line into
#      a's chat starts (type_line: the text, then Enter) until b's screen
#      shows it; p50 and p90 in ms. In the same loop, the floor: from the
#      moment a unique text (no Enter) is typed into a's chat until a's
#      own screen shows it on the input line (keyboard -> tmux -> chat ->
#      tmux), measured the same way; then the ratio (line / floor).
#   2. a 10,000-message conversation (CHAT_MSGS): b sends them to a through
#      its API socket (python3, pipelined JSON-RPC `send`, at most 256
#      outstanding), until a's `conversations` counts them all unread; the
#      send rate is printed too. Then a fresh chat of a, on an empty DM
#      (@carol, a node never started), and:
#        open: from Alt-2 (@bob, the 10,000) until the newest message's text
#              is on the screen;
#        page back: 20 PageUps, one at a time, each timed from the key until
#              the screen shows the message that the view's middle row holds
#              after that PageUp (the chat scrolls ROWS-5 rows a page and
#              every message here is one row, so the k-th PageUp's target is
#              the message k*(ROWS-5) + (ROWS-3)/2 back from the newest, by
#              a's own history order; it is not on the screen before). The
#              total and the slowest single PageUp are printed.
#   3. memory: VmRSS of the chat process (the tmux pane's process) with the
#      empty DM open, with the 10,000-message DM open, and after the 20
#      PageUps.
#
# Screen polling is a tight loop of `tmux capture-pane` (no sleep); the
# time of a sample is when the capture that first shows the text returns,
# so every figure is late by up to one capture (its mean is printed as the
# resolution). Figure 1's message time holds two tmux commands to type
# (text, Enter), the floor one. Progress goes to stderr, figures to stdout.
#
# Binaries come from $BUILD (default build, relative to the repository
# root); run `make all` first. Needs tmux, python3 and jq. Everything runs
# in a temporary directory and is ended by PID on exit (lib.sh's trap).
# About 40 s on 2 busy cores; the 10,000 sends take 5-15 s of it.
set -u
export LC_ALL=C
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/../.." || exit 2
BUILD=${BUILD:-build}
N=${CHAT_N:-30}
MSGS=${CHAT_MSGS:-10000}
COLS_=120
ROWS_=40
PAGEUPS=20

say() { echo "chat: $*" >&2; }

for b in parleyd parley; do
    [ -x "$BUILD/$b" ] || { say "missing $BUILD/$b: run \`make all\` first (BUILD=$BUILD)"; exit 2; }
done
for cmd in tmux python3 jq awk; do
    command -v "$cmd" >/dev/null || { say "missing $cmd"; exit 2; }
done
if ! [[ $N =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ]; then
    say "CHAT_N must be a positive integer"
    exit 2
fi
if ! [[ $MSGS =~ ^[0-9]+$ ]] || [ "$MSGS" -lt 1000 ]; then
    say "CHAT_MSGS must be an integer >= 1000 (the PageUps walk back 718 messages)"
    exit 2
fi

. tests/integration/lib.sh

START=$SECONDS
RAND=$RANDOM$RANDOM
PAGE=$((ROWS_ - 5))   # rows one PageUp scrolls (chat.c: LINES - 5)
VIEW=$((ROWS_ - 3))   # rows of the message view (rows 1 .. LINES-3)

# --- helpers -----------------------------------------------------------------

# The JSON-RPC client: flood (pipelined sends), unread (from `conversations`),
# texts (the whole DM, oldest first, paged back with `before`).
cat >"$TMP/rpc.py" <<'PY'
import json, socket, sys

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s

def replies(s):
    buf = b""
    while True:
        d = s.recv(1 << 20)
        if not d:
            sys.exit("rpc: the node closed the API connection")
        buf += d
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)

def call(s, rd, method, params, id_=1):
    s.sendall((json.dumps({"jsonrpc": "2.0", "id": id_, "method": method,
                           "params": params}) + "\n").encode())
    r = next(rd)
    if "error" in r:
        sys.exit("rpc: %s: %s" % (method, r["error"]))
    return r["result"]

mode, path = sys.argv[1], sys.argv[2]
s = connect(path)
rd = replies(s)
if mode == "flood":                 # flood SOCK PEER N WIDTH
    peer, n, width = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    window, sent, got = 256, 0, 0
    while got < n:
        batch = []
        while sent < n and sent - got < window:
            sent += 1
            batch.append(json.dumps({"jsonrpc": "2.0", "id": sent, "method": "send",
                                     "params": {"peer": peer,
                                                "text": "flood-%0*d" % (width, sent)}}))
        if batch:
            s.sendall(("\n".join(batch) + "\n").encode())
        r = next(rd)
        if "error" in r:
            sys.exit("rpc: send %s: %s" % (r.get("id"), r["error"]))
        got += 1
elif mode == "unread":              # unread SOCK PEER
    res = call(s, rd, "conversations", {})
    print(sum(c.get("unread", 0) for c in res["conversations"] if c["peer"] == sys.argv[3]))
elif mode == "texts":               # texts SOCK PEER
    out, before = [], None
    while True:
        params = {"peer": sys.argv[3], "limit": 1000}
        if before:
            params["before"] = before
        page = call(s, rd, "history", params)
        if not page or page[0]["msg_id"] == before:
            break
        out = page + out
        before = page[0]["msg_id"]
    for m in out:
        print(m["text"].replace("\n", " "))
PY

# poll_for NAME TEXT SECONDS: captures NAME's screen in a tight loop until
# it holds TEXT; SEEN_US is when that capture returned (microseconds). False
# on timeout. Counts captures and their time for the resolution.
CAPTURES=0
CAPTURE_US=0
poll_for() {
    local n=$1 text=$2 t s end
    t=${EPOCHREALTIME/./}
    end=$((t + $3 * 1000000))
    while :; do
        s=$(tmux -S "$NODE_DIR/tmux-$n.sock" capture-pane -p -t main 2>/dev/null)
        SEEN_US=${EPOCHREALTIME/./}
        CAPTURES=$((CAPTURES + 1))
        CAPTURE_US=$((CAPTURE_US + SEEN_US - t))
        t=$SEEN_US
        [[ $s == *"$text"* ]] && return 0
        [ "$SEEN_US" -lt "$end" ] || return 1
    done
}
poll_or_fail() { # poll_or_fail NAME TEXT SECONDS
    poll_for "$@" && return 0
    echo "--- screen $1:" >&2
    screen "$1" | sed 's/^/  | /' >&2
    fail "screen $1 never showed '$2' within $3 s"
}
screen_lacks() { ! screen_has "$@"; }
# pct P SAMPLES...: the P-th percentile (nearest rank) of integer samples.
pct() {
    local p=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v p="$p" '{ v[NR] = $1 }
        END { r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}
ms() { awk -v u="$1" 'BEGIN { printf "%.0f", u / 1000 }'; }     # ms MICROSECONDS
secs() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1e6 }'; }    # secs MICROSECONDS
# rss NAME: VmRSS (kB) of the process running in NAME's pane.
rss() {
    local pid
    pid=$(tui "$1" display-message -p -t main '#{pane_pid}') || fail "no pane in $1"
    awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
}
# quit_chat NAME: /quit in the chat, then its tmux server is stopped (a
# server run with -D stays up with no session left).
quit_chat() {
    local pid
    pid=$(tui "$1" display-message -p -t main '#{pane_pid}')
    type_line "$1" /quit
    wait_until 10 eval "! kill -0 $pid" || say "the chat in $1 did not quit on /quit"
    node_stop "tmux-$1"
}

# --- setup -------------------------------------------------------------------

say "starting nodes a and b"
pair a b
C_ID=$(node_init c) || fail "node_init c"   # never started: an empty DM
p a contacts add "$B_ID" bob >/dev/null || fail "contacts add bob"
p a contacts add "$C_ID" carol >/dev/null || fail "contacts add carol"
p b contacts add "$A_ID" alice >/dev/null || fail "contacts add alice"

# --- 1. keystroke to the peer's screen ------------------------------------------

tui_start a "$COLS_" "$ROWS_" "$BIN/parley" --home "$(home a)" chat --no-bell
tui_start b "$COLS_" "$ROWS_" "$BIN/parley" --home "$(home b)" chat --no-bell
wait_screen 10 a "connected to your node"
wait_screen 10 b "connected to your node"
keys a M-2
keys b M-2
wait_screen 5 a "bob ("
wait_screen 5 b "alice ("
wait_screen 5 a "[bob]"
wait_screen 5 b "[alice]"
sleep 0.5

say "figure 1: $N lines typed in a's chat"
LAT=()
FLOOR=()
NOREAD=0
for i in $(seq -w 1 "$N"); do
    # The floor: typed, no Enter; seen on a's own input line; then erased.
    f="f$i-$RAND-floor"
    t0=${EPOCHREALTIME/./}
    tui a send-keys -t main -l -- "$f"
    poll_or_fail a "$f" 10
    FLOOR+=($((SEEN_US - t0)))
    keys a C-u
    wait_until 5 screen_lacks a "$f" || fail "a's input line kept '$f' after Ctrl-u"
    # The message: typed with Enter; seen on b's screen.
    m="m$i-$RAND-line"
    t0=${EPOCHREALTIME/./}
    type_line a "$m"
    poll_or_fail b "$m" 20
    LAT+=($((SEEN_US - t0)))
    # Settle: a shows it read (b's chat has it open at the bottom), so the
    # receipts of one line are not in flight during the next.
    wait_until 3 screen_has a "$m  [read]" || NOREAD=$((NOREAD + 1))
done
LAT50=$(pct 50 "${LAT[@]}")
LAT90=$(pct 90 "${LAT[@]}")
FL50=$(pct 50 "${FLOOR[@]}")
FL90=$(pct 90 "${FLOOR[@]}")
RES1=$(ms $((CAPTURE_US / CAPTURES)))
R50=$(awk -v a="$LAT50" -v b="$FL50" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
R90=$(awk -v a="$LAT90" -v b="$FL90" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
quit_chat a
quit_chat b

# --- 2. a 10,000-message conversation ----------------------------------------

W=${#MSGS}
[ "$W" -ge 5 ] || W=5
say "figure 2: b sends $MSGS messages to a"
t0=${EPOCHREALTIME/./}
python3 "$TMP/rpc.py" flood "$(home b)/api.sock" "$A_ID" "$MSGS" "$W" || fail "the flood failed"
t_sent=${EPOCHREALTIME/./}
unread_is_all() { [ "$(python3 "$TMP/rpc.py" unread "$(home a)/api.sock" "$B_ID")" = "$MSGS" ]; }
wait_until 150 unread_is_all \
    || fail "a holds $(python3 "$TMP/rpc.py" unread "$(home a)/api.sock" "$B_ID") of $MSGS"
t_held=${EPOCHREALTIME/./}
python3 "$TMP/rpc.py" texts "$(home a)/api.sock" "$B_ID" >"$TMP/texts" || fail "history of a"
HELD=$(grep -c '^flood-' "$TMP/texts")
[ "$HELD" = "$MSGS" ] || fail "a's history holds $HELD of the $MSGS messages"
TOTAL=$(wc -l <"$TMP/texts")
NEWEST=$(tail -n 1 "$TMP/texts")
# target K: the text K messages back from the newest (0: the newest).
target() { sed -n "$((TOTAL - $1))p" "$TMP/texts"; }
SEND_S=$(secs $((t_sent - t0)))
HELD_S=$(secs $((t_held - t0)))
RATE=$(awk -v n="$MSGS" -v u=$((t_sent - t0)) 'BEGIN { printf "%.0f", n / (u / 1e6) }')

say "figure 2: a's chat on the empty DM, then the $MSGS"
CAPTURES=0
CAPTURE_US=0
tui_start a2 "$COLS_" "$ROWS_" "$BIN/parley" --home "$(home a)" chat --no-bell
wait_screen 10 a2 "connected to your node"
wait_screen 5 a2 "3 @carol"
keys a2 M-3
wait_screen 5 a2 "carol ("
wait_screen 5 a2 "[carol]"
sleep 1
RSS_EMPTY=$(rss a2)

t0=${EPOCHREALTIME/./}
keys a2 M-2
poll_or_fail a2 "$NEWEST" 30
OPEN_US=$((SEEN_US - t0))
sleep 1
RSS_OPEN=$(rss a2)

PAGE_US=0
PAGE_MAX=0
for k in $(seq 1 "$PAGEUPS"); do
    want=$(target $((k * PAGE + VIEW / 2)))
    [ -n "$want" ] || fail "no message $((k * PAGE + VIEW / 2)) back from the newest"
    screen_lacks a2 "$want" || fail "'$want' is on the screen before PageUp $k"
    t0=${EPOCHREALTIME/./}
    keys a2 PPage
    poll_or_fail a2 "$want" 30
    d=$((SEEN_US - t0))
    PAGE_US=$((PAGE_US + d))
    [ "$d" -gt "$PAGE_MAX" ] && PAGE_MAX=$d
done
BACK=$((PAGEUPS * PAGE + VIEW / 2))
sleep 1
RSS_BACK=$(rss a2)
RES2=$(ms $((CAPTURE_US / CAPTURES)))
quit_chat a2

# --- the figures -------------------------------------------------------------

echo "chat: 1. keystroke to the peer's screen ($N lines, a types, b shows): p50 $(ms "$LAT50") ms, p90 $(ms "$LAT90") ms"
echo "chat:    floor (a types, a's own input line shows): p50 $(ms "$FL50") ms, p90 $(ms "$FL90") ms; ratio p50 ${R50}x, p90 ${R90}x (screen capture ~$RES1 ms)"
[ "$NOREAD" = 0 ] || echo "chat:    ($NOREAD of $N lines were not shown [read] on a within 3 s)"
echo "chat: 2. $MSGS DMs b->a through b's API: sent in $SEND_S s ($RATE/s), all held by a after $HELD_S s"
echo "chat:    open the $MSGS-message DM (Alt-2 until the newest is on the screen): $(ms "$OPEN_US") ms"
echo "chat:    page back $PAGEUPS PageUps ($BACK messages back): total $(ms "$PAGE_US") ms, slowest PageUp $(ms "$PAGE_MAX") ms (screen capture ~$RES2 ms)"
echo "chat: 3. chat VmRSS: empty DM open $RSS_EMPTY kB; $MSGS-message DM open $RSS_OPEN kB; after $PAGEUPS PageUps $RSS_BACK kB"
say "done in $((SECONDS - START)) s"

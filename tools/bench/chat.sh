#!/bin/bash
# tools/bench/chat.sh — how fast the terminal chat (`parley chat`) is, as a
# person at the keyboard sees it, and what it holds in memory.
#
#   tools/bench/chat.sh                          (N=30 lines, 10,000 messages)
#   CHAT_N=50 CHAT_MSGS=20000 tools/bench/chat.sh
#
# Two parleyd nodes a and b on loopback (tests/integration/lib.sh, `pair`),
# each chat in a private tmux server of COLS x ROWS (120x40; tests/common.sh
# tui_start). It prints:
#   1. keystroke to the peer's screen: both chats with their DM to each other
#      open; CHAT_N times, from the moment a unique line (the text, then
#      Enter) is typed into a's chat until b's chat has written it to its
#      terminal; p50 and p90 in ms. In the same loop, the floor: from the
#      moment a unique text (no Enter) is typed into a's chat until a's chat
#      has written it on its own input line (keyboard -> tmux -> chat ->
#      tmux), measured the same way; then the ratio (line / floor).
#   2. a 10,000-message conversation (CHAT_MSGS): b sends them to a through
#      its API socket (python3, pipelined JSON-RPC `send`, at most 256
#      outstanding; the texts are flood-NUMBER-TOKEN), until a's
#      `conversations` counts them all unread; the send rate is printed too.
#      Then a fresh chat of a, on an empty DM (@carol, a node never
#      started), and:
#        open: from Alt-2 (@bob, the 10,000) until the chat has written the
#              newest message's text;
#        page back: 20 PageUps, one at a time, each timed from the key until
#              the chat has written the message that the view's middle row
#              holds after that PageUp (the chat scrolls ROWS-5 rows a page
#              and every message here is one row, so the k-th PageUp's
#              target is the message k*(ROWS-5) + (ROWS-3)/2 back from the
#              newest, by a's own history order; it is not on the screen
#              before). The total and the slowest single PageUp are printed.
#   3. memory: VmRSS of the chat process (the tmux pane's process) with the
#      empty DM open, with the 10,000-message DM open, and after the 20
#      PageUps.
#
# Timing (tty.py below) reads what the chat writes, not its screen: python3
# attaches to a chat's tmux server in control mode twice. One client is
# read-only (`attach-session -r`: read-only and ignore-size); tmux sends it
# the pane's output as `%output %PANE DATA` lines as the chat writes it,
# and each read of them is stamped with time.monotonic(). The other
# (`-f ignore-size,no-output`) types: a key is a `send-keys` command written
# to its stdin, which the server runs at once; starting a `tmux send-keys`
# process instead would take 30 ms or more on a busy machine. A sample's t0
# is taken right before the command is written (figure 1's line: the text
# and Enter, two commands in one write); it ends at the read that completes
# the text's token (its last 8 letters) in the pane's output since t0, with
# tmux's \ooo escapes decoded. ncurses writes only the cells that change,
# so a token whose letter met the same letter in the same cell could be
# cut: tokens are random letters, upper case and lower case by turns
# (figure 1: sample by sample; figure 2: by pages of ROWS-5 messages), so
# that the row a text lands on, which held the text one sample or one page
# away, differs in every cell. After each sample, untimed, one
# `capture-pane` checks that the screen shows the whole text; a text that
# is on the screen but never came whole in the output fails the run. So a
# figure is the chat's own time plus tmux relaying its output and keys (as
# to a real terminal), to about a millisecond; "keys acked" is the median
# time from writing a sample's first command until tmux's answer was read
# (the key's way in, and back). Progress goes to stderr, figures to stdout.
#
# Binaries come from $BUILD (default build, relative to the repository
# root); run `make all` first. Needs tmux (3.2 or later, for attach -f),
# python3 and jq. Everything runs in a temporary directory and is ended by
# PID on exit (lib.sh's trap). About 40-60 s on 2 busy cores; the 10,000
# sends take 5-15 s of it.
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
PAGE=$((ROWS_ - 5))   # rows one PageUp scrolls (chat.c: LINES - 5)
VIEW=$((ROWS_ - 3))   # rows of the message view (rows 1 .. LINES-3)

# --- helpers -----------------------------------------------------------------

# Unique texts that survive ncurses' redraws (both helpers import it).
cat >"$TMP/tokens.py" <<'PY'
import random

LETTERS = ("ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnpqrstuvwxyz")
rng = random.Random()

def token(turn):
    """8 random letters, no two alike side by side; upper or lower case by turn."""
    out = ""
    while len(out) < 8:
        c = rng.choice(LETTERS[turn % 2])
        if not out or c != out[-1]:
            out += c
    return out
PY

# The JSON-RPC client: flood (pipelined sends), unread (from `conversations`),
# texts (the whole DM, oldest first, paged back with `before`).
cat >"$TMP/rpc.py" <<'PY'
import json, socket, sys

from tokens import token

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
if mode == "flood":                 # flood SOCK PEER N WIDTH PAGE
    peer, n, width, page = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    window, sent, got = 256, 0, 0
    while got < n:
        batch = []
        while sent < n and sent - got < window:
            sent += 1
            batch.append(json.dumps({"jsonrpc": "2.0", "id": sent, "method": "send",
                                     "params": {"peer": peer,
                                                "text": "flood-%0*d-%s" % (
                                                    width, sent, token(sent // page))}}))
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

# The timer (see the top): tmux control mode, one read-only client that
# reads a chat's output, one that types into it. Prints one line a sample
# ("floor US", "line US", "key US"), "noread K" after figure 1, and "ack US"
# for the first command of each sample: from writing it until tmux answered.
cat >"$TMP/tty.py" <<'PY'
import os, re, select, subprocess, sys, time

from tokens import token

OCTAL = re.compile(rb"\\([0-7]{3})")

def needle(text):                   # the token: what follows the last '-'
    return text.rsplit("-", 1)[-1].encode()

def us(seconds):
    return int(round(seconds * 1e6))

class Tty:
    def __init__(self, name, sock):
        self.name, self.sock = name, sock
        attach = ["tmux", "-S", sock, "-C", "attach-session", "-t", "main"]
        self.out = subprocess.Popen(attach + ["-r"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, bufsize=0)
        self.cmd = subprocess.Popen(attach + ["-f", "ignore-size,no-output"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.rest = {self.out.stdout.fileno(): b"", self.cmd.stdout.fileno(): b""}
        self.attached = set()       # the clients that reported %session-changed
        self.sent = []              # (written at, timed) of the commands not yet answered
        self.block = None           # the lines of a reply to one of our commands
        self.mark()

    def mark(self):                 # forgets the output read so far
        self.data, self.stamps, self.scanned = bytearray(), [], 0

    def feed(self, fd, chunk, now):
        lines = (self.rest[fd] + chunk).split(b"\n")
        self.rest[fd] = lines.pop()
        for line in lines:
            if line.startswith(b"%output "):
                data = line.split(b" ", 2)[2] if line.count(b" ") >= 2 else b""
                self.data += OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), data)
                self.stamps.append((len(self.data), now))
            elif line.startswith(b"%session-changed"):
                self.attached.add(fd)
            elif line.startswith(b"%exit"):
                die("the tmux control client of %s exited (%s)" % (self.name, line.decode(errors="replace")))
            elif line.startswith(b"%begin ") and line.endswith(b" 1"):
                self.block = []
            elif line.startswith((b"%end ", b"%error ")) and line.endswith(b" 1"):
                if line.startswith(b"%error"):
                    die("tmux (%s): %s" % (self.name, b" ".join(self.block or []).decode(errors="replace")))
                t, timed = self.sent.pop(0)
                if timed:
                    print("ack %d" % us(now - t))
                self.block = None
            elif self.block is not None:
                self.block.append(line)

    def send(self, *commands, timed=True):
        """Writes tmux commands to the typing client; the time right before."""
        line = "".join(c + "\n" for c in commands).encode()
        t = time.monotonic()
        os.write(self.cmd.stdin.fileno(), line)
        self.sent += [(t, timed)] + [(t, False)] * (len(commands) - 1)
        return t

    def seen(self, text):
        """When the read that completed text's token came, or None."""
        n = needle(text)
        i = self.data.find(n, max(0, self.scanned - len(n) + 1))
        self.scanned = len(self.data)
        if i < 0:
            return None
        end = i + len(n)
        return next(t for off, t in self.stamps if off >= end)

    def screen(self):
        r = subprocess.run(["tmux", "-S", self.sock, "capture-pane", "-p", "-t", "main"],
                           stdout=subprocess.PIPE)
        return r.stdout.decode(errors="replace")

    def close(self):
        for p in (self.out, self.cmd):
            p.stdin.close()
        for p in (self.out, self.cmd):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

TTYS = []

def die(msg, tty=None):
    if tty:
        sys.stderr.write("--- screen %s:\n" % tty.name)
        for line in tty.screen().splitlines():
            sys.stderr.write("  | %s\n" % line)
    sys.stdout.flush()
    sys.exit("tty: " + msg)

def pump(timeout):
    """Reads what any client wrote, waiting up to timeout; true if any."""
    fds = {fd: t for t in TTYS for fd in t.rest}
    ready, _, _ = select.select(list(fds), [], [], max(timeout, 0))
    for fd in ready:
        chunk = os.read(fd, 1 << 16)
        now = time.monotonic()
        if not chunk:
            die("a tmux control client of %s closed its output" % fds[fd].name)
        fds[fd].feed(fd, chunk, now)
    return bool(ready)

def drain():
    while pump(0):
        pass

def attach(name, sock):
    t = Tty(name, sock)
    TTYS.append(t)
    end = time.monotonic() + 10
    while len(t.attached) < 2:
        if time.monotonic() > end:
            die("tmux control mode did not attach to %s" % name)
        pump(end - time.monotonic())
    return t

def wait_for(tty, text, limit):
    """The time the chat in tty wrote text's token; fails after limit s."""
    start = time.monotonic()
    check = start + 2
    while True:
        t = tty.seen(text)
        if t is not None:
            return t
        now = time.monotonic()
        if now >= start + limit:
            die("%s never wrote '%s' within %d s" % (tty.name, text, limit), tty)
        if now >= check:            # rare: a slow sample; is it there already?
            if text in tty.screen():
                die("the screen of %s shows '%s', but its output never held '%s' whole"
                    % (tty.name, text, needle(text).decode()), tty)
            check = time.monotonic() + 2
        pump(min(start + limit, check) - now)

def until(limit, cond, screen=True):
    """Polls cond every 50 ms if it captures the screen, else at each read."""
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            return False
        pump(0.05 if screen else end - time.monotonic())
    return True

def verify(tty, text):
    """After a sample: its commands answered, and the screen shows text."""
    if not until(5, lambda: not tty.sent, screen=False):
        die("tmux did not answer the commands to %s" % tty.name)
    if text not in tty.screen():
        die("%s wrote '%s' but its screen does not show '%s'" % (tty.name, needle(text).decode(), text), tty)

def typed(text):                    # send-keys of a literal text
    assert re.fullmatch(r"[A-Za-z0-9-]+", text)
    return "send-keys -t main -l -- '%s'" % text

mode = sys.argv[1]
if mode == "fig1":                  # fig1 SOCK_A SOCK_B N
    a, b, n = attach("a", sys.argv[2]), attach("b", sys.argv[3]), int(sys.argv[4])
    w = len(str(n))
    noread = 0
    for i in range(1, n + 1):
        # The floor: typed, no Enter; written on a's own input line; erased.
        f = "f%0*d-%s" % (w, i, token(i))
        drain()
        a.mark()
        t0 = a.send(typed(f))
        print("floor %d" % us(wait_for(a, f, 10) - t0))
        verify(a, f)
        a.send("send-keys -t main C-u", timed=False)
        if not until(5, lambda: f not in a.screen()):
            die("a's input line kept '%s' after Ctrl-u" % f, a)
        # The message: typed with Enter; written by b's chat.
        m = "m%0*d-%s" % (w, i, token(i))
        drain()
        b.mark()
        t0 = a.send(typed(m), "send-keys -t main Enter")
        print("line %d" % us(wait_for(b, m, 20) - t0))
        verify(b, m)
        # Settle: a shows it read (b's chat has it open at the bottom), so
        # the receipts of one line are not in flight during the next.
        if not until(3, lambda: m + "  [read]" in a.screen()):
            noread += 1
    print("noread %d" % noread)
elif mode == "keys":                # keys NAME SOCK KEY TEXT [KEY TEXT ...]
    t = attach(sys.argv[2], sys.argv[3])
    steps = sys.argv[4:]
    for key, text in zip(steps[::2], steps[1::2]):
        if text in t.screen():
            die("'%s' is on the screen of %s before %s" % (text, t.name, key), t)
        drain()
        t.mark()
        t0 = t.send("send-keys -t main " + key)
        print("key %d" % us(wait_for(t, text, 30) - t0))
        verify(t, text)
else:
    die("unknown mode " + mode)
until(5, lambda: not any(t.sent for t in TTYS), screen=False)
for t in TTYS:
    t.close()
PY
# ack_ms FILE...: the median time tmux took to answer a sample's first
# typing command, in ms (one decimal).
ack_ms() {
    awk '$1 == "ack" { print $2 }' "$@" | sort -n \
        | awk '{ v[NR] = $1 } END { printf "%.1f", (NR ? v[int((NR + 1) / 2)] / 1000 : 0) }'
}
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
python3 "$TMP/tty.py" fig1 "$(tui_sock a)" "$(tui_sock b)" "$N" >"$TMP/fig1" \
    || fail "figure 1: the timer failed"
mapfile -t LAT < <(awk '$1 == "line" { print $2 }' "$TMP/fig1")
mapfile -t FLOOR < <(awk '$1 == "floor" { print $2 }' "$TMP/fig1")
NOREAD=$(awk '$1 == "noread" { print $2 }' "$TMP/fig1")
if [ "${#LAT[@]}" != "$N" ] || [ "${#FLOOR[@]}" != "$N" ]; then
    fail "figure 1: the timer gave ${#LAT[@]} lines and ${#FLOOR[@]} floors of $N"
fi
LAT50=$(pct 50 "${LAT[@]}")
LAT90=$(pct 90 "${LAT[@]}")
FL50=$(pct 50 "${FLOOR[@]}")
FL90=$(pct 90 "${FLOOR[@]}")
ACK1=$(ack_ms "$TMP/fig1")
R50=$(awk -v a="$LAT50" -v b="$FL50" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
R90=$(awk -v a="$LAT90" -v b="$FL90" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
quit_chat a
quit_chat b

# --- 2. a 10,000-message conversation ----------------------------------------

W=${#MSGS}
[ "$W" -ge 5 ] || W=5
say "figure 2: b sends $MSGS messages to a"
t0=${EPOCHREALTIME/./}
python3 "$TMP/rpc.py" flood "$(home b)/api.sock" "$A_ID" "$MSGS" "$W" "$PAGE" || fail "the flood failed"
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
tui_start a2 "$COLS_" "$ROWS_" "$BIN/parley" --home "$(home a)" chat --no-bell
wait_screen 10 a2 "connected to your node"
wait_screen 5 a2 "3 @carol"
keys a2 M-3
wait_screen 5 a2 "carol ("
wait_screen 5 a2 "[carol]"
sleep 1
RSS_EMPTY=$(rss a2)

python3 "$TMP/tty.py" keys a2 "$(tui_sock a2)" M-2 "$NEWEST" >"$TMP/open" \
    || fail "open: the timer failed"
OPEN_US=$(awk '$1 == "key" { print $2 }' "$TMP/open")
[ -n "$OPEN_US" ] || fail "open: the timer gave no sample"
sleep 1
RSS_OPEN=$(rss a2)

STEPS=()
for k in $(seq 1 "$PAGEUPS"); do
    want=$(target $((k * PAGE + VIEW / 2)))
    [ -n "$want" ] || fail "no message $((k * PAGE + VIEW / 2)) back from the newest"
    STEPS+=(PPage "$want")
done
python3 "$TMP/tty.py" keys a2 "$(tui_sock a2)" "${STEPS[@]}" >"$TMP/pages" \
    || fail "page back: the timer failed"
[ "$(grep -c '^key ' "$TMP/pages")" = "$PAGEUPS" ] || fail "page back: the timer gave too few samples"
PAGE_US=$(awk '$1 == "key" { s += $2 } END { print s }' "$TMP/pages")
PAGE_MAX=$(awk '$1 == "key" && $2 > m { m = $2 } END { print m + 0 }' "$TMP/pages")
BACK=$((PAGEUPS * PAGE + VIEW / 2))
sleep 1
RSS_BACK=$(rss a2)
ACK2=$(ack_ms "$TMP/open" "$TMP/pages")
quit_chat a2

# --- the figures -------------------------------------------------------------

echo "chat: 1. keystroke to the peer's screen ($N lines, a types, b shows): p50 $(ms "$LAT50") ms, p90 $(ms "$LAT90") ms"
echo "chat:    floor (a types, a's own input line shows): p50 $(ms "$FL50") ms, p90 $(ms "$FL90") ms; ratio p50 ${R50}x, p90 ${R90}x (keys acked ~$ACK1 ms)"
[ "$NOREAD" = 0 ] || echo "chat:    ($NOREAD of $N lines were not shown [read] on a within 3 s)"
echo "chat: 2. $MSGS DMs b->a through b's API: sent in $SEND_S s ($RATE/s), all held by a after $HELD_S s"
echo "chat:    open the $MSGS-message DM (Alt-2 until the newest is on the screen): $(ms "$OPEN_US") ms"
echo "chat:    page back $PAGEUPS PageUps ($BACK messages back): total $(ms "$PAGE_US") ms, slowest PageUp $(ms "$PAGE_MAX") ms (keys acked ~$ACK2 ms)"
echo "chat: 3. chat VmRSS: empty DM open $RSS_EMPTY kB; $MSGS-message DM open $RSS_OPEN kB; after $PAGEUPS PageUps $RSS_BACK kB"
say "done in $((SECONDS - START)) s"

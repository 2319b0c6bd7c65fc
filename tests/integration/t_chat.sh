#!/bin/bash
# parley chat in a real terminal: tmux runs the chat of node a against real
# nodes a and b; send-keys types, capture-pane reads the screen. Covers
# switching conversations, a DM and a channel both ways with delivery,
# unread counts and the read marker, scrollback and search, completion, a
# resize, a daemon restart, a message full of escape sequences shown
# harmlessly, wide characters, no colours, and /quit.
. "$(dirname "$0")/lib.sh"

pair a b
p a contacts add "$B_ID" bob >/dev/null
p b contacts add "$A_ID" alice >/dev/null
p a channel create ops --topic "operations room" >/dev/null || fail "channel create"
p a channel add ops bob >/dev/null || fail "channel add"
wait_until 15 sh -c "'$BIN/parley' --home '$(home b)' channel list --json \
    | jq -e '.channels[] | select(.name == \"ops\" and .keyed)'" || fail "b never got #ops"
p b send alice "before the chat" >/dev/null

# What a sanitizer build finds in the chat goes to files checked at the end
# (the terminal it runs in is gone by then).
CHAT=(env ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$TMP/chat-san"
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:log_path=$TMP/chat-san" "$BIN/parley" --home "$(home a)" chat)
# A desktop session's notify-send, as a script that keeps what it was given.
mkdir -p "$TMP/bin"
printf '#!/bin/sh\nfor a in "$@"; do echo "$a"; done >>"%s/notified"\n' "$TMP" >"$TMP/bin/notify-send"
chmod +x "$TMP/bin/notify-send"
tui_start a 100 30 env PATH="$TMP/bin:$PATH" "${CHAT[@]}" --no-bell --notify
wait_screen 10 a "connected to your node"
# The list: the node's own, then channels, then DMs; bob's message is unread.
wait_screen 5 a "2 #ops"
screen a | grep -q "3 @bob  *1│" || fail "no unread count for bob: $(screen a)"

# --- switching, and a DM both ways -------------------------------------------
keys a M-3
wait_screen 5 a "bob (${B_ID:0:8}) — not verified"
wait_screen 5 a "new messages"
wait_screen 5 a "before the chat"
# Opening it read it: b sees "read".
wait_until 10 sh -c "'$BIN/parley' --home '$(home b)' history alice --json \
    | jq -e '.[-1].state == \"read\"'" || fail "opening the DM did not mark it read"
type_line a "hello from the chat"
wait_screen 10 a "hello from the chat  [delivered]"
p b history alice | grep -q "hello from the chat" || fail "b did not get the chat's DM"
p b read alice >/dev/null
wait_screen 10 a "hello from the chat  [read]"
p b send alice "answer from b" >/dev/null
wait_screen 10 a "answer from b"
screen a | grep -q "\[last: read\]" || fail "status line lacks the last delivery"
keys a C-p
wait_screen 5 a "#ops — operations room — 2 members"
keys a C-n
wait_screen 5 a "bob (${B_ID:0:8})"

# --- a channel both ways, with delivered/read counts ------------------------
keys a M-2
wait_screen 5 a "#ops — operations room"
type_line a "hello ops"
wait_until 10 sh -c "'$BIN/parley' --home '$(home b)' history '#ops' | grep -q 'hello ops'" \
    || fail "b never got the channel message"
p b read '#ops' >/dev/null
wait_screen 10 a "hello ops  [delivered 1/1, read 1/1]"
p b send '#ops' "ops answer" >/dev/null
wait_screen 10 a "ops answer"

# --- unread counts elsewhere, the read marker, and peers as status lines -----
keys a M-1
p b send alice "unread one" >/dev/null
p b send alice "unread two" >/dev/null
wait_until 10 sh -c "tmux -S '$(tui_sock a)' capture-pane -p -t main | grep -q '3 @bob  *2│'" \
    || fail "no unread count of 2: $(screen a)"
keys a M-a
wait_screen 5 a "unread two"
screen a | grep -B1 "unread one" | grep -q "new messages" || fail "no read marker: $(screen a)"

# --- the bell, a desktop notification, mentions ---------------------------------
keys a M-2
[ "$(tui a display-message -p -t main '#{window_bell_flag}')" = 0 ] || fail "a bell with --no-bell"
type_line a "/bell on"
wait_screen 5 a "the bell is on"
type_line a "/highlight deploy"
wait_screen 5 a "messages naming deploy are highlighted"
sleep 1.1 # alerts come at most once a second
p b send alice $'who will deploy \e[1mtoday' >/dev/null
wait_until 10 sh -c "tmux -S '$(tui_sock a)' capture-pane -p -t main | grep -q '3 @bob  *!1│'" \
    || fail "no highlighted unread count: $(screen a)"
wait_until 5 sh -c "[ \"\$(tmux -S '$(tui_sock a)' display-message -p -t main '#{window_bell_flag}')\" = 1 ]" \
    || fail "no bell for a message in another conversation"
wait_until 5 grep -qF 'who will deploy ^[[1mtoday' "$TMP/notified" || fail "no desktop notification"
grep -q $'\e' "$TMP/notified" && fail "a notification carried an escape"
grep -qx "bob" "$TMP/notified" || fail "the notification does not say who"
# A flood rings and notifies at most once a second, one notify-send at a time.
N0=$(grep -c '^parley$' "$TMP/notified")
for i in $(seq 1 15); do p b send alice "flood $i" >/dev/null; done
wait_until 10 sh -c "'$BIN/parley' --home '$(home a)' history '$B_ID' | grep -q 'flood 15'" \
    || fail "the flood did not arrive"
sleep 1
N1=$(grep -c '^parley$' "$TMP/notified")
[ $((N1 - N0)) -le 3 ] || fail "$((N1 - N0)) desktop notifications for a flood of 15"
keys a M-a
wait_screen 5 a "who will deploy"

# --- completion -----------------------------------------------------------------
tui a send-keys -t main -l "/ms"
keys a Tab
wait_screen 5 a "[bob] /msg"
tui a send-keys -t main -l "bo"
keys a Tab
wait_screen 5 a "[bob] /msg bob"
keys a C-u
tui a send-keys -t main -l "#o"
keys a Tab
wait_screen 5 a "[bob] #ops"
keys a C-u
# Up and Down recall what was typed.
keys a Up
wait_screen 5 a "[bob] /highlight deploy"
keys a Up
wait_screen 5 a "[bob] /bell on"
keys a Down Down
screen_has a "[bob] /bell" && fail "Down did not come back to an empty line"

# --- scrollback and search over a long conversation ---------------------------
python3 - "$(home b)/api.sock" "$A_ID" <<'EOF' || fail "could not send the long history"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
for i in range(300):
    f.write(json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": "send",
                        "params": {"peer": sys.argv[2], "text": "line %04d" % i}}) + "\n")
f.flush()
for i in range(300):
    r = json.loads(f.readline())
    if "error" in r:
        sys.exit(r["error"]["message"])
EOF
wait_screen 20 a "line 0299"
keys a PPage
wait_screen 5 a "-MORE(0)-"
screen_has a "line 0299" && fail "PageUp did not scroll"
for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do keys a PPage; done
wait_screen 10 a "line 0000"
keys a C-r
tui a send-keys -t main -l "line 0042"
keys a Enter
wait_screen 10 a "line 0042"
screen a | grep -q "(search) line 0042" || fail "search prompt: $(screen a)"
keys a Escape
wait_screen 5 a "line 0299"
screen_has a "MORE(" && fail "Esc did not return to the bottom"
# Messages that come while scrolled up are counted in -MORE(n)-.
keys a PPage
p b send alice "came while scrolled" >/dev/null
wait_screen 10 a "-MORE(1)-"
keys a NPage
wait_screen 5 a "came while scrolled"

# --- escape sequences and bidi controls are shown, not obeyed -----------------
p b send alice $'evil \e[2J\e]0;pwned\a \e[31mred\r\xe2\x80\xae reversed' >/dev/null
wait_screen 10 a "evil ^[[2J^[]0;pwned^G ^[[31mred^M<U+202E> reversed"
screen_has a "bob (${B_ID:0:8})" || fail "the title went: the screen was cleared"
[ "$(tui a display-message -p -t main '#{pane_title}')" != "pwned" ] || fail "a peer set the title"
# Wide characters: whole, and the column after them where it belongs.
p b send alice "wide 你好世界 😀 end" >/dev/null
wait_screen 10 a "wide 你好世界 😀 end"

# --- the mouse: a click opens a conversation, the wheel scrolls ----------------
type_line a "/mouse on"
wait_screen 5 a "the mouse is on"
# xterm's encoding: ESC [ M, then 32 + button, 33 + column, 33 + row.
click() { tui a send-keys -t main -l "$(printf '\033[M%b%b%b' "$1" "$(printf '\\%03o' $((33 + $2)))" "$(printf '\\%03o' $((33 + $3)))")"; }
click ' ' 3 2
click '#' 3 2
wait_screen 5 a "#ops — operations room"
click ' ' 3 3
click '#' 3 3
wait_screen 5 a "bob (${B_ID:0:8})"
click '`' 50 10
wait_screen 5 a "-MORE(0)-"
click 'a' 50 10
wait_until 5 sh -c "! tmux -S '$(tui_sock a)' capture-pane -p -t main | grep -q 'MORE('" \
    || fail "the wheel did not scroll back down"
type_line a "/mouse off"

# --- a resize -----------------------------------------------------------------
tui a resize-window -t main -x 60 -y 16
wait_until 5 sh -c "[ \$(tmux -S '$(tui_sock a)' capture-pane -p -t main | wc -l) = 16 ]" \
    || fail "resize"
wait_screen 5 a "wide 你好世界"
[ "$(screen_width a)" -le 60 ] || fail "rows wider than the terminal: $(screen a)"
tui a resize-window -t main -x 100 -y 30

# --- the node restarts: the chat says so, reconnects, and works on -----------
EP=$(endpoint a)
node_stop a
wait_screen 10 a "the node went away: reconnecting"
LISTEN=$EP node_start a
wait_screen 15 a "reconnected to your node"
wait_until 20 online a "$B_ID" || fail "a never saw b again"
type_line a "after the restart"
wait_screen 15 a "after the restart  [delivered]"
p b send alice "to the reconnected chat" >/dev/null
wait_screen 10 a "to the reconnected chat"

# --- commands -----------------------------------------------------------------
type_line a "/verify bob"
wait_screen 5 a "safety number of you and bob"
type_line a "/verify yes"
wait_screen 5 a "bob is verified now"
wait_screen 5 a "bob (${B_ID:0:8}) — verified"
keys a M-2
type_line a "/members"
wait_screen 5 a "2 members:"
type_line a "/topic a new topic"
wait_screen 10 a "#ops — a new topic — 2 members"
type_line a "/help"
wait_screen 5 a "/msg PEER [TEXT]"

# --- no colours: a terminal without them works the same -----------------------
TUI_TERM=vt100 tui_start mono 100 30 "${CHAT[@]}" --no-bell
wait_screen 10 mono "connected to your node"
keys mono M-3
wait_screen 5 mono "to the reconnected chat"
type_line mono "/quit"
wait_until 5 sh -c "! tmux -S '$(tui_sock mono)' has-session -t main" || fail "/quit did not end the chat"

# --- admin commands: a channel with options, a network, an invite, its log ------
type_line a "/create ann --announce --shared news only"
wait_screen 10 a "#ann — news only — 1 member"
p a channel info ann --json | jqe '.announce and .history == "shared"' >/dev/null \
    || fail "/create lost its options"
type_line a "/network create acme"
wait_screen 10 a "network created: you are its first admin"
wait_screen 10 a "[network acme, admin]"
type_line a "/invite member 1h 2"
wait_screen 10 a "invite (member, a bearer token"
p a invite list --json | jqe 'length == 1 and .[0].role == "member"' >/dev/null \
    || fail "/invite made no invite"
type_line a "/network log"
wait_screen 10 a "invite by me"
type_line a "/network"
wait_screen 10 a "network acme: you are admin; 1 member"

type_line a "/quit"
wait_until 5 sh -c "! tmux -S '$(tui_sock a)' has-session -t main" || fail "/quit did not end the chat"
for f in "$TMP"/chat-san*; do
    [ -e "$f" ] || continue
    FAIL_LOGS+=("$f")
    fail "the sanitizer found something in the chat: $f"
done
echo "ok"

# tests/common.sh — the one shell library of the test and benchmark scripts:
# fail with the nodes' logs, the CLI against a node's home, parleyd started
# and stopped by PID, waits for peers and meshes, jq and time helpers.
# tests/integration/lib.sh (loopback) and tests/netns/lib.sh (network
# namespaces) source it and say where nodes live and how they run.
#
# A node is a name (integration: a, b, n1, ...; netns: its host's number).
# Its home is $NODE_DIR/$NODE_HOME_PREFIX<name>; its log, stdout and stderr
# appended across restarts, is that path with ".log" added. Settings, read
# when used:
#   NODE_DIR          where homes and logs go (set by the sourcing lib)
#   NODE_HOME_PREFIX  put before a node's name to name its home (none)
#   NODE_LISTEN       parleyd's --listen (tcp://127.0.0.1:*); LISTEN=... in
#                     front of one node_start overrides it for that start
#   NODE_ARGS         more parleyd options, split on spaces
#   NODE_PREFIX_FN    if set, a function called as `FN NAME` before node NAME
#                     starts; it sets the array NODE_PREFIX to the command
#                     parleyd runs under (netns: ip netns exec NS env ...),
#                     which must exec its arguments so that the PID recorded
#                     is parleyd's own
#   NODE_START_S      how long a node has to answer on its API (30)
#   NODE_STOP_S       SIGTERM to SIGKILL, in seconds (10)
#   FAIL_LOGS         more files for fail to show (an array)
#   FAIL_TAIL         lines of each log fail shows (20; +1 shows all)
#
# Processes: whatever a script starts in the background goes into PIDS
# (name -> PID) and is ended by that PID: node_stop, node_kill, or stop_all
# (the EXIT trap). A PID is signalled only while it is still a child of this
# shell, so a PID the kernel has handed to some other process after ours was
# reaped is never hit. Nothing is ever ended by its name, only by PID.

BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case $BUILD in
/*) BIN=$BUILD ;;
*) BIN=$ROOT/$BUILD ;;
esac
NODE_DIR=${NODE_DIR:-}
NODE_HOME_PREFIX=${NODE_HOME_PREFIX:-}
NODE_LISTEN=${NODE_LISTEN:-tcp://127.0.0.1:*}
NODE_ARGS=${NODE_ARGS:-}
NODE_PREFIX_FN=${NODE_PREFIX_FN:-}
NODE_START_S=${NODE_START_S:-30}
NODE_STOP_S=${NODE_STOP_S:-10}
FAIL_TAIL=${FAIL_TAIL:-20}
FAIL_LOGS=()
NODE_NAMES=() # every node started, in order: fail shows their logs
NODE_PREFIX=()
declare -gA PIDS=()    # name -> PID of everything started in the background
declare -gA NODE_EP=() # name -> the endpoint the node last listened on

# --- failing ----------------------------------------------------------------

# fail MESSAGE: prints it, the end of every node's log and of FAIL_LOGS, and
# exits 1 (the EXIT trap then stops what is still running).
fail() {
    echo "FAIL: $*" >&2
    local n f
    for n in "${NODE_NAMES[@]}"; do
        f=$(node_log "$n")
        [ -f "$f" ] || continue
        echo "--- node $n: $f" >&2
        tail -n "$FAIL_TAIL" "$f" | sed "s/^/  $n | /" >&2
    done
    for f in "${FAIL_LOGS[@]}"; do
        [ -f "$f" ] || continue
        echo "--- $f" >&2
        tail -n "$FAIL_TAIL" "$f" | sed "s/^/  $(basename "$f" .log) | /" >&2
    done
    exit 1
}

# --- jq and waiting -----------------------------------------------------------

# jqe ARGS... [FILE]: `jq -e` that fails on empty input. Plain `jq -e` exits
# 0 when it reads nothing, which would let a check pass after the command
# feeding it failed.
jqe() {
    local input last="${!#}"
    if [ $# -ge 2 ] && [ -f "$last" ]; then
        input=$(cat "$last")
        set -- "${@:1:$#-1}"
    else
        input=$(cat)
    fi
    [ -n "$input" ] || { echo "jqe: no input" >&2; return 1; }
    printf '%s\n' "$input" | jq -e "$@"
}

# wait_until SECONDS COMMAND...: polls every 0.1 s, quietly; true as soon as
# COMMAND is, false if it never was within SECONDS.
wait_until() {
    local end=$((SECONDS + $1))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.1
    done
    return 0
}

# --- time -------------------------------------------------------------------

now() { date +%s.%N; }
# elapsed T0 T1: seconds from T0 to T1 (two decimals), "never" if T1 is empty.
elapsed() {
    if [ -n "${2:-}" ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
    else
        echo never
    fi
}
since() { elapsed "$1" "$(now)"; } # since T0: seconds from T0 to now

# --- processes by PID -------------------------------------------------------

# is_child PID: PID is (still) a child of this shell.
is_child() {
    local stat ppid
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # "pid (comm) state ppid ...": comm may hold spaces, so cut after its ")".
    read -r _ ppid _ <<<"${stat##*) }"
    [ "$ppid" = "$BASHPID" ]
}

# pid_stop PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (NODE_STOP_S);
# returns PID's exit status when it is our child.
pid_stop() {
    local pid=$1 end=$((SECONDS + ${2:-$NODE_STOP_S}))
    if kill -TERM "$pid" 2>/dev/null; then
        while kill -0 "$pid" 2>/dev/null; do
            if [ $SECONDS -ge $end ]; then
                kill -KILL "$pid" 2>/dev/null
                break
            fi
            sleep 0.1
        done
    fi
    wait "$pid" 2>/dev/null
}

# stop_all: every process in PIDS gets SIGTERM at once, SIGKILL if still
# there NODE_STOP_S later; all are waited for. The EXIT trap of both libs.
stop_all() {
    local k pid end=$((SECONDS + NODE_STOP_S))
    for k in "${!PIDS[@]}"; do
        is_child "${PIDS[$k]}" && kill -TERM "${PIDS[$k]}" 2>/dev/null
    done
    for k in "${!PIDS[@]}"; do
        pid=${PIDS[$k]}
        while is_child "$pid" && kill -0 "$pid" 2>/dev/null; do
            if [ $SECONDS -ge $end ]; then
                kill -KILL "$pid" 2>/dev/null
                break
            fi
            sleep 0.1
        done
        wait "$pid" 2>/dev/null
        unset "PIDS[$k]"
    done
    return 0
}

# --- nodes ------------------------------------------------------------------

home() { echo "$NODE_DIR/$NODE_HOME_PREFIX$1"; } # home NAME
node_log() { echo "$(home "$1").log"; }          # node_log NAME
# p NAME ARGS...: the CLI against NAME's home. (Spelt out rather than
# $(home ...): a test may call it a thousand times, and each $(...) forks.)
p() {
    local n=$1
    shift
    "$BIN/parley" --home "$NODE_DIR/$NODE_HOME_PREFIX$n" "$@"
}
nid() { p "$1" id --json | jq -r .id; } # nid NAME: its node id

# node_init NAME [ARGS...]: a new identity in NAME's home; prints its id.
node_init() {
    local out
    out=$(p "$1" init --json "${@:2}") || return 1
    jq -r .id <<<"$out"
}

# node_spawn NAME [parleyd args...]: starts parleyd on NAME's home, records
# its PID in PIDS[NAME], and does not wait (node_wait_up does).
node_spawn() {
    local n=$1 h log
    shift
    [ -z "${PIDS[$n]:-}" ] || fail "node $n is already running (PID ${PIDS[$n]})"
    h=$(home "$n")
    log=$(node_log "$n")
    NODE_PREFIX=()
    [ -n "$NODE_PREFIX_FN" ] && "$NODE_PREFIX_FN" "$n"
    mkdir -p -m 700 "$h" # a permissive umask must not make a home parleyd refuses
    case " ${NODE_NAMES[*]} " in
    *" $n "*) ;;
    *) NODE_NAMES+=("$n") ;;
    esac
    unset "NODE_EP[$n]"
    # shellcheck disable=SC2086 # NODE_ARGS is a list of options
    "${NODE_PREFIX[@]}" "$BIN/parleyd" --home "$h" --listen "${LISTEN:-$NODE_LISTEN}" \
        $NODE_ARGS "$@" >>"$log" 2>&1 &
    PIDS[$n]=$!
}

# node_wait_up NAME: waits until NAME's parleyd answers on its API (an old
# api.sock left by a killed run does not count) and records its endpoint;
# fails if it exits first or takes longer than NODE_START_S.
node_wait_up() {
    local n=$1 pid=${PIDS[$1]:-} end=$((SECONDS + NODE_START_S)) st
    [ -n "$pid" ] || fail "node $n was never started"
    while :; do
        if st=$(p "$n" status --json 2>/dev/null) && [ -n "$st" ] && kill -0 "$pid" 2>/dev/null
        then
            NODE_EP[$n]=$(jq -r '.endpoints[0] // empty' <<<"$st")
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "node $n exited while starting"
        [ $SECONDS -lt $end ] || fail "node $n did not answer on its API within $NODE_START_S s"
        sleep 0.1
    done
}

# node_start NAME [parleyd args...]: node_spawn, then node_wait_up.
node_start() {
    node_spawn "$@"
    node_wait_up "$1"
}

# node_stop NAME: SIGTERM by PID, SIGKILL after NODE_STOP_S; true when
# parleyd exited 0.
node_stop() {
    local n=$1 pid=${PIDS[$1]:-}
    [ -n "$pid" ] || return 1
    unset "PIDS[$n]"
    if is_child "$pid"; then
        pid_stop "$pid"
    else
        wait "$pid" 2>/dev/null
    fi
}

# node_kill NAME: SIGKILL by PID (a crash: no goodbye, nothing flushed).
node_kill() {
    local n=$1 pid=${PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    unset "PIDS[$n]"
    is_child "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# endpoint NAME: where NAME listened when it last started (kept after a stop).
endpoint() {
    [ -n "${NODE_EP[$1]:-}" ] || fail "no endpoint known for node $1"
    echo "${NODE_EP[$1]}"
}

# --- peers ------------------------------------------------------------------

# online NAME PEER_ID: NAME sees PEER_ID online.
online() {
    p "$1" peers --json | jqe --arg id "$2" '.[] | select(.id == $id and .online)' >/dev/null
}
# online_count NAME: how many peers NAME sees online (0 when it does not answer).
online_count() {
    local c
    c=$(p "$1" status --json 2>/dev/null | jq -r '.peers.online // 0' 2>/dev/null)
    echo "${c:-0}"
}
# meshed N NAME...: each NAME sees exactly N peers online.
meshed() {
    local want=$1 n
    shift
    for n in "$@"; do
        [ "$(online_count "$n")" = "$want" ] || return 1
    done
}
# known_all N NAME...: each NAME knows N peers (links to some, SPEC §11.1).
known_all() {
    local want=$1 n
    shift
    for n in "$@"; do
        [ "$(p "$n" status --json 2>/dev/null | jq -r '.peers.known // 0')" = "$want" ] || return 1
    done
}
# linked NAME...: "NAME:known/online/linked ..." for failure messages.
linked() {
    local n
    for n in "$@"; do
        printf '%s:%s ' "$n" "$(p "$n" status --json | jq -r '"\(.peers.known)/\(.peers.online)/\(.peers.linked)"')"
    done
}
# online_counts NAME...: "NAME:COUNT ..." for failure messages.
online_counts() {
    local n
    for n in "$@"; do
        printf '%s:%s ' "$n" "$(online_count "$n")"
    done
}

# --- a real terminal (tmux) ---------------------------------------------------
# A test drives a full-screen program through a tmux server of its own: its
# socket in NODE_DIR, started in the foreground (-D) as a child of this shell
# so that it is ended by PID like everything else, with no config file.
# A terminal is a name (chat, a, ...); its one window runs the command.

tui_sock() { echo "$NODE_DIR/tmux-$1.sock"; } # tui_sock NAME
# tui NAME TMUX-ARGS...: a tmux command against NAME's server.
tui() {
    local n=$1
    shift
    tmux -S "$(tui_sock "$n")" "$@"
}
# tui_start NAME COLS ROWS COMMAND...: a COLS×ROWS terminal (tmux-256color,
# UTF-8) running COMMAND.
tui_start() {
    local n=$1 cols=$2 rows=$3
    shift 3
    tmux -S "$(tui_sock "$n")" -f /dev/null -D </dev/null >/dev/null 2>&1 &
    PIDS[tmux-$n]=$!
    wait_until 5 test -S "$(tui_sock "$n")" || fail "tmux server $n did not start"
    tui "$n" set-option -g default-terminal "${TUI_TERM:-tmux-256color}" \; \
        set-option -g history-limit 0 \; \
        new-session -d -s main -x "$cols" -y "$rows" -- \
        env LANG=C.UTF-8 LC_ALL=C.UTF-8 "$@" || fail "tmux could not run $*"
}
# screen NAME: what the terminal shows now, one line per row.
screen() { tui "$1" capture-pane -p -t main; }
# screen_has NAME TEXT: the screen shows TEXT (fixed string).
screen_has() { screen "$1" | grep -qF -- "$2"; }
# wait_screen SECONDS NAME TEXT: until the screen shows TEXT; fails with
# the screen if it never does.
wait_screen() {
    wait_until "$1" screen_has "$2" "$3" && return 0
    echo "--- screen $2:" >&2
    screen "$2" | sed 's/^/  | /' >&2
    fail "screen $2 never showed '$3'"
}
# screen_width NAME: the widest row of the screen, in cells (a CJK character
# or an emoji takes two).
screen_width() {
    screen "$1" | python3 -c '
import sys, unicodedata
def cells(s):
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in s)
print(max((cells(l.rstrip("\n")) for l in sys.stdin), default=0))'
}
# keys NAME KEY...: tmux key names (Enter, Tab, PPage, M-1, C-r, ...).
keys() {
    local n=$1
    shift
    tui "$n" send-keys -t main "$@"
}
# type_line NAME TEXT: types TEXT literally, then Enter.
type_line() {
    tui "$1" send-keys -t main -l -- "$2"
    tui "$1" send-keys -t main Enter
}

#!/bin/bash
# tools/bench/discovery.sh — how long real mDNS discovery takes, Avahi alone
# against a Parley mesh, on the same simulated hosts.
#
#   tools/bench/discovery.sh [N...]      (default: 3 10 20; root only)
#
# For each N, on fresh network namespaces (tests/netns/lib.sh: one bridge,
# one D-Bus and one avahi-daemon per host), it measures
#   (a) Avahi browse+resolve: from the start of `avahi-publish -s` on every
#       host (an _parley-bench._tcp service each) until `avahi-browse -rp`,
#       started on host 1 right after the publishers, has resolved all N
#       services to an IPv4 address;
#   (a') the same with a browser on every host, until every host has
#       resolved all N: the work a full mesh asks of Avahi (fresh service
#       names, so nothing comes from the caches of (a));
#   (b) Parley mesh: from the start of the first parleyd (one per host,
#       --no-local, so discovery is mDNS only) until every node reports N-1
#       peers known and min(N-1, 8) online, its ring neighbours (SPEC §11.1),
#       in `parley status --json`.
# Each size runs in its own process (the netns library sets up once per
# process and tears down on exit) and is aborted after 120 s, setup
# included, with a message and a non-zero exit. Sizes run one after another.
#
# Binaries come from $BUILD (default build, relative to the repository
# root); run `make all` first. Safety is the library's: Avahi and D-Bus run
# only inside namespaces created here, and only PIDs started here are killed.
set -u
export LC_ALL=C
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/../.." || exit 2
BUILD=${BUILD:-build}
LIMIT=120
SERVICE=_parley-bench._tcp
PORT=7400

say() { echo "discovery: $*" >&2; }

# --- one size, in a child process --------------------------------------------

one_size() { # one_size N RESULT_FILE
    N=$1
    local res=$2 i line partial="" t0 t_avahi t1 t_parley
    local -a f
    local -A seen done_at
    local deadline=$((SECONDS + LIMIT))

    abort() {
        say "N=$N: ABORTED at the ${LIMIT} s bound: $*"
        exit 3
    }
    check_deadline() { # check_deadline WHAT
        [ "$SECONDS" -lt "$deadline" ] || abort "time used up by the end of $1"
    }

    local ts avahi_s avahi_all_s parley_s
    ts=$(now)
    netns_setup "$N"
    say "N=$N: $N hosts with Avahi up in $(elapsed "$ts" "$(now)") s"
    check_deadline "setup"

    # (a) Avahi alone. The browser writes into a FIFO that we read line by
    # line, so the moment the Nth service resolves is taken as it arrives.
    local fifo="$NETNS_DIR/browse.fifo" pubs=()
    publish_all() { # publish_all NAME: t0, then service NAME-h<I>-<rand> on every host (pubs)
        pubs=()
        t0=$(now)
        for i in $(seq "$N"); do
            netns_bg "$i" "$NETNS_DIR/pub-$1$i.log" avahi-publish -s "$1-h$i-$NETNS_RAND" \
                "$SERVICE" "$PORT"
            pubs+=("$NETNS_LAST_PID")
        done
    }
    mkfifo "$fifo" || abort "mkfifo failed"
    publish_all bench
    netns_bg 1 "$fifo" avahi-browse -rp "$SERVICE"
    local browser=$NETNS_LAST_PID
    exec 3<>"$fifo"     # read-write: never blocks, whatever the writer does
    t_avahi=""
    while [ -z "$t_avahi" ]; do
        if IFS= read -r -t 1 line <&3; then
            line="$partial$line"
            partial=""
            # =;iface;IPv4;name;type;domain;host;address;port;txt
            IFS=';' read -r -a f <<<"$line"
            if [ "${f[0]:-}" = "=" ] && [ "${f[2]:-}" = IPv4 ] && [ -n "${f[7]:-}" ] \
                && [[ ${f[3]:-} == bench-h*-"$NETNS_RAND" ]]; then
                seen[${f[3]}]=1
                [ "${#seen[@]}" -ge "$N" ] && t_avahi=$(now)
            fi
        else
            # timed out: keep any partial line for the next read
            partial="$partial$line"
            if [ "$SECONDS" -ge "$deadline" ]; then
                for i in $(seq "$N"); do
                    sed "s/^/  publisher $i | /" "$NETNS_DIR/pub-bench$i.log" >&2
                done
                abort "Avahi: host 1 resolved ${#seen[@]} of $N services"
            fi
            kill -0 "$browser" 2>/dev/null || abort "avahi-browse on host 1 exited"
        fi
    done
    exec 3<&-
    netns_kill_wait "$browser"
    for i in "${pubs[@]}"; do
        netns_kill_wait "$i"
    done
    avahi_s=$(elapsed "$t0" "$t_avahi")
    say "N=$N: Avahi browse+resolve of $N services on host 1: $avahi_s s"
    echo "$N $avahi_s - - -" >"$res"
    check_deadline "Avahi phase"

    # (a') Every host browses. Its output goes to a file, polled: a host is
    # done when all N names resolved to IPv4 (polled every 20 ms or so).
    local browsers=() c t_all="" n_done=0
    local -A host_done
    publish_all mesh
    for i in $(seq "$N"); do
        netns_bg "$i" "$NETNS_DIR/browse$i.out" avahi-browse -rp "$SERVICE"
        browsers+=("$NETNS_LAST_PID")
    done
    while [ "$n_done" -lt "$N" ]; do
        for i in $(seq "$N"); do
            [ -n "${host_done[$i]:-}" ] && continue
            c=$(grep "^=;[^;]*;IPv4;mesh-h[0-9]*-$NETNS_RAND;" "$NETNS_DIR/browse$i.out" \
                | cut -d';' -f4 | sort -u | wc -l)
            if [ "$c" -ge "$N" ]; then
                host_done[$i]=$(now)
                n_done=$((n_done + 1))
            fi
        done
        if [ "$n_done" -lt "$N" ]; then
            [ "$SECONDS" -lt "$deadline" ] \
                || abort "Avahi: $n_done of $N hosts resolved all $N services"
            sleep 0.02
        fi
    done
    t_all=$(printf '%s\n' "${host_done[@]}" | sort -g | tail -n 1)
    for i in "${browsers[@]}" "${pubs[@]}"; do
        netns_kill_wait "$i"
    done
    avahi_all_s=$(elapsed "$t0" "$t_all")
    say "N=$N: Avahi browse+resolve of $N services on every host: $avahi_all_s s"
    echo "$N $avahi_s $avahi_all_s - -" >"$res"
    check_deadline "Avahi full-mesh phase"

    # (b) Parley. A node that has reached N-1 is not asked again until all
    # have (so a round stays short and the timing fine); then one round
    # over all of them confirms the mesh, and the time is when the last
    # node was first seen complete.
    NODE_LISTEN=tcp://0.0.0.0:$PORT
    NODE_ARGS="--no-local --ping-ms 500"
    local want=$((N - 1 < 8 ? N - 1 : 8))
    settled_one() {
        local s
        s=$(p "$1" status --json 2>/dev/null) || return 1
        [ "$(jq -r '.peers.known' <<<"$s")" = $((N - 1)) ] \
            && [ "$(jq -r '.peers.online' <<<"$s")" -ge "$want" ]
    }
    local -A spawned_at
    t1=$(now)
    for i in $(seq "$N"); do
        spawned_at[$i]=$(now)
        node_spawn "$i"
    done
    t_parley=""
    while [ -z "$t_parley" ]; do
        local pending=0
        for i in $(seq "$N"); do
            [ -n "${done_at[$i]:-}" ] && continue
            if settled_one "$i"; then
                done_at[$i]=$(now)
            else
                pending=1
            fi
        done
        if [ "$pending" = 0 ]; then
            for i in $(seq "$N"); do
                settled_one "$i" || { unset "done_at[$i]"; pending=1; }
            done
            if [ "$pending" = 0 ]; then
                t_parley=$(printf '%s\n' "${done_at[@]}" | sort -g | tail -n 1)
                break
            fi
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            for i in $(seq "$N"); do
                tail -n 5 "$(node_log "$i")" | sed "s/^/  node $i | /" >&2
            done
            abort "Parley: mesh of $N did not converge; peers online per node: $(online_counts \
                $(seq "$N"))"
        fi
        sleep 0.1
    done
    parley_s=$(elapsed "$t1" "$t_parley")
    say "N=$N: Parley mesh of $N nodes (all known, ring linked), polled: $parley_s s"
    # When each node itself learnt of its last peer (peers[].known_since,
    # wall-clock ms), without the polling's lag: the discovery figure.
    local known_ms=0 k
    for i in $(seq "$N"); do
        k=$(p "$i" peers --json | jq '[.[].known_since] | max')
        [ "$k" -gt "$known_ms" ] && known_ms=$k
    done
    known_s=$(awk -v k="$known_ms" -v t="$t1" 'BEGIN { printf "%.2f", k / 1000 - t }')
    say "N=$N: every node knew every other after $known_s s (the nodes' own clocks)"
    # Where the time went, per node, in seconds after the first spawn: when
    # it was spawned, when its engine started (status.uptime_ms), when it
    # learnt of its first and of its last peer (peers[].known_since).
    local q up first last rows=""
    for i in $(seq "$N"); do
        q=$(now)
        up=$(p "$i" status --json | jq '.uptime_ms')
        read -r first last < <(p "$i" peers --json | jq -r '[.[].known_since] | "\(min) \(max)"')
        rows+=$(awk -v i="$i" -v t="$t1" -v s="${spawned_at[$i]}" -v q="$q" -v u="$up" \
            -v f="$first" -v l="$last" 'BEGIN { printf "%d %.3f %.3f %.3f %.3f\n", i, s - t,
            q - u / 1000 - t, f / 1000 - t, l / 1000 - t }')$'\n'
    done
    awk -v n="$N" '
        NF == 5 { sp = $2; st = $3; f = $4; l = $5
                  if (sp > msp) msp = sp; if (st - sp > mup) mup = st - sp
                  if (f - st > mf) mf = f - st; if (l - f > ml) ml = l - f
                  if (l > last) { last = l; who = $1; wsp = sp; wst = st; wf = f } }
        END { printf "discovery: N=%d: where the time went (s after the first spawn):\n", n
              printf "discovery:   spawning all %d nodes: %.2f; spawn to engine start: up to %.2f\n",
                     n, msp, mup
              printf "discovery:   engine start to first peer known: up to %.2f;" \
                     " first to last peer: up to %.2f\n", mf, ml
              printf "discovery:   the last to know all, node %d: spawned %.2f, started %.2f," \
                     " first peer %.2f, last peer %.2f\n", who, wsp, wst, wf, last }' \
        <<<"$rows" >&2
    echo "$N $avahi_s $avahi_all_s $known_s $parley_s" >"$res"
    exit 0   # the EXIT trap of lib.sh stops everything and removes the namespaces
}

if [ "${1:-}" = "--one" ]; then
    # At top level: the library's declarations must be global, for the
    # teardown its EXIT trap runs.
    . tests/netns/lib.sh
    one_size "$2" "$3"
fi

# --- driver ----------------------------------------------------------------

[ "$(id -u)" = 0 ] || { say "must run as root (network namespaces)"; exit 2; }
for b in parleyd parley; do
    [ -x "$BUILD/$b" ] || { say "missing $BUILD/$b: run \`make all\` first (BUILD=$BUILD)"; exit 2; }
done
for cmd in avahi-publish avahi-browse jq awk ip; do
    command -v "$cmd" >/dev/null || { say "missing $cmd (make deps)"; exit 2; }
done
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(3 10 20)
for n in "${SIZES[@]}"; do
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 2 ] && [ "$n" -le 200 ] \
        || { say "sizes must be integers 2..200, not '$n'"; exit 2; }
done

RESDIR=$(mktemp -d /tmp/parley-bench-discovery.XXXXXX) || exit 2
CHILD=""
cleanup() { rm -rf "$RESDIR"; }
trap cleanup EXIT
# The child runs in the background (so we can enforce the bound) and so
# ignores SIGINT: pass an interrupt on as SIGTERM, which tears it down.
trap 'say "interrupted; tearing down"; if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null; wait "$CHILD"; fi; exit 130' INT TERM

status=0
for n in "${SIZES[@]}"; do
    say "N=$n: starting (bound ${LIMIT} s)"
    start=$SECONDS
    bash "$SELF" --one "$n" "$RESDIR/$n" &
    CHILD=$!
    # The child checks the bound itself; this is the backstop for a step
    # that hangs (it then tears down on SIGTERM).
    while kill -0 "$CHILD" 2>/dev/null; do
        if [ $((SECONDS - start)) -ge $((LIMIT + 5)) ]; then
            say "N=$n: ABORTED: exceeded the ${LIMIT} s bound; stopping it"
            kill -TERM "$CHILD" 2>/dev/null
            break
        fi
        sleep 0.5
    done
    wait "$CHILD"
    rc=$?
    CHILD=""
    if [ "$rc" != 0 ]; then
        say "N=$n: failed (exit $rc)"
        status=1
    fi
        [ -s "$RESDIR/$n" ] || echo "$n - - - -" >"$RESDIR/$n"
done

ratio() { # ratio A B: B / A, two decimals, or -
    awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && a > 0) printf "%.2f", b / a;
                                     else print "-" }'
}
echo
printf '%4s | %13s | %13s | %12s | %14s | %14s | %11s\n' N "Avahi host 1" "Avahi all" \
    "Parley known" "ratio (host 1)" "ratio (all)" "mesh polled"
printf -- '-----+---------------+---------------+--------------+----------------+----------------+------------\n'
for n in "${SIZES[@]}"; do
    read -r _ a m k p <"$RESDIR/$n"
    r1=$(ratio "$a" "$k")
    r2=$(ratio "$m" "$k")
    [ "$a" = - ] && a=aborted
    [ "$m" = - ] && m=aborted
    [ "$k" = - ] && k=aborted
    [ "$p" = - ] && p=aborted
    printf '%4s | %13s | %13s | %12s | %14s | %14s | %11s\n' "$n" "$a" "$m" "$k" "$r1" "$r2" "$p"
done
echo
echo "Seconds. Parley's figures include Avahi's (each node publishes, browses and"
echo "resolves through its host's avahi-daemon) plus daemon start-up. 'Parley known' is"
echo "when the last node learnt of its last peer, by its own clock (peers[].known_since);"
echo "'mesh polled' waits further for the ring links and is polled with status calls,"
echo "one 'ip netns exec' each. 'Avahi host 1' is host 1 alone resolving all N"
echo "services; 'Avahi all' is every host resolving all N, the work of a full mesh."
exit $status

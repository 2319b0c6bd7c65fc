#!/bin/bash
# tests/netns/lib.sh — simulated hosts in network namespaces, each with its
# own D-Bus system bus and Avahi daemon, for tests of real mDNS discovery.
# Source it from a test script run as root (bash), then:
#
#   netns_setup N            N hosts on one bridge (one /24), daemons ready
#   netns_setup_routed A B   hosts 1..A on subnet 1, A+1..A+B on subnet 2,
#                            joined by a router namespace that forwards IPv4
#                            but runs no mDNS: multicast never crosses
#   netns_exec I CMD...      run CMD on host I (its bus in the environment)
#   netns_bg I LOG CMD...    same, in the background, output to LOG; the PID
#                            is in NETNS_LAST_PID and killed at teardown
#   netns_avahi_stop I       SIGTERM host I's avahi-daemon and wait for it
#   netns_avahi_start I      start it again and wait until it is ready
#   netns_addr I             print host I's IPv4 address
#   netns_teardown           stop_all, kill what we started, delete our
#                            namespaces and files (installed as an EXIT trap
#                            by the setups)
#
# It sources tests/common.sh and sets it up for these hosts: node I is host
# I, its home is $NETNS_DIR/h<I> (the host's directory), its log
# $NETNS_DIR/h<I>.log, and node_start/node_spawn run parleyd inside host I's
# namespace with its bus (NODE_PREFIX_FN), listening on tcp://0.0.0.0:7400
# with NODE_ARGS "--no-local --ping-ms 500 --retry-ms 1000" (a test may add
# to them). p, nid, online, meshed, fail ... work on host numbers.
#
# Safety (see /work/shared/notes/mdns-testing.md): avahi-daemon and
# dbus-daemon only ever start through `ip netns exec` into a namespace this
# script created; every address lives only inside those namespaces (the
# bridge itself sits in a namespace of ours, so no traffic reaches a real
# interface); each daemon gets its own mount namespace with a tmpfs on /run
# (avahi hard-codes /run/avahi-daemon); only PIDs we started are killed,
# never by name. The library refuses to run unless root, and if an Avahi
# daemon already runs in the root namespace.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
NODE_HOME_PREFIX=h
NODE_LISTEN=tcp://0.0.0.0:7400
NODE_ARGS="--no-local --ping-ms 500 --retry-ms 1000"
NODE_PREFIX_FN=netns_node_prefix

NETNS_RAND=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
NETNS_PREFIX="parley-$NETNS_RAND"
NETNS_BRIDGE_NS="parley-br-$NETNS_RAND"
NETNS_DIR=""
NETNS_N=0
NETNS_CREATED=()      # every namespace we made, for teardown
NETNS_BG_PIDS=()      # background commands started by netns_bg
declare -a NETNS_NS NETNS_ADDR NETNS_DBUS_PID NETNS_AVAHI_PID

netns_die() {
    echo "netns: $*" >&2
    exit 1
}

netns_log() {
    [ -n "${NETNS_VERBOSE:-}" ] && echo "netns: $*" >&2
    return 0
}

netns_preflight() {
    [ "$(id -u)" = 0 ] || netns_die "must run as root (network namespaces)"
    for cmd in ip avahi-daemon dbus-daemon dbus-send; do
        command -v "$cmd" >/dev/null || netns_die "missing $cmd (make deps)"
    done
    # `avahi-daemon -c` exits 0 when a daemon runs here (the root namespace).
    # Ours would never share its sockets, but a host responder means the
    # machine already talks mDNS on its real interfaces: refuse to add noise.
    if avahi-daemon -c 2>/dev/null; then
        netns_die "an avahi-daemon runs in the root namespace; refusing to run"
    fi
}

# --- namespaces and links -------------------------------------------------

netns_new_ns() { # netns_new_ns NAME
    ip netns add "$1" || netns_die "cannot create namespace $1"
    NETNS_CREATED+=("$1")
    ip -n "$1" link set lo up
}

# Makes the bridge namespace and a bridge BR in it (created once per bridge).
netns_new_bridge() { # netns_new_bridge BR
    if ! ip netns list | grep -qw "$NETNS_BRIDGE_NS"; then
        netns_new_ns "$NETNS_BRIDGE_NS"
    fi
    ip -n "$NETNS_BRIDGE_NS" link add "$1" type bridge || netns_die "cannot create bridge $1"
    ip -n "$NETNS_BRIDGE_NS" link set "$1" up
}

# A veth pair made inside the bridge namespace with its peer moved straight
# into NS as IFACE: no end ever appears in the root namespace.
netns_plug() { # netns_plug NS IFACE BR PORTNAME ADDR/PREFIX
    local ns=$1 iface=$2 br=$3 port=$4 addr=$5
    ip -n "$NETNS_BRIDGE_NS" link add "$port" type veth peer name "$iface" netns "$ns" \
        || netns_die "cannot create veth $port"
    ip -n "$NETNS_BRIDGE_NS" link set "$port" master "$br" up
    ip -n "$ns" addr add "$addr" dev "$iface"
    ip -n "$ns" link set "$iface" up
}

# --- per-host D-Bus and Avahi ---------------------------------------------

netns_bus() { # netns_bus I: the bus address of host I
    echo "unix:path=$NETNS_DIR/h$1/bus"
}

netns_write_configs() { # netns_write_configs I IFACE
    local i=$1 iface=$2 d="$NETNS_DIR/h$1"
    mkdir -p "$d"
    chmod 755 "$d"
    # A private system bus: permissive policy (only our test processes can
    # reach its socket) and room for swarms of clients on one host.
    cat >"$d/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
  <limit name="max_connections_per_user">4096</limit>
  <limit name="max_completed_connections">4096</limit>
  <limit name="max_incomplete_connections">256</limit>
</busconfig>
EOF
    cat >"$d/avahi.conf" <<EOF
[server]
host-name=h$i-$NETNS_RAND
use-ipv4=yes
use-ipv6=no
allow-interfaces=$iface
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no
[reflector]
enable-reflector=no
EOF
    chmod 644 "$d/dbus.conf" "$d/avahi.conf"
}

netns_dbus_start() { # netns_dbus_start I
    local i=$1 d="$NETNS_DIR/h$1"
    rm -f "$d/bus"
    ip netns exec "${NETNS_NS[$i]}" dbus-daemon --config-file="$d/dbus.conf" --nofork \
        --nopidfile >>"$d/dbus.log" 2>&1 &
    NETNS_DBUS_PID[$i]=$!
    for _ in $(seq 100); do
        [ -S "$d/bus" ] && return 0
        sleep 0.05
    done
    netns_die "dbus-daemon of host $i did not come up (log: $d/dbus.log)"
}

netns_avahi_ready() { # netns_avahi_ready I: true once avahi answers on the bus
    netns_exec "$1" dbus-send --system --print-reply --reply-timeout=500 \
        --dest=org.freedesktop.Avahi / org.freedesktop.Avahi.Server.GetState \
        2>/dev/null | grep -q 'int32 2'
}

netns_avahi_start() { # netns_avahi_start I
    local i=$1 d="$NETNS_DIR/h$1"
    [ -n "${NETNS_NS[$i]:-}" ] || netns_die "no host $i"
    # ip netns exec gives the command a private mount namespace: the tmpfs
    # on /run hides the machine's /run/avahi-daemon from this daemon only.
    # exec keeps one PID from ip to avahi-daemon, so $! is the daemon.
    ip netns exec "${NETNS_NS[$i]}" env DBUS_SYSTEM_BUS_ADDRESS="$(netns_bus "$i")" \
        sh -c 'mount -t tmpfs -o mode=755 tmpfs /run && exec avahi-daemon --no-rlimits -f "$1"' \
        sh "$d/avahi.conf" >>"$d/avahi.log" 2>&1 &
    NETNS_AVAHI_PID[$i]=$!
    for _ in $(seq 100); do
        netns_avahi_ready "$i" && return 0
        kill -0 "${NETNS_AVAHI_PID[$i]}" 2>/dev/null \
            || netns_die "avahi-daemon of host $i exited (log: $d/avahi.log)"
        sleep 0.1
    done
    netns_die "avahi-daemon of host $i not ready after 10 s (log: $d/avahi.log)"
}

netns_kill_wait() { # netns_kill_wait PID: SIGTERM, then SIGKILL after 5 s
    [ -n "$1" ] || return 0
    pid_stop "$1" 5
    return 0
}

netns_avahi_stop() { # netns_avahi_stop I
    netns_kill_wait "${NETNS_AVAHI_PID[$1]:-}"
    NETNS_AVAHI_PID[$1]=""
}

netns_dbus_stop() { # netns_dbus_stop I
    netns_kill_wait "${NETNS_DBUS_PID[$1]:-}"
    NETNS_DBUS_PID[$1]=""
}

# --- hosts ------------------------------------------------------------------

netns_begin() {
    netns_preflight
    NETNS_DIR=$(mktemp -d /tmp/parley-netns.XXXXXX) || netns_die "mktemp failed"
    NODE_DIR=$NETNS_DIR
    # avahi-daemon drops to user avahi before it connects to the bus: every
    # directory on the way to the socket must be traversable.
    chmod 755 "$NETNS_DIR"
    trap netns_teardown EXIT
    trap 'exit 130' INT TERM
}

netns_add_host() { # netns_add_host I BR ADDR/PREFIX [GATEWAY]
    local i=$1 br=$2 addr=$3 gw=${4:-}
    NETNS_NS[$i]="$NETNS_PREFIX-h$i"
    NETNS_ADDR[$i]=${addr%/*}
    netns_new_ns "${NETNS_NS[$i]}"
    netns_plug "${NETNS_NS[$i]}" eth0 "$br" "vh$i" "$addr"
    if [ -n "$gw" ]; then
        ip -n "${NETNS_NS[$i]}" route add default via "$gw"
    fi
    netns_write_configs "$i" eth0
    NETNS_N=$((NETNS_N > i ? NETNS_N : i))
}

netns_start_daemons() {
    local i
    for i in $(seq "$NETNS_N"); do
        netns_dbus_start "$i"
    done
    for i in $(seq "$NETNS_N"); do
        netns_avahi_start "$i"
    done
}

netns_setup() { # netns_setup N
    local n=$1 i
    [ "$n" -ge 1 ] && [ "$n" -le 200 ] || netns_die "netns_setup: 1..200 hosts"
    netns_begin
    netns_new_bridge br0
    for i in $(seq "$n"); do
        netns_add_host "$i" br0 "10.254.1.$((i + 9))/24"
    done
    netns_start_daemons
    netns_log "$n hosts up in $NETNS_DIR"
}

netns_setup_routed() { # netns_setup_routed A B
    local a=$1 b=$2 i
    [ "$a" -ge 1 ] && [ "$b" -ge 1 ] && [ $((a + b)) -le 200 ] \
        || netns_die "netns_setup_routed: 1..200 hosts in all"
    netns_begin
    netns_new_bridge br1
    netns_new_bridge br2
    # The router: one leg on each bridge, IPv4 forwarding, no Avahi (and no
    # reflector), so multicast DNS stays within each subnet.
    NETNS_ROUTER_NS="$NETNS_PREFIX-router"
    netns_new_ns "$NETNS_ROUTER_NS"
    netns_plug "$NETNS_ROUTER_NS" eth1 br1 vr1 10.254.1.1/24
    netns_plug "$NETNS_ROUTER_NS" eth2 br2 vr2 10.254.2.1/24
    ip netns exec "$NETNS_ROUTER_NS" sysctl -qw net.ipv4.ip_forward=1
    for i in $(seq "$a"); do
        netns_add_host "$i" br1 "10.254.1.$((i + 9))/24" 10.254.1.1
    done
    for i in $(seq $((a + 1)) $((a + b))); do
        netns_add_host "$i" br2 "10.254.2.$((i - a + 9))/24" 10.254.2.1
    done
    netns_start_daemons
    netns_log "$a + $b routed hosts up in $NETNS_DIR"
}

netns_addr() { # netns_addr I
    echo "${NETNS_ADDR[$1]}"
}

netns_exec() { # netns_exec I CMD...
    local i=$1
    shift
    [ -n "${NETNS_NS[$i]:-}" ] || netns_die "no host $i"
    ip netns exec "${NETNS_NS[$i]}" env DBUS_SYSTEM_BUS_ADDRESS="$(netns_bus "$i")" "$@"
}

# netns_browse I: every _parley._tcp record host I's Avahi resolves, one
# parsable line each (avahi-browse -prt). Bounded: avahi-browse -t can wait
# forever for a resolver whose service said goodbye first (an Avahi bug seen
# when members re-announce), so it is ended after NETNS_BROWSE_S seconds with
# what it printed.
NETNS_BROWSE_S=${NETNS_BROWSE_S:-10}
netns_browse() {
    netns_exec "$1" timeout "$NETNS_BROWSE_S" avahi-browse -prt _parley._tcp
}

# The command node I's parleyd runs under (common.sh's NODE_PREFIX_FN).
netns_node_prefix() { # netns_node_prefix I
    [ -n "${NETNS_NS[$1]:-}" ] || netns_die "no host $1"
    NODE_PREFIX=(ip netns exec "${NETNS_NS[$1]}" env "DBUS_SYSTEM_BUS_ADDRESS=$(netns_bus "$1")")
}

netns_bg() { # netns_bg I LOG CMD...
    local i=$1 log=$2
    shift 2
    [ -n "${NETNS_NS[$i]:-}" ] || netns_die "no host $i"
    # Not through netns_exec: a backgrounded function is a subshell, and its
    # PID is not the command's. ip and env exec, so $! is CMD itself.
    ip netns exec "${NETNS_NS[$i]}" env DBUS_SYSTEM_BUS_ADDRESS="$(netns_bus "$i")" "$@" \
        >"$log" 2>&1 &
    NETNS_LAST_PID=$!
    NETNS_BG_PIDS+=("$NETNS_LAST_PID")
}

netns_teardown() {
    local i pid ns
    trap - EXIT
    stop_all # the nodes first, while their network is still there
    for pid in "${NETNS_BG_PIDS[@]}"; do
        netns_kill_wait "$pid"
    done
    for i in $(seq "$NETNS_N"); do
        netns_avahi_stop "$i"
    done
    for i in $(seq "$NETNS_N"); do
        netns_dbus_stop "$i"
    done
    for ns in "${NETNS_CREATED[@]}"; do
        # Anything still inside a namespace of ours was started by this test
        # (a child of something we ran): stop it before the namespace goes.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            netns_kill_wait "$pid"
        done
        ip netns del "$ns" 2>/dev/null
    done
    NETNS_CREATED=()
    if [ -n "$NETNS_DIR" ] && [ -d "$NETNS_DIR" ] && [ -z "${NETNS_KEEP:-}" ]; then
        rm -rf "$NETNS_DIR"
    fi
}

# --- links through a userspace netem (opt-in) --------------------------------
#
# This kernel has no sch_netem, so tc cannot delay, jitter or reorder. These
# functions plug each host through its own netem_tap process (tests/netem_tap.c)
# instead of a veth pair: two TAP devices, the host's eth0 and the bridge's
# port, with the process copying frames between them under the faults of the
# host's parameter file. Nothing else changes: same addresses, bridge,
# daemons and mDNS (multicast is frames like any other).
#
#   netns_setup_tap N        as netns_setup N, every host behind netem_tap;
#                            all links start clean
#   netns_tap_set I PARAMS   host I's link faults, in netem_tap's syntax
#                            ("tx.delay_ms=20 tx.loss_pct=10 down=0"; "" for
#                            a clean link); returns once netem_tap has them
#   netns_tap_report I       host I's counter lines (tx, then rx), cumulative
#
# The binary is NETNS_TAP_BIN, by default ${BUILD:-build}/netem_tap. Each
# netem_tap is started from here (it enters the namespaces itself) and its
# PID kept with netns_bg's, so netns_teardown stops it by PID; its TAPs go
# with it. Its parameters and output are $NETNS_DIR/tap-h<I>.params, .log.
declare -a NETNS_TAP_PID

netns_tap_file() { # netns_tap_file I EXT: host I's netem_tap file
    echo "$NETNS_DIR/tap-h$1.$2"
}

# As netns_plug, with netem_tap in the middle of the link (host I's).
netns_plug_tap() { # netns_plug_tap I NS IFACE BR PORTNAME ADDR/PREFIX
    local i=$1 ns=$2 iface=$3 br=$4 port=$5 addr=$6 log pid
    log=$(netns_tap_file "$i" log)
    : >"$(netns_tap_file "$i" params)"
    "$NETNS_TAP_BIN" "$ns" "$iface" "$NETNS_BRIDGE_NS" "$port" "$(netns_tap_file "$i" params)" \
        >"$log" 2>&1 &
    pid=$!
    NETNS_BG_PIDS+=("$pid")
    NETNS_TAP_PID[$i]=$pid
    for _ in $(seq 100); do
        grep -qx ready "$log" && break
        kill -0 "$pid" 2>/dev/null || netns_die "netem_tap of host $i exited: $(cat "$log")"
        sleep 0.05
    done
    grep -qx ready "$log" || netns_die "netem_tap of host $i not ready after 5 s (log: $log)"
    ip -n "$NETNS_BRIDGE_NS" link set "$port" master "$br" up
    ip -n "$ns" addr add "$addr" dev "$iface"
    ip -n "$ns" link set "$iface" up
}

# As netns_add_host (no gateway), plugged by netns_plug_tap.
netns_add_host_tap() { # netns_add_host_tap I BR ADDR/PREFIX
    local i=$1 br=$2 addr=$3
    NETNS_NS[$i]="$NETNS_PREFIX-h$i"
    NETNS_ADDR[$i]=${addr%/*}
    netns_new_ns "${NETNS_NS[$i]}"
    netns_plug_tap "$i" "${NETNS_NS[$i]}" eth0 "$br" "vh$i" "$addr"
    netns_write_configs "$i" eth0
    NETNS_N=$((NETNS_N > i ? NETNS_N : i))
}

netns_setup_tap() { # netns_setup_tap N
    local n=$1 i
    [ "$n" -ge 1 ] && [ "$n" -le 200 ] || netns_die "netns_setup_tap: 1..200 hosts"
    NETNS_TAP_BIN=${NETNS_TAP_BIN:-${BUILD:-build}/netem_tap}
    [ -x "$NETNS_TAP_BIN" ] || netns_die "no $NETNS_TAP_BIN (make $NETNS_TAP_BIN)"
    [ -c /dev/net/tun ] || netns_die "no /dev/net/tun (CONFIG_TUN)"
    netns_begin
    netns_new_bridge br0
    for i in $(seq "$n"); do
        netns_add_host_tap "$i" br0 "10.254.1.$((i + 9))/24"
    done
    netns_start_daemons
    netns_log "$n hosts up behind netem_tap in $NETNS_DIR"
}

# Writes the file whole (a rename), signals netem_tap and waits (at most 5 s)
# for its "load=K" line, which says whether it took the parameters.
netns_tap_set() { # netns_tap_set I PARAMS
    local i=$1 params=$2 f log k line
    [ -n "${NETNS_TAP_PID[$i]:-}" ] || netns_die "host $i is not behind netem_tap"
    f=$(netns_tap_file "$i" params)
    log=$(netns_tap_file "$i" log)
    k=$(($(grep -c ' load=' "$log") + 1))
    printf '%s\n' "$params" >"$f.new" && mv "$f.new" "$f" || netns_die "cannot write $f"
    kill -HUP "${NETNS_TAP_PID[$i]}" || netns_die "netem_tap of host $i is gone"
    for _ in $(seq 100); do
        line=$(grep " load=$k " "$log")
        [ -n "$line" ] && break
        sleep 0.05
    done
    [ -n "$line" ] || netns_die "netem_tap of host $i did not load its parameters in 5 s"
    case $line in
    *" rejected: "*) netns_die "host $i: $line" ;;
    esac
    return 0
}

# SIGUSR1, then the two lines of that report (at most 5 s).
netns_tap_report() { # netns_tap_report I
    local i=$1 log k
    [ -n "${NETNS_TAP_PID[$i]:-}" ] || netns_die "host $i is not behind netem_tap"
    log=$(netns_tap_file "$i" log)
    k=$(($(grep -c ' report=' "$log") / 2 + 1))
    kill -USR1 "${NETNS_TAP_PID[$i]}" || netns_die "netem_tap of host $i is gone"
    for _ in $(seq 100); do
        [ "$(grep -c " report=$k " "$log")" = 2 ] && break
        sleep 0.05
    done
    [ "$(grep -c " report=$k " "$log")" = 2 ] \
        || netns_die "netem_tap of host $i did not report in 5 s"
    grep " report=$k " "$log"
}

#!/bin/sh
# tools/deps.sh — installs the Debian packages Parley needs that are missing.
# Runs apt-get as root, or through sudo; --no-install-recommends always.
#
# Another apt or dpkg at work (unattended-upgrades, a second `make deps`) holds
# the dpkg and apt locks: instead of failing, this waits for them, saying so,
# for at most PARLEY_APT_WAIT seconds (default 600), then fails naming the
# holder. apt and dpkg take fcntl (POSIX) locks, which `flock` cannot see, so
# the holder is found in /proc/locks by the lock files' device and inode: that
# needs only coreutils and awk, both on every Debian. apt-get install also gets
# DPkg::Lock::Timeout for a lock taken between our look and its start;
# `apt-get update` has no such option, so it is retried while a lock is held.
#
#   sh tools/deps.sh PACKAGE...
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "parley: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "parley: need root or sudo to install:$missing" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive

WAIT=${PARLEY_APT_WAIT:-600}
case $WAIT in
'' | *[!0-9]*) echo "parley: PARLEY_APT_WAIT must be a number of seconds" >&2; exit 1 ;;
esac
DEADLINE=$(($(date +%s) + WAIT))
LOCKS="/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock
/var/cache/apt/archives/lock"

# lock_holder: prints "PID (COMMAND) on FILE" for a held apt/dpkg lock and
# succeeds, or fails if none is held. /proc/locks names a file as
# MAJOR:MINOR:INODE, major and minor in hex; stat gives st_dev in decimal.
lock_holder() {
    for f in $LOCKS; do
        [ -e "$f" ] || continue
        d=$(stat -L -c %d "$f" 2>/dev/null) || continue
        ino=$(stat -L -c %i "$f" 2>/dev/null) || continue
        dev=$(printf '%02x:%02x:%s' $(((d >> 8) & 0xfff)) \
            $(((d & 0xff) | ((d >> 12) & 0xfff00))) "$ino")
        pid=$(awk -v dev="$dev" '$0 !~ /->/ && $6 == dev { print $5; exit }' /proc/locks \
            2>/dev/null)
        if [ -n "$pid" ]; then
            echo "$pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo '?')) on $f"
            return 0
        fi
    done
    return 1
}

# wait_for_locks: returns once no apt/dpkg lock is held, saying every 10 s
# what it waits for; ends the script when the deadline has passed.
wait_for_locks() {
    said=0
    while holder=$(lock_holder); do
        now=$(date +%s)
        if [ "$now" -ge "$DEADLINE" ]; then
            echo "parley: gave up after ${WAIT}s: another apt or dpkg still holds its lock:" \
                "process $holder (raise PARLEY_APT_WAIT to wait longer)" >&2
            exit 1
        fi
        if [ $((now - said)) -ge 10 ]; then
            echo "parley: waiting for another apt or dpkg to finish: process $holder" \
                "($((DEADLINE - now))s left)"
            said=$now
        fi
        sleep 1
    done
    return 0
}

# apt_get ARGS...: apt-get once the locks are free; run again if it failed
# while a lock was held (someone took it between our look and its start).
apt_get() {
    while :; do
        wait_for_locks
        left=$((DEADLINE - $(date +%s)))
        [ $left -gt 0 ] || left=1
        $SUDO apt-get -o DPkg::Lock::Timeout="$left" "$@" && return 0
        rc=$?
        lock_holder >/dev/null && [ "$(date +%s)" -lt "$DEADLINE" ] || return $rc
    done
}

# Installing avahi-daemon or dbus must not start them on the machine's real
# interfaces: while we install, a policy-rc.d that forbids starting services
# is in place (unless the machine already has one).
if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    trap 'exit 130' INT TERM
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
fi
# A failed update is not fatal: the lists already there may do.
apt_get update -qq
# shellcheck disable=SC2086
apt_get install -y -qq --no-install-recommends $missing

#!/bin/sh
# tools/deps.sh — installs the Debian packages Parley needs that are missing.
# Runs apt-get as root, or through sudo; --no-install-recommends always.
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
# Installing avahi-daemon or dbus must not start them on the machine's real
# interfaces: while we install, a policy-rc.d that forbids starting services
# is in place (unless the machine already has one).
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
rc=$?
[ $made_policy = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit $rc

#!/bin/bash
# Strict modes (node/home.h), as ssh's StrictModes: a home others can write or
# that is not ours, and an identity.key that others can read or write, that
# is a symbolic link or is not ours, make parleyd and every CLI command
# refuse with a message naming the fix; after the fix the node starts. A
# fresh home comes out 0700 with its key 0600 whatever the umask, and a home
# of the old shape (0700, or 0755 as mkdir makes it) keeps working.
. "$(dirname "$0")/lib.sh"
NODE_ARGS="$NODE_ARGS --no-local"
H=$TMP/h

# refused WHAT TEXT...: parleyd and two CLI commands on H all fail (not the
# no-daemon exit 3) and each says every TEXT.
refused() {
    local what=$1 t rc
    shift
    timeout 20 "$BIN/parleyd" --home "$H" --listen 'tcp://127.0.0.1:*' --no-mdns --no-local \
        >"$TMP/out" 2>"$TMP/err"
    rc=$?
    [ $rc != 0 ] && [ $rc != 124 ] || fail "$what: parleyd did not refuse (exit $rc)"
    for t in "$@"; do
        grep -qF -- "$t" "$TMP/err" || fail "$what: parleyd did not say '$t': $(cat "$TMP/err")"
    done
    grep -q "^parleyd: " "$TMP/err" || fail "$what: parleyd's message lacks its name"
    for cmd in id status; do
        p h $cmd >"$TMP/out" 2>"$TMP/err"
        rc=$?
        [ $rc = 1 ] || fail "$what: parley $cmd exited $rc, not 1: $(cat "$TMP/err")"
        for t in "$@"; do
            grep -qF -- "$t" "$TMP/err" || fail "$what: parley $cmd did not say '$t': $(cat "$TMP/err")"
        done
    done
}

# A fresh home is private even under a permissive umask.
(umask 0 && p h init >/dev/null) || fail "init"
[ "$(stat -c %a "$H")" = 700 ] || fail "a fresh home is mode $(stat -c %a "$H"), not 700"
[ "$(stat -c %a "$H/identity.key")" = 600 ] || fail "a fresh key is not mode 600"
(umask 0 && exec "$BIN/parleyd" --home "$TMP/d" --listen 'tcp://127.0.0.1:*' --no-mdns \
    --no-local >"$TMP/d.log" 2>&1) &
PIDS[d]=$!
NODE_NAMES+=(d)
wait_until 20 test -S "$TMP/d/api.sock" || fail "parleyd on a new home did not start"
[ "$(stat -c %a "$TMP/d")" = 700 ] || fail "parleyd made its home mode $(stat -c %a "$TMP/d")"
[ "$(stat -c %a "$TMP/d/identity.key")" = 600 ] || fail "parleyd made its key not 600"
[ "$(stat -c %a "$TMP/d/parley.db")" = 600 ] || fail "parleyd made its database not 600"
node_stop d || fail "parleyd on a new home did not stop cleanly"

# The home: group- or world-writable, refused; 0755 (what mkdir makes) is fine.
chmod g+w "$H"
refused "home g+w" "$H is writable by group/others" "run chmod 700 $H"
chmod 700 "$H" && chmod o+w "$H"
refused "home o+w" "writable by group/others" "run chmod 700 $H"
chmod 755 "$H"
p h id >/dev/null || fail "a home of mode 755 was refused"
chmod 700 "$H"

# identity.key: open to others, a link, not a file.
for m in 644 640 604 660; do
    chmod $m "$H/identity.key"
    refused "key $m" "$H/identity.key is accessible to group/others" \
        "run chmod 600 $H/identity.key"
done
chmod 400 "$H/identity.key"
p h id >/dev/null || fail "a key of mode 400 was refused"
chmod 600 "$H/identity.key"
mv "$H/identity.key" "$TMP/key.elsewhere"
ln -s "$TMP/key.elsewhere" "$H/identity.key"
refused "key symlink" "$H/identity.key is a symbolic link" "run mv $TMP/key.elsewhere $H/identity.key"
mv "$TMP/key.elsewhere" "$H/identity.key" # the fix it names

# After the fixes the node starts, and the CLI talks to it.
node_start h
ID=$(nid h)
[ "$(p h status --json | jq -r .id)" = "$ID" ] || fail "node after the fixes"
# The database is held to the key's rule (checked when the node next starts).
node_stop h || fail "stop"
chmod 644 "$H/parley.db"
refused "database 644" "$H/parley.db is accessible to group/others" "run chmod 600 $H/parley.db"
chmod 600 "$H/parley.db"

# A home reached through a symbolic link is allowed; the directory it names is
# what is checked.
ln -s "$H" "$TMP/link"
"$BIN/parley" --home "$TMP/link" id >/dev/null || fail "a linked home was refused"
chmod 770 "$H"
"$BIN/parley" --home "$TMP/link" id 2>"$TMP/err" && fail "a linked g+w home was used"
grep -qF "run chmod 700 $TMP/link" "$TMP/err" || fail "linked home message: $(cat "$TMP/err")"
chmod 700 "$H"

# Owners: a home or a key that belongs to someone else (needs root to make).
if [ "$(id -u)" = 0 ]; then
    me=$(id -u)
    chown nobody "$H"
    refused "home owned by nobody" "$H is owned by uid $(id -u nobody), not by you" \
        "run chown $me $H"
    chown "$me" "$H"
    chown nobody "$H/identity.key"
    refused "key owned by nobody" "$H/identity.key is owned by uid $(id -u nobody)" \
        "run chown $me $H/identity.key"
    chown "$me" "$H/identity.key"
else
    echo "not root: owner checks skipped" >&2
fi

node_start h
[ "$(nid h)" = "$ID" ] || fail "the node after every fix has another id"
echo "ok"

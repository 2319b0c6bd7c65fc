#!/bin/bash
# tests/build_deps.sh — a changed header rebuilds every object that includes
# it. The compiler writes each object's headers into a .d file beside it
# (-MMD -MP); make must read every one of them, or an object built against
# an old header stays and the binaries disagree on a struct's layout. So:
# each BUILD/**/*.d must be in the MAKEFILE_LIST that `make -pn` prints,
# and pretending tools/chat/chat_int.h changed (make -W) must rebuild its
# four users. Run after a build (tests/run.sh runs it on build/).
set -u
cd "$(dirname "$0")/.." || exit 2
B=${BUILD:-build}
read_list=$(make -pn SAN= BUILD="$B" all 2>/dev/null | sed -n 's/^MAKEFILE_LIST := //p' | tr ' ' '\n')
n=0
missing=0
while read -r d; do
    n=$((n + 1))
        if ! grep -qxF -- "$d" <<<"$read_list"; then
        echo "never read by make: $d"
        missing=$((missing + 1))
    fi
done < <(find "$B" -name '*.d' | sort)
[ "$n" -gt 0 ] || { echo "no .d files in $B: build first"; exit 2; }
if [ "$missing" -gt 0 ]; then
    echo "$missing of $n dependency files are never read: their objects ignore header changes"
    exit 1
fi
out=$(make -n -W tools/chat/chat_int.h SAN= BUILD="$B" all 2>/dev/null)
for f in chat cmd conv view; do
    grep -q -- "-c tools/chat/$f.c" <<<"$out" || { echo "chat_int.h does not rebuild $B/tools/chat/$f.o"; exit 1; }
done
echo "ok: make reads all $n dependency files of $B"

#!/bin/sh
# tests/includes_negative.sh — proves tools/check_includes.sh can fail: on a
# temporary tree with known include circles it must exit 1 and name exactly
# those circles; on the same tree with the circles cut it must exit 0. Without
# this, a checker that never reports anything would pass `make test` forever.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHECK="$ROOT/tools/check_includes.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/parley-includes-neg.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$T/proto" "$T/store" "$T/node" "$T/tests/fuzz"
# proto/a and proto/b: a circle that only closes through a .c file (a.h
# includes b.h, b.c includes a.h), which a header-only check would miss.
printf '#include "b.h"\n' >"$T/proto/a.h"
printf '#include "a.h"\n' >"$T/proto/a.c"
printf '#include <stdio.h>\n' >"$T/proto/b.h"
printf '#include "b.h"\n#include "./a.h"\n' >"$T/proto/b.c"
# store/s -> node/n -> store/s across folders, spelled with "..".
printf '#include "../node/n.h"\n' >"$T/store/s.h"
printf '#include "s.h"\n' >"$T/store/s.c"
printf '#include "../proto/b.h"\n' >"$T/node/n.h"
printf '#include "n.h"\n#include "../store/../store/s.h"\n' >"$T/node/n.c"
# Not circles: a test and a fuzz target that include everything.
printf '#include "../proto/a.h"\n#include "../node/n.h"\n' >"$T/tests/t.c"
printf '#include "../../store/s.h"\n' >"$T/tests/fuzz/f.c"

out=$(sh "$CHECK" "$T" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 1 ] || fail "exit $rc on a tree with circles, want 1"
want="cycle: node/n -> store/s -> node/n
cycle: proto/a -> proto/b -> proto/a"
got=$(echo "$out" | grep '^cycle: ' | LC_ALL=C sort)
[ "$got" = "$want" ] || fail "reported cycles differ; want:
$want"

# Cut both circles: the same tree must now pass.
printf '#include "a.h"\n' >"$T/proto/a.c"
printf '#include "b.h"\n' >"$T/proto/b.c"
printf '#include "n.h"\n' >"$T/node/n.c"
out=$(sh "$CHECK" "$T" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "exit $rc on a tree without circles, want 0"
echo "ok: circles reported, acyclic tree accepted"

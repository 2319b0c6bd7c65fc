#!/bin/sh
# tools/check_includes.sh — fails if the `#include "..."` graph has a circle.
#
#   sh tools/check_includes.sh [ROOT]      (ROOT defaults to the repository)
#
# Reads every .c and .h under ROOT's node/ proto/ store/ discovery/ tools/
# tests/. A module is a file path without its extension: X.c and X.h in the
# same folder are one module, so X.c including X.h is not an edge. Module A
# has an edge to module B when any file of A includes a file of B; a quoted
# include is resolved against the including file's folder, as the compiler
# does (the build passes no -I of ours). Angle-bracket includes are ignored.
#
# Prints one line per elementary cycle, "cycle: a -> b -> a" (each cycle once,
# starting at its smallest module), then a count, and exits 1 if there is any;
# exits 0 with "includes: no cycles (N modules, M edges)" otherwise.
# POSIX sh, find, sort and awk only (runs with mawk).
set -u
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || { echo "check_includes: no directory $ROOT" >&2; exit 2; }

dirs=""
for d in node proto store discovery tools tests; do
    [ -d "$d" ] && dirs="$dirs $d"
done
[ -n "$dirs" ] || { echo "check_includes: no source folder under $ROOT" >&2; exit 2; }

edges=$(mktemp "${TMPDIR:-/tmp}/parley-includes.XXXXXX") || exit 2
trap 'rm -f "$edges"' EXIT

# Pass 1: "FROM TO" module edges, one per line.
# shellcheck disable=SC2086
find $dirs -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort | {
    while IFS= read -r f; do
        awk -v file="$f" '
        function module(p) { sub(/\.[ch]$/, "", p); return p }
        # Joins the including folder and the quoted name, folding "." and "..".
        function resolve(dir, name,    parts, n, i, out, k, s) {
            n = split(dir "/" name, parts, "/")
            k = 0
            for (i = 1; i <= n; i++) {
                if (parts[i] == "" || parts[i] == ".") {
                    continue
                }
                if (parts[i] == ".." && k > 0 && out[k] != "..") {
                    k--
                } else {
                    out[++k] = parts[i]
                }
            }
            s = ""
            for (i = 1; i <= k; i++) {
                s = (s == "" ? out[i] : s "/" out[i])
            }
            return s
        }
        BEGIN {
            dir = file
            if (!sub(/\/[^\/]*$/, "", dir)) {
                dir = "."
            }
            from = module(file)
        }
        /^[ \t]*#[ \t]*include[ \t]*"/ {
            line = $0
            sub(/^[^"]*"/, "", line)
            sub(/".*$/, "", line)
            to = module(resolve(dir, line))
            if (to != from) {
                print from, to
            }
        }' "$f"
    done
} | LC_ALL=C sort -u >"$edges"

# Pass 2: every elementary cycle. Modules are numbered in sorted order ("M"
# lines come first). For each module s, a depth-first walk over modules
# numbered above s finds the cycles whose smallest module is s, so each cycle
# is printed once. Walks stay inside the strongly connected part holding s
# (Tarjan, computed first), which keeps them short on a mostly acyclic graph.
{
    tr ' ' '\n' <"$edges" | LC_ALL=C sort -u | sed 's/^/M /'
    sed 's/^/E /' "$edges"
} | awk '
$1 == "M" {
    id[$2] = ++nmod
    name[nmod] = $2
}
$1 == "E" {
    a = id[$2]
    out[a, ++nout[a]] = id[$3]
    nedges++
}
# Tarjan, recursive; comp[v] numbers the strongly connected part holding v.
function strong(v,    i, w) {
    idx[v] = low[v] = ++counter
    stack[++sp] = v
    onstack[v] = 1
    for (i = 1; i <= nout[v]; i++) {
        w = out[v, i]
        if (!(w in idx)) {
            strong(w)
            if (low[w] < low[v]) {
                low[v] = low[w]
            }
        } else if (onstack[w] && idx[w] < low[v]) {
            low[v] = idx[w]
        }
    }
    if (low[v] == idx[v]) {
        ncomp++
        do {
            w = stack[sp--]
            onstack[w] = 0
            comp[w] = ncomp
        } while (w != v)
    }
}
function walk(v, depth,    i, w, j, s) {
    path[depth] = v
    onpath[v] = 1
    for (i = 1; i <= nout[v]; i++) {
        w = out[v, i]
        if (w == start) {
            s = name[path[1]]
            for (j = 2; j <= depth; j++) {
                s = s " -> " name[path[j]]
            }
            print "cycle: " s " -> " name[start]
            ncycles++
        } else if (w > start && comp[w] == comp[start] && !onpath[w]) {
            walk(w, depth + 1)
        }
    }
    onpath[v] = 0
}
END {
    for (v = 1; v <= nmod; v++) {
        if (!(v in idx)) {
            strong(v)
        }
    }
    for (start = 1; start <= nmod; start++) {
        walk(start, 1)
    }
    if (ncycles > 0) {
        print "includes: " ncycles " cycle(s) among " nmod " modules"
        exit 1
    }
    print "includes: no cycles (" nmod " modules, " nedges + 0 " edges)"
}'

# tests/common.sh — shell helpers shared by the integration and netns tests.

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

# tests/netns/netlib.sh — helpers the private-network tests share (after
# tests/netns/lib.sh, which gives home, p, jqe): the node API by JSON-RPC,
# a running node's database, ids as raw keys, membership and counters.

# The interpreter itself, not a shim that finds it on every call.
PY=$(python3 -c 'import sys; print(sys.executable)') || netns_die "missing python3"

# rpc I METHOD [PARAMS]: one JSON-RPC call on node I's API; prints the
# result, or the error on stderr and returns 1.
rpc() {
    "$PY" - "$(home "$1")/api.sock" "$2" "${3:-"{}"}" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
req = {"jsonrpc": "2.0", "id": 1, "method": sys.argv[2], "params": json.loads(sys.argv[3])}
s.sendall((json.dumps(req) + "\n").encode())
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
r = json.loads(buf)
if "error" in r:
    sys.stderr.write("rpc %s: %s\n" % (sys.argv[2], json.dumps(r["error"])))
    sys.exit(1)
print(json.dumps(r["result"]))
EOF
}

# Node I's database, read while it runs (WAL: a reader does not disturb it).
db_count() { # db_count I SQL: the one value SQL selects
    "$PY" - "$(home "$1")/parley.db" "$2" <<'EOF'
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=5)
print(c.execute(sys.argv[2]).fetchone()[0])
EOF
}
raw_hex() { # raw_hex ID: the 32-byte key of a base32 id, in hex
    "$PY" -c 'import base64, sys; print(base64.b32decode(sys.argv[1].upper() + "====")[:32].hex())' "$1"
}
has_secret() { [ "$(db_count "$1" 'SELECT count(*) FROM network_keys')" -ge 1 ]; }
is_member() { # is_member I
    rpc "$1" network.show | jqe '.mode == "network" and (.role == "member" or .role == "admin")'
}
counter() { # counter I NAME: status.rejected.NAME (0 when absent)
    p "$1" status --json | jq -r --arg c "$2" '.rejected[$c] // 0'
}

# Sourced by the serve integration scripts: the binary and curl checks, a temp dir, a cleanup
# trap that always kills the server, fail() that prints the server log, and start_server. Set
# TEST_NAME first.
BIN="${CACHALOT_BINARY:-build/cachalot}"
[[ -x "$BIN" ]] || { echo "FAIL: no cachalot binary at $BIN" >&2; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is not installed" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/cachalot-${TEST_NAME:-serve}-test.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [[ -f "$TMP/server.log" ]]; then
        echo "---- server log ----" >&2
        cat "$TMP/server.log" >&2
    fi
    exit 1
}

# Starts `cachalot serve ARGS...` in the background on a free port and sets SERVER_PID, PORT and
# BASE from its "serving ... on" line. SERVER_START_S (default 60) bounds the wait: the first
# start generates the demo model.
start_server() {
    local bound="${SERVER_START_S:-60}"
    : > "$TMP/server.log"
    "$BIN" serve --port 0 --host 127.0.0.1 --data-dir "$TMP/data" "$@" 2> "$TMP/server.log" &
    SERVER_PID=$!
    PORT=""
    for _ in $(seq 1 $((bound * 10))); do
        kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before listening"
        line="$(grep -m1 -E '^cachalot: serving .* on http://127\.0\.0\.1:[0-9]+$' "$TMP/server.log" || true)"
        if [[ -n "$line" ]]; then
            PORT="${line##*:}"
            break
        fi
        sleep 0.1
    done
    [[ -n "$PORT" ]] || fail "no listening line within $bound s"
    BASE="http://127.0.0.1:$PORT"
}

# Sourced by the serve integration scripts: the binary and curl checks, a temp dir, a cleanup
# trap that always kills the server, and fail() that prints the server log. Set TEST_NAME first.
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

#!/usr/bin/env bash
# `cachalot serve` as a real process on 127.0.0.1 and a free port: health, model listing,
# OpenAI error objects for 404/405/413, /metrics through promtool, API-key auth from
# CACHALOT_API_KEYS, and a clean exit on SIGTERM. The server is always killed on exit.
set -euo pipefail

TEST_NAME=serve
# shellcheck source=serve_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/serve_common.sh"

# Stops the server with SIGTERM and checks it exits 0 within 10 s.
stop_server() {
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        fail "the server did not exit within 10 s of SIGTERM"
    fi
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    [[ $rc -eq 0 ]] || fail "the server exited with $rc after SIGTERM"
}

# request METHOD PATH [curl args...] -> sets CODE and BODY
request() {
    local method="$1" path="$2"
    shift 2
    CODE="$(curl -sS -o "$TMP/body" -w '%{http_code}' -X "$method" --max-time 30 "$@" "$BASE$path")" ||
        fail "curl $method $path failed"
    BODY="$(cat "$TMP/body")"
}

expect_code() { # expected description
    [[ "$CODE" == "$1" ]] || fail "$2: expected HTTP $1, got $CODE: $BODY"
}

expect_error_json() { # description
    /usr/bin/python3 - "$TMP/body" <<'PY' || fail "$1: body is not an OpenAI error object: $BODY"
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert isinstance(e["message"], str) and e["message"]
assert isinstance(e["type"], str)
assert "param" in e and "code" in e
PY
}

# ---- no keys ------------------------------------------------------------------------------------
start_server
grep -q "serving cachalot-demo on" "$TMP/server.log" || fail "the listening line does not name cachalot-demo"

request GET /health
expect_code 200 "GET /health"
[[ "$BODY" == '{"status":"ok"}' ]] || fail "GET /health body: $BODY"

request GET /ready
expect_code 200 "GET /ready"

request GET /v1/models
expect_code 200 "GET /v1/models"
/usr/bin/python3 - "$TMP/body" <<'PY' || fail "GET /v1/models does not list cachalot-demo: $BODY"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["object"] == "list"
m = d["data"][0]
assert m["id"] == "cachalot-demo" and m["object"] == "model" and m["owned_by"] == "cachalot"
assert isinstance(m["created"], int) and m["max_model_len"] > 0
PY

request GET /v1/models/cachalot-demo
expect_code 200 "GET /v1/models/cachalot-demo"
request GET /v1/models/no-such-model
expect_code 404 "GET /v1/models/no-such-model"
expect_error_json "GET /v1/models/no-such-model"
grep -q "no-such-model" "$TMP/body" || fail "the 404 does not name the model: $BODY"

request GET /no/such/path
expect_code 404 "unknown path"
expect_error_json "unknown path"

request POST /health
expect_code 405 "POST /health"
expect_error_json "POST /health"
curl -sS -D - -o /dev/null -X POST "$BASE/health" | grep -qi '^allow: GET' || fail "405 without an Allow header"

head -c $((33 * 1024 * 1024)) /dev/zero > "$TMP/big"
request POST /v1/chat/completions -H 'Content-Type: application/json' --data-binary "@$TMP/big"
expect_code 413 "33 MiB body"
expect_error_json "33 MiB body"

# A request line curl would never send: check the raw answer with bash's /dev/tcp.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'NOT A REQUEST\r\n\r\n' >&3
raw="$(timeout 10 cat <&3 || true)"
exec 3>&-
[[ "$raw" == "HTTP/1.1 400"* ]] || fail "a malformed request did not get 400: $raw"

request GET /metrics
expect_code 200 "GET /metrics"
grep -q '^cachalot_gateway_requests_total{code="200",route="/health"}' "$TMP/body" ||
    fail "/metrics lacks cachalot_gateway_requests_total for /health"
grep -q '^# HELP cachalot_gateway_request_duration_seconds' "$TMP/body" ||
    fail "/metrics lacks the duration histogram's help"
if command -v promtool >/dev/null; then
    promtool check metrics < "$TMP/body" || fail "promtool check metrics rejected /metrics"
elif [[ "${CACHALOT_ALLOW_SKIP:-0}" == "1" ]]; then
    echo "SKIP: promtool is not installed (CACHALOT_ALLOW_SKIP=1)" >&2
else
    fail "promtool is not installed (install Debian's prometheus package, or set CACHALOT_ALLOW_SKIP=1)"
fi

stop_server

# ---- with keys: the demo model is reused, not generated again -------------------------------------
CACHALOT_API_KEYS="sk-test-one, sk-test-two" start_server
grep -q "creating the demo model" "$TMP/server.log" && fail "the demo model was generated a second time"

request GET /v1/models
expect_code 401 "no key"
expect_error_json "no key"
grep -q '"code":"invalid_api_key"' "$TMP/body" || fail "401 without code invalid_api_key: $BODY"
request GET /v1/models -H "Authorization: Bearer sk-wrong"
expect_code 401 "wrong key"
request GET /v1/models -H "Authorization: Bearer sk-test-two"
expect_code 200 "right key"
request GET /health
expect_code 200 "/health stays open"
request GET /metrics
expect_code 200 "/metrics stays open"

stop_server

# ---- a keys file with a per-key rpm limit --------------------------------------------------------
printf '# keys\nsk-limited rpm=2\n\nsk-free\n' > "$TMP/keys.txt"
start_server --api-keys-file "$TMP/keys.txt"
request GET /v1/models -H "Authorization: Bearer sk-limited"
expect_code 200 "limited key, request 1"
request GET /v1/models -H "Authorization: Bearer sk-limited"
expect_code 200 "limited key, request 2"
curl -sS -D "$TMP/headers" -o "$TMP/body" -H "Authorization: Bearer sk-limited" "$BASE/v1/models" > /dev/null
grep -q '^HTTP/1.1 429' "$TMP/headers" || fail "the third request within a minute was not 429"
grep -qi '^retry-after: [0-9]' "$TMP/headers" || fail "429 without Retry-After"
stop_server

# ---- bad configuration fails before listening ----------------------------------------------------
printf 'sk-ok\nsk-bad rpm=lots\n' > "$TMP/bad-keys.txt"
if "$BIN" serve --port 0 --data-dir "$TMP/data" --api-keys-file "$TMP/bad-keys.txt" 2> "$TMP/err.log"; then
    fail "a malformed keys file was accepted"
fi
grep -q "line 2" "$TMP/err.log" || fail "the keys-file error does not name the line: $(cat "$TMP/err.log")"

printf 'port: 0\nthreads: many\n' > "$TMP/bad.yaml"
if "$BIN" serve --data-dir "$TMP/data" --config "$TMP/bad.yaml" 2> "$TMP/err.log"; then
    fail "an ill-typed config was accepted"
fi
grep -q '`threads`' "$TMP/err.log" || fail "the config error does not name the key: $(cat "$TMP/err.log")"

# A busy port is an error naming the address.
start_server
if "$BIN" serve --port "$PORT" --data-dir "$TMP/data" 2> "$TMP/err.log"; then
    fail "a second server on a busy port did not fail"
fi
grep -q "127.0.0.1:$PORT" "$TMP/err.log" || fail "the busy-port error does not name the address: $(cat "$TMP/err.log")"
stop_server

echo "PASS: serve"

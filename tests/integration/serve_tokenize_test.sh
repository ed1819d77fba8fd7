#!/usr/bin/env bash
# `cachalot serve` as a real process on 127.0.0.1 and a free port, with the demo model: it loads
# the checkpoint (and says so on stderr), /tokenize gives BOS + the ids `cachalot tokenize` gives
# (none with add_special_tokens false), chat messages give exactly `cachalot chat-encode --ids`,
# /detokenize round-trips, another model is 404 and bad JSON 400. The server is always killed.
set -euo pipefail

TEST_NAME=serve-tokenize
# shellcheck source=serve_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/serve_common.sh"

# 120 s bound: the first start generates and loads the demo model.
SERVER_START_S=120 start_server
MODEL_DIR="$TMP/data/models/cachalot-demo"
grep -qE '^cachalot: loaded cachalot-demo from .* in [0-9.]+ s: layers=[0-9]+ hidden=[0-9]+ vocab=[0-9]+' \
    "$TMP/server.log" || fail "no load line naming the model's size"

# post PATH BODY_FILE -> sets CODE and BODY
post() {
    CODE="$(curl -sS -o "$TMP/body" -w '%{http_code}' -X POST --max-time 30 -H 'Content-Type: application/json' \
        --data-binary "@$2" "$BASE$1")" || fail "curl POST $1 failed"
    BODY="$(cat "$TMP/body")"
}
expect_code() { # expected description
    [[ "$CODE" == "$1" ]] || fail "$2: expected HTTP $1, got $CODE: $BODY"
}
py() { /usr/bin/python3 - "$@"; }

[[ "$(curl -sS --max-time 10 "$BASE/ready")" == '{"status":"ready"}' ]] || fail "/ready is not ready after loading"

# ---- a prompt: BOS first, then exactly what `cachalot tokenize` (HF, no special tokens) gives --------
PROMPT='Hello world! <｜User｜> is matched, ünïcode too.'
py "$PROMPT" "$TMP/texts.json" <<'PY'
import json, sys
json.dump([sys.argv[1]], open(sys.argv[2], "w"), ensure_ascii=False)
PY
"$BIN" tokenize --model "$MODEL_DIR" --texts "$TMP/texts.json" > "$TMP/cli_ids.json" || fail "cachalot tokenize failed"

py "$PROMPT" "$TMP/req.json" <<'PY'
import json, sys
json.dump({"model": "cachalot-demo", "prompt": sys.argv[1]}, open(sys.argv[2], "w"), ensure_ascii=False)
PY
post /tokenize "$TMP/req.json"
expect_code 200 "tokenize a prompt"
py "$TMP/body" "$TMP/cli_ids.json" "$MODEL_DIR/config.json" <<'PY' || fail "tokenize a prompt: wrong ids: $BODY"
import json, sys
r = json.load(open(sys.argv[1]))
cli = json.load(open(sys.argv[2]))[0]
bos = json.load(open(sys.argv[3]))["bos_token_id"]
assert r["tokens"][0] == bos, (r["tokens"][:3], bos)
assert r["tokens"][1:] == cli, (r["tokens"], cli)
assert r["count"] == len(cli) + 1
assert r["max_model_len"] > 0
PY

py "$PROMPT" "$TMP/req.json" <<'PY'
import json, sys
json.dump({"model": "cachalot-demo", "prompt": sys.argv[1], "add_special_tokens": False}, open(sys.argv[2], "w"),
          ensure_ascii=False)
PY
post /tokenize "$TMP/req.json"
expect_code 200 "tokenize without special tokens"
py "$TMP/body" "$TMP/cli_ids.json" <<'PY' || fail "add_special_tokens false: wrong ids: $BODY"
import json, sys
r = json.load(open(sys.argv[1]))
cli = json.load(open(sys.argv[2]))[0]
assert r["tokens"] == cli and r["count"] == len(cli)
PY
cp "$TMP/body" "$TMP/plain_ids.json"

# ---- /detokenize round trip ---------------------------------------------------------------------
py "$TMP/plain_ids.json" "$TMP/req.json" <<'PY'
import json, sys
json.dump({"model": "cachalot-demo", "tokens": json.load(open(sys.argv[1]))["tokens"]}, open(sys.argv[2], "w"))
PY
post /detokenize "$TMP/req.json"
expect_code 200 "detokenize"
py "$TMP/body" "$PROMPT" <<'PY' || fail "detokenize does not give the prompt back: $BODY"
import json, sys
assert json.load(open(sys.argv[1]))["prompt"] == sys.argv[2]
PY

# ---- chat messages: the same ids as `cachalot chat-encode --ids` --------------------------------
cat > "$TMP/chat.json" <<'JSON'
{"model": "cachalot-demo",
 "messages": [{"role": "system", "content": "You are terse."},
              {"role": "user", "content": "What is the weather in Paris? <｜Assistant｜> is just text here."}],
 "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
 "reasoning_effort": "high"}
JSON
"$BIN" chat-encode --model "$MODEL_DIR" --request "$TMP/chat.json" --ids > "$TMP/chat_ids.json" ||
    fail "cachalot chat-encode --ids failed"
post /tokenize "$TMP/chat.json"
expect_code 200 "tokenize chat messages"
py "$TMP/body" "$TMP/chat_ids.json" "$MODEL_DIR/config.json" <<'PY' || fail "chat messages: not chat-encode's ids: $BODY"
import json, sys
r = json.load(open(sys.argv[1]))
ids = json.load(open(sys.argv[2]))
assert r["count"] == len(ids), (r["count"], len(ids))
assert r["tokens"] == ids
assert ids[0] == json.load(open(sys.argv[3]))["bos_token_id"]
PY

# ---- errors ---------------------------------------------------------------------------------------
expect_error() { # code description text-in-message
    expect_code "$1" "$2"
    py "$TMP/body" "$3" <<'PY' || fail "$2: not an OpenAI error naming '$3': $BODY"
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert sys.argv[2] in e["message"], e["message"]
assert isinstance(e["type"], str) and "param" in e and "code" in e
PY
}
echo '{"model": "no-such-model", "prompt": "hi"}' > "$TMP/req.json"
post /tokenize "$TMP/req.json"
expect_error 404 "tokenize for another model" "no-such-model"
echo '{"model": "no-such-model", "tokens": [1, 2]}' > "$TMP/req.json"
post /detokenize "$TMP/req.json"
expect_error 404 "detokenize for another model" "no-such-model"
echo '{"model": "cachalot-demo", "prompt": "unterminated' > "$TMP/req.json"
post /tokenize "$TMP/req.json"
expect_error 400 "bad JSON" "not valid JSON"
echo '{"model": "cachalot-demo"}' > "$TMP/req.json"
post /tokenize "$TMP/req.json"
expect_error 400 "neither prompt nor messages" "prompt"
echo '{"model": "cachalot-demo", "tokens": [1, 99999999]}' > "$TMP/req.json"
post /detokenize "$TMP/req.json"
expect_error 400 "an id out of range" "99999999"

# ---- a clean exit on SIGTERM ---------------------------------------------------------------------
kill -TERM "$SERVER_PID"
for _ in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$SERVER_PID" 2>/dev/null && fail "the server did not exit within 10 s of SIGTERM"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
[[ $rc -eq 0 ]] || fail "the server exited with $rc after SIGTERM"

# ---- a checkpoint that does not load fails before listening, naming what is wrong ----------------
mkdir -p "$TMP/broken"
cp "$MODEL_DIR/config.json" "$MODEL_DIR/tokenizer.json" "$TMP/broken/"
if timeout 60 "$BIN" serve --port 0 --data-dir "$TMP/data" --model "$TMP/broken" 2> "$TMP/err.log"; then
    fail "a checkpoint without weights was served"
fi
grep -q "cannot load the model" "$TMP/err.log" || fail "the load error is not reported: $(cat "$TMP/err.log")"

echo "PASS: serve tokenize"

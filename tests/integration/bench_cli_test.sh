#!/usr/bin/env bash
# `cachalot bench` end to end on the tiny fixture: with --json, stdout is exactly the object of
# DESIGN.md §10 (checked field by field), progress goes to stderr, the table form names every
# test, and bad input fails with a message that names it. No timing is asserted: numbers belong to
# the benchmark, not to tests.
set -euo pipefail
bin="${CACHALOT_BINARY:-build/cachalot}"
shared="${CACHALOT_SHARED:-../shared}"
model="$shared/fixtures/tiny-v4"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "json: pp32, tg8, tg4x3, 2 reps, 2 threads"
"$bin" bench --model "$model/" --threads 2 --reps 2 --tests pp32,tg8,tg4x3 --json >"$tmp/out.json" 2>"$tmp/err"
/usr/bin/python3 - "$tmp/out.json" "$tmp/err" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
obj = json.loads(text)  # the whole of stdout is one object
assert text.strip().startswith("{") and text.strip().endswith("}"), text
assert set(obj) == {"model", "threads", "peak_rss_bytes", "results"}, sorted(obj)
assert obj["model"] == "tiny-v4", obj["model"]
assert obj["threads"] == 2, obj["threads"]
assert isinstance(obj["peak_rss_bytes"], int) and obj["peak_rss_bytes"] > 1 << 20, obj["peak_rss_bytes"]
want = [("pp32", 1, 32), ("tg8", 1, 8), ("tg4x3", 3, 12)]
got = [(r["test"], r["n_seqs"], r["n_tokens"]) for r in obj["results"]]
assert got == want, got
for r in obj["results"]:
    assert set(r) == {"test", "n_seqs", "n_tokens", "tokens_per_s"}, sorted(r)
    tps = r["tokens_per_s"]
    assert set(tps) == {"min", "median", "max"}, sorted(tps)
    assert 0 < tps["min"] <= tps["median"] <= tps["max"], tps
err = open(sys.argv[2]).read()
for test in ("pp32", "tg8", "tg4x3"):
    for rep in (1, 2):
        assert f"{test} rep {rep}/2:" in err, (test, rep, err)
print("  ok:", ", ".join(f"{r['test']} {r['tokens_per_s']['median']:.0f} tok/s" for r in obj["results"]))
PY

echo "table: one row per test and the peak RSS"
"$bin" bench --model "$model" --threads 1 --reps 1 --tests pp16,tg2x2 >"$tmp/table" 2>/dev/null
grep -q '^| tiny-v4 | 1 | pp16 | 1 | 16 |' "$tmp/table"
grep -q '^| tiny-v4 | 1 | tg2x2 | 2 | 4 |' "$tmp/table"
grep -q '^peak RSS: ' "$tmp/table"

expect_fail() { # pattern, command...
    local pattern="$1"; shift
    if "$@" >"$tmp/out" 2>"$tmp/err"; then echo "expected failure: $*"; exit 1; fi
    if [ -s "$tmp/out" ]; then echo "a failed bench printed to stdout: $*"; cat "$tmp/out"; exit 1; fi
    if ! grep -q -- "$pattern" "$tmp/err"; then
        echo "expected '$pattern' in the error of: $*"; cat "$tmp/err"; exit 1
    fi
    echo "  fails as it should: $(head -1 "$tmp/err")"
}
echo "bad input"
expect_fail "unknown test 'pp'" "$bin" bench --model "$model" --tests pp --json
expect_fail "unknown test 'foo'" "$bin" bench --model "$model" --tests pp16,foo --json
expect_fail "test 'tg4x0'" "$bin" bench --model "$model" --tests tg4x0 --json
expect_fail "test 'pp0'" "$bin" bench --model "$model" --tests pp0
expect_fail "test 'pp99999999999999999999'" "$bin" bench --model "$model" --tests pp99999999999999999999
expect_fail "test 'tg1x5000'" "$bin" bench --model "$model" --tests tg1x5000
expect_fail "test 'pp2000000': at most 1048576 tokens" "$bin" bench --model "$model" --tests pp2000000
expect_fail "names no test" "$bin" bench --model "$model" --tests ,
expect_fail "--reps must be positive" "$bin" bench --model "$model" --reps 0
expect_fail "--precision bogus" "$bin" bench --model "$model" --precision bogus
expect_fail "$tmp/missing" "$bin" bench --model "$tmp/missing" --tests tg2
echo "bench cli: ok"

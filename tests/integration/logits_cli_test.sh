#!/usr/bin/env bash
# `cachalot logits` end to end: every mode and both heads against the shared goldens (exact bar:
# max|diff| <= 1e-4 x max|golden| and the same argmax everywhere), and clear failures on bad input.
set -euo pipefail
bin="${CACHALOT_BINARY:-build/cachalot}"
shared="${CACHALOT_SHARED:-../shared}"
model="$shared/fixtures/tiny-v4"
golden="$shared/fixtures/golden"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

check() { # golden_file out_file
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype="<f4").astype(np.float64)
b = np.fromfile(sys.argv[2], dtype="<f4").astype(np.float64)
if a.size != b.size:
    sys.exit(f"size mismatch: golden {a.size} floats, ours {b.size}")
a, b = a.reshape(-1, 1024), b.reshape(-1, 1024)
rel = np.abs(a - b).max() / np.abs(a).max()
top1 = (a.argmax(1) == b.argmax(1)).mean()
print(f"  rel max diff {rel:.2e}, top-1 {top1:.4f}")
sys.exit(0 if np.isfinite(b).all() and rel <= 1e-4 and top1 == 1.0 else 1)
PY
}

for f in tiny-v4 tiny-v4-long; do
    for mode in prefill incremental chunk:7 chunk:64; do
        echo "$f $mode main"
        "$bin" logits --model "$model" --tokens "$golden/$f.tokens.json" --out "$tmp/o.f32" --mode "$mode" 2>/dev/null
        check "$golden/$f.logits.f32" "$tmp/o.f32"
        echo "$f $mode mtp"
        "$bin" logits --model "$model" --tokens "$golden/$f.tokens.json" --out "$tmp/o.f32" --mode "$mode" --head mtp 2>/dev/null
        check "$golden/$f.mtp.logits.f32" "$tmp/o.f32"
    done
done

expect_fail() { # pattern, command...
    local pattern="$1"; shift
    if "$@" >"$tmp/out" 2>"$tmp/err"; then echo "expected failure: $*"; exit 1; fi
    grep -q -- "$pattern" "$tmp/err" || { echo "stderr lacks '$pattern':"; cat "$tmp/err"; exit 1; }
    [ ! -s "$tmp/out" ] || { echo "stdout not empty on failure"; exit 1; }
}
echo '[0, 5, 99999]' > "$tmp/bad.json"
expect_fail "outside the vocabulary" "$bin" logits --model "$model" --tokens "$tmp/bad.json" --out "$tmp/x.f32"
expect_fail "config.json" "$bin" logits --model "$tmp" --tokens "$golden/tiny-v4.tokens.json" --out "$tmp/x.f32"
expect_fail "chunk:N" "$bin" logits --model "$model" --tokens "$golden/tiny-v4.tokens.json" --out "$tmp/x.f32" --mode chunk:0
echo '{"a": 1}' > "$tmp/notarray.json"
expect_fail "JSON array" "$bin" logits --model "$model" --tokens "$tmp/notarray.json" --out "$tmp/x.f32"
echo "logits cli: ok"

#!/usr/bin/env bash
# `cachalot --help` lists every subcommand, each has its own --help, and an unknown subcommand fails.
set -euo pipefail
bin="${CACHALOT_BINARY:-build/cachalot}"
help="$("$bin" --help)"
for sub in serve node generate logits tokenize chat-encode bench batch make-model version; do
    grep -q "^  $sub" <<<"$help" || { echo "--help does not list $sub"; exit 1; }
    "$bin" "$sub" --help >/dev/null || { echo "$sub --help failed"; exit 1; }
done
if "$bin" no-such-command >/dev/null 2>&1; then echo "an unknown subcommand succeeded"; exit 1; fi
"$bin" version | grep -q '^cachalot '
echo "cli help: ok"

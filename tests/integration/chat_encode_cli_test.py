#!/usr/bin/python3
"""`cachalot chat-encode` renders every fixture conversation byte for byte, and --ids gives one
BOS first; a bad request fails with a message naming the problem."""
import json, os, subprocess, sys, tempfile

binary = os.environ.get("CACHALOT_BINARY", "build/cachalot")
shared = os.environ.get("CACHALOT_SHARED", "../shared")
model = os.path.join(shared, "fixtures", "tiny-v4")
cases = json.load(open(os.path.join(shared, "fixtures", "chat", "dsv4-prompts.json"), encoding="utf-8"))
if isinstance(cases, dict):
    cases = cases.get("cases", list(cases.values()))

failures = 0
with tempfile.TemporaryDirectory() as tmp:
    req_path = os.path.join(tmp, "req.json")
    for i, case in enumerate(cases):
        request = {k: v for k, v in case.items() if k != "prompt"}
        with open(req_path, "w", encoding="utf-8") as f:
            json.dump(request, f, ensure_ascii=False)
        out = subprocess.run([binary, "chat-encode", "--model", model, "--request", req_path], capture_output=True)
        if out.returncode != 0 or out.stdout.decode("utf-8") != case["prompt"]:
            failures += 1
            print(f"case {i}: rc={out.returncode} stderr={out.stderr.decode()[:200]!r}")
            continue
        ids = subprocess.run([binary, "chat-encode", "--model", model, "--request", req_path, "--ids"],
                             capture_output=True, check=True)
        parsed = json.loads(ids.stdout)
        if not parsed or parsed[0] != 0 or parsed.count(0) != 1:
            failures += 1
            print(f"case {i}: --ids does not start with exactly one BOS: {parsed[:5]}")
    with open(req_path, "w") as f:
        json.dump({"messages": [{"role": "wizard", "content": "hi"}]}, f)
    bad = subprocess.run([binary, "chat-encode", "--model", model, "--request", req_path], capture_output=True)
    if bad.returncode == 0 or b"wizard" not in bad.stderr or bad.stdout:
        failures += 1
        print("a request with an unknown role did not fail with a message naming it")

print(f"{len(cases) - failures if failures <= len(cases) else 0} of {len(cases)} conversations ok")
sys.exit(1 if failures else 0)

#!/usr/bin/python3
"""Roofline of a V4 checkpoint on a CPU: weight bytes read per decoded token (single and batched),
FLOPs per prompt token, and the tok/s bounds they imply. Used for docs/performance.md.

    bench/roofline.py MODEL_DIR [--bandwidth GB/s] [--cores N] [--bf16-gflops per core]

--bandwidth is the memory read bandwidth of all the threads together and --bf16-gflops the
per-core vdpbf16ps peak, both as `cachalot-matmul-bench --machine --threads N` measures them on
the machine at hand (the defaults are the reference machine's: 2 threads 30-56 GB/s depending on
the minute, 415 GFLOP/s per core).

Bytes are counted as stored (FP8 e4m3 1 B + E8M0 scales, FP4 e2m1 0.5 B + E8M0 per 32, BF16 2 B,
F32 4 B); the llama.cpp column assumes convert_v4.py --mode bf16 (FP8 widened to BF16, experts as
MXFP4, 17 B per 32). Decode reads every non-expert weight once plus 6 of the routed experts per
layer; a batch of N reads the union of its sequences' experts (uniform routing). Single-file and
sharded (model.safetensors.index.json) checkpoints both work.
"""
import argparse, json, os, re, struct

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--bandwidth", type=float, default=50.0, help="GB/s of memory read bandwidth, all threads")
ap.add_argument("--cores", type=int, default=2, help="cores (threads) the figures are for")
ap.add_argument("--bf16-gflops", type=float, default=415.0, help="BF16 dot GFLOP/s per core")
a = ap.parse_args()

cfg = json.load(open(os.path.join(a.model, "config.json")))
files = ["model.safetensors"]
idx = os.path.join(a.model, "model.safetensors.index.json")
if os.path.exists(idx):
    files = sorted(set(json.load(open(idx))["weight_map"].values()))
h = {}
for name in files:
    with open(os.path.join(a.model, name), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        hdr.pop("__metadata__", None)
        h.update(hdr)


def nbytes(k):
    o = h[k]["data_offsets"]
    return o[1] - o[0]


def nel(k):
    p = 1
    for s in h[k]["shape"]:
        p *= s
    return p * 2 if h[k]["dtype"] in ("I8", "U8") and ".experts." in k else p  # FP4: 2 per byte


def total(pattern):
    keys = [k for k in h if re.match(pattern, k)]
    return sum(nbytes(k) for k in keys), sum(nel(k) for k in keys if not k.endswith(".scale"))


L, E, K = cfg["num_hidden_layers"], cfg["n_routed_experts"], cfg["num_experts_per_tok"]
parts = {
    "head": total(r"head\.weight$"),
    "attention projections": total(r"layers\.\d+\.attn\.w(q_a|q_b|kv|o_a|o_b)\."),
    "compressors": total(r"layers\.\d+\.attn\.compressor\.(wkv|wgate)"),
    "indexer": total(r"layers\.\d+\.attn\.indexer\.(compressor\.wkv|compressor\.wgate|wq_b|weights_proj)"),
    "mHC functions": total(r"(layers\.\d+\.hc_|hc_head)"),
    "router gates": total(r"layers\.\d+\.ffn\.gate\.weight"),
    "shared experts": total(r"layers\.\d+\.ffn\.shared_experts\."),
}
eb, ep = total(r"layers\.0\.ffn\.experts\.0\.")
parts[f"routed experts ({K} of {E} per layer)"] = (eb * K * L, ep * K * L)
tot_b = sum(b for b, _ in parts.values())
tot_p = sum(p for _, p in parts.values())
print("Weight bytes per decoded token (one sequence):")
for k, (b, p) in parts.items():
    print(f"  {k:40s} {b / 1e6:8.2f} MB  {p / 1e6:7.2f} M params")
print(f"  {'total':40s} {tot_b / 1e6:8.2f} MB  {tot_p / 1e6:7.2f} M params")


def llama_bytes(k):
    v = h[k]
    if v["dtype"] == "F8_E4M3":
        return nel(k) * 2
    if v["dtype"] == "F8_E8M0":
        return 0
    if v["dtype"] in ("I8", "U8"):
        return nel(k) * 17 / 32
    return nbytes(k)


per_token_keys = [k for k in h if re.match(r"(head\.weight$|layers\.\d+\.(attn|hc_|ffn\.(gate\.weight|shared_experts))|hc_head)", k)]
llama_tot = sum(llama_bytes(k) for k in per_token_keys) + K * L * sum(
    llama_bytes(k) for k in h if re.match(r"layers\.0\.ffn\.experts\.0\.", k))
bw = a.bandwidth * 1e9
peak = a.bf16_gflops * 1e9 * a.cores
flop_token = 2 * tot_p
print(f"llama.cpp GGUF (bf16 mode) bytes per decoded token: {llama_tot / 1e6:.1f} MB")
print(f"decode: {flop_token / 1e6:.0f} MFLOP per token (matmuls); bounds at {a.bandwidth:g} GB/s and "
      f"{a.cores} x {a.bf16_gflops:g} GFLOP/s:")
base = tot_b - eb * K * L
single = single_serial = None
for n in (1, 4, 16, 64):
    distinct = E * (1 - (1 - K / E) ** n)
    step = base + distinct * eb * L
    mem_s, flop_s = step / bw, n * flop_token / peak
    # Memory and compute fully overlapped (the larger bounds), or one after the other (their sum).
    best, serial = n / max(mem_s, flop_s), n / (mem_s + flop_s)
    single, single_serial = single or best, single_serial or serial
    print(f"  {n:2d} sequences: {distinct:5.1f} distinct experts/layer, {step / 1e6:6.1f} MB per step "
          f"({mem_s * 1e3:5.2f} ms), {n * flop_token / 1e9:5.2f} GFLOP ({flop_s * 1e3:5.2f} ms) -> "
          f"{best:5.0f} tok/s overlapped ({best / single:4.1f}x one sequence), {serial:5.0f} serial "
          f"({serial / single_serial:4.1f}x)")
print(f"  llama.cpp, 1 sequence: {bw / llama_tot:.0f} tok/s")
ratios = cfg["compress_ratios"][:L]
nh, hd, W = cfg["num_attention_heads"], cfg["head_dim"], cfg["sliding_window"]
ih, ihd, topk = cfg["index_n_heads"], cfg["index_head_dim"], cfg["index_topk"]


def attention_flops(P):
    tot = 0
    for pos in range(P):
        for r in ratios:
            keys = min(pos + 1, W)
            if r:
                nc = (pos + 1) // r
                if r == 4:
                    tot += 2 * ih * ihd * nc
                    nc = min(nc, topk)
                keys += nc
            tot += 2 * 2 * nh * hd * keys
    return tot / P


head_p = parts["head"][1]
mm_p = tot_p - head_p  # the head runs for the last prompt token only
for P in (512, 2048, 8192, 32768):
    af = attention_flops(P)
    fl = 2 * mm_p + af + 2 * head_p / P
    print(f"pp{P}: {fl / 1e6:6.1f} MFLOP/token (attention {af / 1e6:5.1f}); compute bound "
          f"{peak / fl:5.0f} tok/s on {a.cores} cores")

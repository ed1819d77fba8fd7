// Writes safetensors files and whole random-weight DeepSeek-V4 checkpoints in the Hugging Face
// layout (config.json, generation_config.json, tokenizer*.json, model.safetensors) with DeepSeek's
// native tensor names and storage formats: FP8 e4m3 weights with ue8m0 128x128 block scales, FP4
// routed experts packed two per byte with ue8m0 per-32 scales, BF16 norms/embeddings and F32 mHC
// parameters. Every shape is derived from a v4_model_config, so a preset is a handful of numbers.
// Values are pseudo-random (deterministic per seed and tensor name), not trained: the checkpoint
// exercises loaders, kernels and the serving path, never model quality. It does not shard, does
// not write V3 checkpoints and does not train a tokenizer (every preset ships the embedded demo
// tokenizer, whose ids all lie below the preset's vocab_size).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/result.h"

namespace cachalot {

// ---- safetensors ------------------------------------------------------------------------------

/// A tensor's header entry: its name, safetensors dtype spelling ("BF16", "F8_E4M3", "I8", ...)
/// and shape. The byte size follows from dtype and shape (I8/U8 count bytes, so packed FP4
/// tensors give their packed shape).
struct safetensors_entry {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
};

/// A tensor with its bytes (little-endian, row-major) for the in-memory writer.
struct safetensors_tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
};

/// Produces the bytes of entries[index] into `out` (resized by the callee). Called exactly once per
/// entry, in entry order, so a producer may carry state from one tensor to the next.
using safetensors_source = std::function<status(size_t index, std::vector<uint8_t>& out)>;

/// Bytes an entry's data occupies; an error for an unknown dtype or a negative dimension.
[[nodiscard]] result<uint64_t> safetensors_entry_bytes(const safetensors_entry& e);

/// The header JSON (without its 8-byte length prefix) as Hugging Face writes it: compact,
/// `__metadata__` {"format":"pt"} first, tensors in the given order with consecutive data_offsets,
/// padded with spaces to a multiple of 8 bytes. Fails on duplicate names or bad entries.
[[nodiscard]] result<std::string> safetensors_header(const std::vector<safetensors_entry>& entries);

/// Writes a safetensors file from in-memory tensors; fails if a tensor's data size does not match
/// its dtype and shape. Overwrites `path`.
[[nodiscard]] status write_safetensors(const std::string& path, const std::vector<safetensors_tensor>& tensors);

/// Streaming form: the header comes from `entries`, then each tensor's bytes from `source`, so the
/// whole file never sits in memory. Reports `progress(bytes_written, bytes_total)` after each
/// tensor when given. Overwrites `path`; a failed write leaves a truncated file for the caller to
/// remove (make_random_checkpoint writes under a temporary name for that reason).
[[nodiscard]] status write_safetensors(const std::string& path, const std::vector<safetensors_entry>& entries,
                                       const safetensors_source& source,
                                       const std::function<void(uint64_t, uint64_t)>& progress = {});

// ---- quantisation -----------------------------------------------------------------------------

/// The ue8m0 byte of the smallest power of two >= x (x <= 0 or tiny gives 2^-120, as DeepSeek's
/// converters clamp the block amax).
uint8_t e8m0_ceil_pow2(float x);

/// Nearest FP4 e2m1 code (0..15, bit 3 = sign) of q, which is already divided by its scale; ties
/// go to the smaller magnitude, values beyond 6 saturate, and zero is never negative.
uint8_t f32_to_fp4(float q);

/// FP8 with one ue8m0 scale per 128x128 block: scale = amax/448 rounded up to a power of two,
/// codes round to nearest even. w: [rows, cols] f32 -> codes [rows, cols] e4m3,
/// scales [ceil(rows/128), ceil(cols/128)] e8m0.
struct fp8_block_quantized {
    std::vector<uint8_t> codes;
    std::vector<uint8_t> scales;
};
fp8_block_quantized quantize_fp8_block(std::span<const float> w, int64_t rows, int64_t cols);

/// MXFP4 with one ue8m0 scale per 32 consecutive values of a row: scale = amax/6 rounded up to a
/// power of two. w: [rows, cols] f32, cols % 32 == 0 -> packed [rows, cols/2] (even element in the
/// low nibble), scales [rows, cols/32] e8m0.
struct fp4_group_quantized {
    std::vector<uint8_t> packed;
    std::vector<uint8_t> scales;
};
fp4_group_quantized quantize_fp4_group(std::span<const float> w, int64_t rows, int64_t cols);

/// n normal(mean, std) values from a stream that depends only on (seed, name): splitmix64 and
/// Box-Muller (no std:: distributions, whose output differs between standard libraries), so a
/// tensor's values do not depend on the order tensors are made in.
std::vector<float> random_normal(uint64_t seed, std::string_view name, size_t n, float mean, float std);

// ---- DeepSeek-V4 checkpoints ------------------------------------------------------------------

/// What a random V4 checkpoint looks like. The first block sizes the tensors; the second holds the
/// fields every V4 release shares, which are written to config.json as they are.
struct v4_model_config {
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;
    int64_t num_hidden_layers = 0;
    int64_t num_hash_layers = 0; // layers below this route by token id (ffn.gate.tid2eid)
    int64_t num_attention_heads = 0;
    int64_t head_dim = 0;
    int64_t qk_rope_head_dim = 0;
    int64_t q_lora_rank = 0;
    int64_t o_groups = 0;
    int64_t o_lora_rank = 0;
    int64_t index_n_heads = 0;
    int64_t index_head_dim = 0;
    int64_t index_topk = 0;
    int64_t moe_intermediate_size = 0;
    int64_t n_routed_experts = 0;
    int64_t num_experts_per_tok = 0;
    std::vector<int64_t> compress_ratios; // one per layer, then one per MTP block; 0, 4 or a multiple of 4

    int64_t n_shared_experts = 1;
    int64_t hc_mult = 4;
    int64_t hc_sinkhorn_iters = 20;
    double hc_eps = 1e-6;
    int64_t num_nextn_predict_layers = 1;
    int64_t sliding_window = 128;
    int64_t bos_token_id = 0;
    int64_t eos_token_id = 1;
    int64_t max_position_embeddings = 1048576;
    double rms_norm_eps = 1e-6;
    int64_t rope_theta = 10000;
    int64_t compress_rope_theta = 160000;
    int64_t rope_factor = 16;
    int64_t rope_original_max_position_embeddings = 65536;
    int64_t rope_beta_fast = 32;
    int64_t rope_beta_slow = 1;
    double routed_scaling_factor = 1.5;
    double swiglu_limit = 10.0;
    double initializer_range = 0.02; // also the std of the random matrices
};

/// "demo": the tiny-v4 fixture's shapes (H 256, 4 layers, ratios 0/4/128/4 + MTP 0), ~7 MB.
/// "bench": the bench-v4 shapes (H 512, 13 layers, 64 experts), ~0.42B params, ~400 MB.
[[nodiscard]] result<v4_model_config> v4_preset(std::string_view name);
std::vector<std::string_view> v4_preset_names();

/// Checks the shapes are self-consistent and expressible in the storage formats; the message
/// names the offending field.
[[nodiscard]] status validate(const v4_model_config& cfg);

/// The text of config.json (Hugging Face field names, indent 2, trailing newline).
std::string v4_config_json(const v4_model_config& cfg);

/// Every tensor a checkpoint of `cfg` holds, in file order (top level, layers, MTP blocks).
[[nodiscard]] result<std::vector<safetensors_entry>> v4_tensor_list(const v4_model_config& cfg);

struct make_model_options {
    std::string preset = "demo";
    std::string out_dir;
    uint64_t seed = 0;
    bool force = false;                            // replace an existing checkpoint in out_dir
    std::function<void(std::string_view)> progress; // optional one-line progress messages
};

/// Writes a complete checkpoint of opts.preset into opts.out_dir (created if missing). Refuses a
/// directory that already holds config.json or *.safetensors unless opts.force. Files are written
/// under temporary names and renamed, config.json last, so an interrupted run never leaves a
/// directory that looks complete. Single-threaded; blocks until done.
[[nodiscard]] status make_random_checkpoint(const make_model_options& opts);
/// The same for an explicit configuration (opts.preset is ignored).
[[nodiscard]] status make_random_checkpoint(const v4_model_config& cfg, const make_model_options& opts);

} // namespace cachalot

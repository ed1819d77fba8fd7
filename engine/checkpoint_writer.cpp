// The safetensors writer and the random DeepSeek-V4 checkpoint generator (see checkpoint_writer.h).
// Tensor names, order, shapes and value distributions follow shared/tools/make_tiny_checkpoint.py,
// the generator of the tiny-v4 fixture, but the random streams are our own (splitmix64 +
// Box-Muller), so values differ from the fixture's while every shape and dtype matches. Nothing here
// reads a checkpoint back; the loader lives in safetensors.cpp / model_weights.cpp.
#include "engine/checkpoint_writer.h"
#include "engine/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numbers>
#include <unordered_set>

#include "engine/demo/demo_tokenizer.h"
#include "kernels/dtype.h"

namespace cachalot {

namespace fs = std::filesystem;

// ---- safetensors ------------------------------------------------------------------------------

result<uint64_t> safetensors_entry_bytes(const safetensors_entry& e) {
    dtype t;
    if (!parse_dtype(e.dtype, t)) {
        return make_error(errc::invalid_argument, "tensor " + e.name + ": unknown safetensors dtype '" + e.dtype + "'");
    }
    uint64_t n = 1;
    for (int64_t d : e.shape) {
        if (d < 0) {
            return make_error(errc::invalid_argument, "tensor " + e.name + ": negative dimension");
        }
        n *= uint64_t(d);
    }
    return n * dtype_size(t);
}


result<std::string> safetensors_header(const std::vector<safetensors_entry>& entries) {
    std::string h = R"({"__metadata__":{"format":"pt"})";
    std::unordered_set<std::string_view> seen;
    uint64_t offset = 0;
    for (const auto& e : entries) {
        if (e.name.empty() || e.name == "__metadata__") {
            return make_error(errc::invalid_argument, "tensor name '" + e.name + "' is reserved or empty");
        }
        if (!seen.insert(e.name).second) {
            return make_error(errc::invalid_argument, "tensor " + e.name + " appears twice");
        }
        auto bytes = safetensors_entry_bytes(e);
        CACHALOT_TRY(bytes);
        h += ',';
        append_json_string(h, e.name);
        h += R"(:{"dtype":)";
        append_json_string(h, e.dtype);
        h += R"(,"shape":[)";
        for (size_t i = 0; i < e.shape.size(); ++i) {
            h += (i ? "," : "") + std::to_string(e.shape[i]);
        }
        h += R"(],"data_offsets":[)" + std::to_string(offset) + "," + std::to_string(offset + *bytes) + "]}";
        offset += *bytes;
    }
    h += '}';
    // Data must start 8-byte aligned after the u64 length; HF pads the JSON with spaces.
    h.append((8 - h.size() % 8) % 8, ' ');
    return h;
}

namespace {

struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

/// A file being written: checks every write and the final flush. No fsync: the temporary-name and
/// rename dance guards against an interrupted process, which is what matters for generated test
/// checkpoints; surviving power loss is not worth a second per file on a busy disk.
class output_file {
public:
    [[nodiscard]] status open(const std::string& path) {
        path_ = path;
        f_.reset(std::fopen(path.c_str(), "wb"));
        if (!f_) {
            return make_error(errc::io_error, "cannot create " + path);
        }
        std::setvbuf(f_.get(), nullptr, _IOFBF, 1 << 20);
        return ok_status();
    }
    [[nodiscard]] status write(const void* data, size_t n) {
        if (n && std::fwrite(data, 1, n, f_.get()) != n) {
            return make_error(errc::io_error, "cannot write " + path_ + " (disk full?)");
        }
        return ok_status();
    }
    [[nodiscard]] status close() {
        std::FILE* f = f_.release();
        bool ok = std::fflush(f) == 0;
        ok = std::fclose(f) == 0 && ok;
        if (!ok) {
            return make_error(errc::io_error, "cannot finish writing " + path_);
        }
        return ok_status();
    }

private:
    std::string path_;
    std::unique_ptr<std::FILE, file_closer> f_;
};

} // namespace

status write_safetensors(const std::string& path, const std::vector<safetensors_entry>& entries,
                         const safetensors_source& source, const std::function<void(uint64_t, uint64_t)>& progress) {
    auto header = safetensors_header(entries);
    CACHALOT_TRY(header);
    std::vector<uint64_t> sizes;
    uint64_t total = 0;
    for (const auto& e : entries) {
        auto n = safetensors_entry_bytes(e);
        CACHALOT_TRY(n);
        sizes.push_back(*n);
        total += *n;
    }
    output_file out;
    CACHALOT_TRY(out.open(path));
    uint8_t len[8];
    uint64_t n_header = header->size();
    for (int i = 0; i < 8; ++i) {
        len[i] = uint8_t(n_header >> (8 * i)); // little-endian whatever the host
    }
    CACHALOT_TRY(out.write(len, 8));
    CACHALOT_TRY(out.write(header->data(), header->size()));
    std::vector<uint8_t> buf;
    uint64_t written = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        buf.clear();
        CACHALOT_TRY(source(i, buf));
        if (buf.size() != sizes[i]) {
            return make_error(errc::invalid_argument, "tensor " + entries[i].name + ": " + std::to_string(buf.size()) +
                                                          " bytes of data for a " + entries[i].dtype + " tensor of " +
                                                          std::to_string(sizes[i]) + " bytes");
        }
        CACHALOT_TRY(out.write(buf.data(), buf.size()));
        written += buf.size();
        if (progress) {
            progress(written, total);
        }
    }
    return out.close();
}

status write_safetensors(const std::string& path, const std::vector<safetensors_tensor>& tensors) {
    std::vector<safetensors_entry> entries;
    entries.reserve(tensors.size());
    for (const auto& t : tensors) {
        entries.push_back({t.name, t.dtype, t.shape});
    }
    return write_safetensors(path, entries, [&](size_t i, std::vector<uint8_t>& out) {
        out = tensors[i].data;
        return ok_status();
    });
}

// ---- quantisation -----------------------------------------------------------------------------

uint8_t e8m0_ceil_pow2(float x) {
    double v = std::max(double(x), std::ldexp(1.0, -120));
    int e;
    double m = std::frexp(v, &e); // v = m * 2^e, m in [0.5, 1)
    int exp = (m == 0.5) ? e - 1 : e;
    return uint8_t(std::clamp(exp + 127, 0, 254));
}

uint8_t f32_to_fp4(float q) {
    // Midpoints between the magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6.
    static constexpr float k_bounds[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    float a = std::fabs(q);
    uint8_t idx = 0;
    while (idx < 7 && k_bounds[idx] < a) {
        ++idx;
    }
    return (q < 0 && idx > 0) ? uint8_t(idx | 8) : idx;
}

fp8_block_quantized quantize_fp8_block(std::span<const float> w, int64_t rows, int64_t cols) {
    constexpr int64_t block = 128;
    CACHALOT_CHECK(int64_t(w.size()) == rows * cols, "fp8 quantiser: data size does not match the shape");
    int64_t nb_rows = (rows + block - 1) / block, nb_cols = (cols + block - 1) / block;
    fp8_block_quantized q;
    q.codes.resize(size_t(rows * cols));
    q.scales.resize(size_t(nb_rows * nb_cols));
    for (int64_t br = 0; br < nb_rows; ++br) {
        int64_t r0 = br * block, r1 = std::min(rows, r0 + block);
        for (int64_t bc = 0; bc < nb_cols; ++bc) {
            int64_t c0 = bc * block, c1 = std::min(cols, c0 + block);
            float amax = 0.0f;
            for (int64_t r = r0; r < r1; ++r) {
                for (int64_t c = c0; c < c1; ++c) {
                    amax = std::max(amax, std::fabs(w[size_t(r * cols + c)]));
                }
            }
            uint8_t sb = e8m0_ceil_pow2(float(double(amax) / 448.0));
            q.scales[size_t(br * nb_cols + bc)] = sb;
            float inv = float(std::ldexp(1.0, 127 - int(sb)));
            for (int64_t r = r0; r < r1; ++r) {
                for (int64_t c = c0; c < c1; ++c) {
                    uint8_t code = f32_to_e4m3(w[size_t(r * cols + c)] * inv);
                    q.codes[size_t(r * cols + c)] = (code & 0x7f) == 0 ? 0 : code; // no negative zero
                }
            }
        }
    }
    return q;
}

fp4_group_quantized quantize_fp4_group(std::span<const float> w, int64_t rows, int64_t cols) {
    constexpr int64_t group = 32;
    CACHALOT_CHECK(int64_t(w.size()) == rows * cols, "fp4 quantiser: data size does not match the shape");
    CACHALOT_CHECK(cols % group == 0, "fp4 quantiser: columns must be a multiple of 32");
    fp4_group_quantized q;
    q.packed.assign(size_t(rows * cols / 2), 0);
    q.scales.resize(size_t(rows * cols / group));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < cols / group; ++g) {
            const float* x = w.data() + r * cols + g * group;
            float amax = 0.0f;
            for (int64_t i = 0; i < group; ++i) {
                amax = std::max(amax, std::fabs(x[i]));
            }
            uint8_t sb = e8m0_ceil_pow2(float(double(amax) / 6.0));
            q.scales[size_t(r * (cols / group) + g)] = sb;
            float inv = float(std::ldexp(1.0, 127 - int(sb)));
            uint8_t* dst = q.packed.data() + (r * cols + g * group) / 2;
            for (int64_t i = 0; i < group; i += 2) {
                dst[i / 2] = uint8_t(f32_to_fp4(x[i] * inv) | (f32_to_fp4(x[i + 1] * inv) << 4));
            }
        }
    }
    return q;
}

// ---- random streams ---------------------------------------------------------------------------

namespace {

uint64_t splitmix_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t fnv1a64(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : s) {
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    }
    return h;
}

/// splitmix64 seeded by (seed, name): each tensor has its own stream.
class tensor_rng {
public:
    tensor_rng(uint64_t seed, std::string_view name) : state_(splitmix_mix(seed + 0x9e3779b97f4a7c15ull) ^ fnv1a64(name)) {}
    uint64_t next() {
        state_ += 0x9e3779b97f4a7c15ull;
        return splitmix_mix(state_);
    }
    /// Uniform in [0, 1) with 53 random bits.
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }
    /// Uniform integer in [0, n), n > 0 (multiply-shift: bias below 2^-32 for our n).
    uint64_t below(uint64_t n) { return uint64_t((unsigned __int128)next() * n >> 64); }

private:
    uint64_t state_;
};

} // namespace

std::vector<float> random_normal(uint64_t seed, std::string_view name, size_t n, float mean, float std) {
    tensor_rng rng(seed, name);
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - rng.uniform(); // (0, 1]: log stays finite
        double u2 = rng.uniform();
        double r = std::sqrt(-2.0 * std::log(u1));
        double a = 2.0 * std::numbers::pi * u2;
        v[i] = float(mean + std * r * std::cos(a));
        if (i + 1 < n) {
            v[i + 1] = float(mean + std * r * std::sin(a));
        }
    }
    return v;
}

// ---- V4 presets and config.json ---------------------------------------------------------------

static v4_model_config demo_preset() {
    v4_model_config c;
    c.vocab_size = 1024;
    c.hidden_size = 256;
    c.num_hidden_layers = 4;
    c.num_hash_layers = 2;
    c.num_attention_heads = 4;
    c.head_dim = 128;
    c.qk_rope_head_dim = 16;
    c.q_lora_rank = 128;
    c.o_groups = 2;
    c.o_lora_rank = 64;
    c.index_n_heads = 32;
    c.index_head_dim = 64;
    c.index_topk = 16;
    c.moe_intermediate_size = 128;
    c.n_routed_experts = 8;
    c.num_experts_per_tok = 2;
    c.compress_ratios = {0, 4, 128, 4, 0};
    return c;
}

static v4_model_config bench_preset() {
    v4_model_config c;
    c.vocab_size = 32768;
    c.hidden_size = 512;
    c.num_hidden_layers = 13;
    c.num_hash_layers = 3;
    c.num_attention_heads = 8;
    c.head_dim = 512;
    c.qk_rope_head_dim = 64;
    c.q_lora_rank = 128;
    c.o_groups = 2;
    c.o_lora_rank = 512;
    c.index_n_heads = 8;
    c.index_head_dim = 128;
    c.index_topk = 512;
    c.moe_intermediate_size = 256;
    c.n_routed_experts = 64;
    c.num_experts_per_tok = 6;
    c.compress_ratios = {0, 0, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 0};
    return c;
}

std::vector<std::string_view> v4_preset_names() { return {"demo", "bench"}; }

result<v4_model_config> v4_preset(std::string_view name) {
    if (name == "demo") {
        return demo_preset();
    }
    if (name == "bench") {
        return bench_preset();
    }
    std::string known;
    for (auto n : v4_preset_names()) {
        known += (known.empty() ? "" : ", ") + std::string(n);
    }
    return make_error(errc::invalid_argument, "unknown model preset '" + std::string(name) + "' (known: " + known + ")");
}

status validate(const v4_model_config& c) {
    auto positive = [](const char* field, int64_t v) -> status {
        if (v <= 0) {
            return make_error(errc::invalid_argument,
                              std::string("model config: ") + field + " must be positive, got " + std::to_string(v));
        }
        return ok_status();
    };
    CACHALOT_TRY(positive("vocab_size", c.vocab_size));
    CACHALOT_TRY(positive("hidden_size", c.hidden_size));
    CACHALOT_TRY(positive("num_hidden_layers", c.num_hidden_layers));
    CACHALOT_TRY(positive("num_attention_heads", c.num_attention_heads));
    CACHALOT_TRY(positive("head_dim", c.head_dim));
    CACHALOT_TRY(positive("qk_rope_head_dim", c.qk_rope_head_dim));
    CACHALOT_TRY(positive("q_lora_rank", c.q_lora_rank));
    CACHALOT_TRY(positive("o_groups", c.o_groups));
    CACHALOT_TRY(positive("o_lora_rank", c.o_lora_rank));
    CACHALOT_TRY(positive("index_n_heads", c.index_n_heads));
    CACHALOT_TRY(positive("index_head_dim", c.index_head_dim));
    CACHALOT_TRY(positive("index_topk", c.index_topk));
    CACHALOT_TRY(positive("moe_intermediate_size", c.moe_intermediate_size));
    CACHALOT_TRY(positive("n_routed_experts", c.n_routed_experts));
    CACHALOT_TRY(positive("num_experts_per_tok", c.num_experts_per_tok));
    CACHALOT_TRY(positive("n_shared_experts", c.n_shared_experts));
    CACHALOT_TRY(positive("hc_mult", c.hc_mult));
    auto bad = [](std::string msg) { return make_error(errc::invalid_argument, "model config: " + msg); };
    if (c.num_hash_layers < 0 || c.num_hash_layers > c.num_hidden_layers) {
        return bad("num_hash_layers must lie in [0, num_hidden_layers]");
    }
    if (c.num_nextn_predict_layers < 0) {
        return bad("num_nextn_predict_layers must not be negative");
    }
    if (c.num_experts_per_tok > c.n_routed_experts) {
        return bad("num_experts_per_tok exceeds n_routed_experts");
    }
    if (c.hidden_size % 32 != 0 || c.moe_intermediate_size % 32 != 0) {
        return bad("hidden_size and moe_intermediate_size must be multiples of 32 (FP4 scale groups)");
    }
    if ((c.num_attention_heads * c.head_dim) % c.o_groups != 0) {
        return bad("num_attention_heads * head_dim must be a multiple of o_groups");
    }
    if (c.qk_rope_head_dim > c.head_dim || c.qk_rope_head_dim > c.index_head_dim) {
        return bad("qk_rope_head_dim exceeds head_dim or index_head_dim");
    }
    if (int64_t(c.compress_ratios.size()) < c.num_hidden_layers + c.num_nextn_predict_layers) {
        return bad("compress_ratios needs one entry per layer and per MTP block (" +
                   std::to_string(c.num_hidden_layers + c.num_nextn_predict_layers) + ")");
    }
    for (int64_t r : c.compress_ratios) {
        // The engine's rule: 0 = window only, 4 = CSA (overlapping, with an indexer), any larger
        // multiple of 4 = HCA-style plain pooling.
        if (r < 0 || (r != 0 && r % 4 != 0)) {
            return bad("compress_ratios entries must be 0 or a multiple of 4, got " + std::to_string(r));
        }
    }
    return ok_status();
}

/// A double the way Python's repr() writes it (json.dump uses repr), so config.json matches the
/// Python generator's byte for byte: shortest round-trip digits, fixed notation for decimal
/// exponents in [-4, 16), otherwise d.ddde-XX.
static std::string py_float(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    std::string s(buf, r.ptr);
    std::string sign;
    if (!s.empty() && s[0] == '-') {
        sign = "-";
        s.erase(0, 1);
    }
    size_t epos = s.find('e');
    int exp = 0;
    std::from_chars(s.data() + epos + 1 + (s[epos + 1] == '+'), s.data() + s.size(), exp);
    std::string digits;
    for (size_t i = 0; i < epos; ++i) {
        if (s[i] != '.') {
            digits += s[i];
        }
    }
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            return sign + "0." + std::string(size_t(-exp - 1), '0') + digits;
        }
        if (digits.size() <= size_t(exp) + 1) {
            return sign + digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
        }
        return sign + digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
    }
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) {
        out += "." + digits.substr(1);
    }
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return out + e;
}

std::string v4_config_json(const v4_model_config& c) {
    // Field order and formatting follow make_tiny_checkpoint.py (json.dump, indent 2): the fields
    // every V4 release shares first, then the ones that size the model.
    std::vector<std::pair<std::string, std::string>> f;
    auto i = [](int64_t v) { return std::to_string(v); };
    auto s = [](std::string_view v) {
        std::string out;
        append_json_string(out, v);
        return out;
    };
    f.push_back({"architectures", "[\n    \"DeepseekV4ForCausalLM\"\n  ]"});
    f.push_back({"model_type", s("deepseek_v4")});
    f.push_back({"attention_bias", "false"});
    f.push_back({"attention_dropout", "0.0"});
    f.push_back({"bos_token_id", i(c.bos_token_id)});
    f.push_back({"eos_token_id", i(c.eos_token_id)});
    f.push_back({"expert_dtype", s("fp4")});
    f.push_back({"hc_eps", py_float(c.hc_eps)});
    f.push_back({"hc_mult", i(c.hc_mult)});
    f.push_back({"hc_sinkhorn_iters", i(c.hc_sinkhorn_iters)});
    f.push_back({"hidden_act", s("silu")});
    f.push_back({"initializer_range", py_float(c.initializer_range)});
    f.push_back({"max_position_embeddings", i(c.max_position_embeddings)});
    f.push_back({"n_shared_experts", i(c.n_shared_experts)});
    f.push_back({"norm_topk_prob", "true"});
    f.push_back({"num_key_value_heads", "1"});
    f.push_back({"num_nextn_predict_layers", i(c.num_nextn_predict_layers)});
    f.push_back({"quantization_config", "{\n"
                                        "    \"activation_scheme\": \"dynamic\",\n"
                                        "    \"fmt\": \"e4m3\",\n"
                                        "    \"quant_method\": \"fp8\",\n"
                                        "    \"scale_fmt\": \"ue8m0\",\n"
                                        "    \"weight_block_size\": [\n"
                                        "      128,\n"
                                        "      128\n"
                                        "    ]\n"
                                        "  }"});
    f.push_back({"rms_norm_eps", py_float(c.rms_norm_eps)});
    f.push_back({"rope_scaling", "{\n    \"beta_fast\": " + i(c.rope_beta_fast) + ",\n    \"beta_slow\": " +
                                     i(c.rope_beta_slow) + ",\n    \"factor\": " + i(c.rope_factor) +
                                     ",\n    \"original_max_position_embeddings\": " +
                                     i(c.rope_original_max_position_embeddings) + ",\n    \"type\": \"yarn\"\n  }"});
    f.push_back({"rope_theta", i(c.rope_theta)});
    f.push_back({"routed_scaling_factor", py_float(c.routed_scaling_factor)});
    f.push_back({"scoring_func", s("sqrtsoftplus")});
    f.push_back({"sliding_window", i(c.sliding_window)});
    f.push_back({"swiglu_limit", py_float(c.swiglu_limit)});
    f.push_back({"tie_word_embeddings", "false"});
    f.push_back({"topk_method", s("noaux_tc")});
    f.push_back({"torch_dtype", s("bfloat16")});
    f.push_back({"transformers_version", s("4.57.1")});
    f.push_back({"use_cache", "true"});
    f.push_back({"compress_rope_theta", i(c.compress_rope_theta)});
    f.push_back({"vocab_size", i(c.vocab_size)});
    f.push_back({"hidden_size", i(c.hidden_size)});
    f.push_back({"num_hidden_layers", i(c.num_hidden_layers)});
    f.push_back({"num_hash_layers", i(c.num_hash_layers)});
    f.push_back({"num_attention_heads", i(c.num_attention_heads)});
    f.push_back({"head_dim", i(c.head_dim)});
    f.push_back({"qk_rope_head_dim", i(c.qk_rope_head_dim)});
    f.push_back({"q_lora_rank", i(c.q_lora_rank)});
    f.push_back({"o_groups", i(c.o_groups)});
    f.push_back({"o_lora_rank", i(c.o_lora_rank)});
    f.push_back({"index_n_heads", i(c.index_n_heads)});
    f.push_back({"index_head_dim", i(c.index_head_dim)});
    f.push_back({"index_topk", i(c.index_topk)});
    f.push_back({"moe_intermediate_size", i(c.moe_intermediate_size)});
    f.push_back({"n_routed_experts", i(c.n_routed_experts)});
    f.push_back({"num_experts_per_tok", i(c.num_experts_per_tok)});
    std::string ratios = "[]";
    if (!c.compress_ratios.empty()) {
        ratios = "[";
        for (size_t k = 0; k < c.compress_ratios.size(); ++k) {
            ratios += (k ? ",\n    " : "\n    ") + i(c.compress_ratios[k]);
        }
        ratios += "\n  ]";
    }
    f.push_back({"compress_ratios", ratios});

    std::string out = "{\n";
    for (size_t k = 0; k < f.size(); ++k) {
        out += "  " + s(f[k].first) + ": " + f[k].second + (k + 1 < f.size() ? ",\n" : "\n");
    }
    return out + "}\n";
}

static std::string generation_config_json(const v4_model_config& c) {
    return "{\n  \"_from_model_config\": true,\n  \"bos_token_id\": " + std::to_string(c.bos_token_id) +
           ",\n  \"eos_token_id\": " + std::to_string(c.eos_token_id) +
           ",\n  \"do_sample\": true,\n  \"temperature\": 1.0,\n  \"top_p\": 1.0,\n"
           "  \"transformers_version\": \"4.57.1\"\n}\n";
}

// The demo tokenizer's configuration; its special tokens are the embedded tokenizer's.
static constexpr std::string_view k_tokenizer_config_json = R"({
  "add_bos_token": true,
  "add_eos_token": false,
  "bos_token": "<｜begin▁of▁sentence｜>",
  "eos_token": "<｜end▁of▁sentence｜>",
  "pad_token": "<｜▁pad▁｜>",
  "clean_up_tokenization_spaces": false,
  "legacy": true,
  "model_max_length": 1048576,
  "sp_model_kwargs": {},
  "unk_token": null,
  "tokenizer_class": "LlamaTokenizerFast",
  "use_default_system_prompt": false
})";

// ---- the tensor plan --------------------------------------------------------------------------

namespace {

enum class fill_kind { bf16_normal, f32_normal, fp8_weight, fp8_scale, fp4_weight, fp4_scale, tid2eid };

/// One tensor of the checkpoint and how its values are made.
struct tensor_plan {
    safetensors_entry entry;
    fill_kind kind;
    float mean = 0.0f;
    float std = 0.0f;
    int64_t rows = 0; // logical (unpacked) shape of a quantised matrix or tid2eid
    int64_t cols = 0;
};

class plan_builder {
public:
    explicit plan_builder(const v4_model_config& c) : c_(c), std_(float(c.initializer_range)) {}

    void bf16(const std::string& name, std::vector<int64_t> shape, float std, float mean = 0.0f) {
        plans_.push_back({{name, "BF16", std::move(shape)}, fill_kind::bf16_normal, mean, std});
    }
    void f32(const std::string& name, std::vector<int64_t> shape, float std, float mean = 0.0f) {
        plans_.push_back({{name, "F32", std::move(shape)}, fill_kind::f32_normal, mean, std});
    }
    void matrix(const std::string& name, int64_t rows, int64_t cols) { bf16(name, {rows, cols}, std_); }
    /// RMSNorm weights sit near 1 but not at 1, so a swapped norm shows up in the logits.
    void norm(const std::string& name, int64_t n) { bf16(name, {n}, 0.05f, 1.0f); }
    void fp8(const std::string& prefix, int64_t rows, int64_t cols) {
        plans_.push_back({{prefix + ".weight", "F8_E4M3", {rows, cols}}, fill_kind::fp8_weight, 0, std_, rows, cols});
        plans_.push_back({{prefix + ".scale", "F8_E8M0", {(rows + 127) / 128, (cols + 127) / 128}},
                          fill_kind::fp8_scale, 0, 0, rows, cols});
    }
    void fp4(const std::string& prefix, int64_t rows, int64_t cols) {
        plans_.push_back({{prefix + ".weight", "I8", {rows, cols / 2}}, fill_kind::fp4_weight, 0, std_, rows, cols});
        plans_.push_back({{prefix + ".scale", "F8_E8M0", {rows, cols / 32}}, fill_kind::fp4_scale, 0, 0, rows, cols});
    }
    void hc(const std::string& prefix, const std::string& kind) {
        int64_t mix = (2 + c_.hc_mult) * c_.hc_mult;
        f32(prefix + ".hc_" + kind + "_fn", {mix, c_.hc_mult * c_.hidden_size}, std_);
        f32(prefix + ".hc_" + kind + "_base", {mix}, 0.1f);
        f32(prefix + ".hc_" + kind + "_scale", {3}, 0.1f, 1.0f);
    }
    void hc_head(const std::string& prefix) {
        f32(prefix + "hc_head_fn", {c_.hc_mult, c_.hc_mult * c_.hidden_size}, std_);
        f32(prefix + "hc_head_base", {c_.hc_mult}, 0.1f);
        f32(prefix + "hc_head_scale", {1}, 0.1f, 1.0f);
    }

    // H = hidden, nh = heads, hd = head_dim, ql = q_lora, og/olr = output groups/rank,
    // ih/ihd = indexer heads/dim, E = experts, I = expert width, ns = shared experts.
    void block(const std::string& p, int64_t ratio, bool hash_routed) {
        const int64_t H = c_.hidden_size, nh = c_.num_attention_heads, hd = c_.head_dim, ql = c_.q_lora_rank;
        const int64_t og = c_.o_groups, olr = c_.o_lora_rank, ih = c_.index_n_heads, ihd = c_.index_head_dim;
        const int64_t E = c_.n_routed_experts, I = c_.moe_intermediate_size, ns = c_.n_shared_experts;
        norm(p + ".attn_norm.weight", H);
        norm(p + ".ffn_norm.weight", H);
        hc(p, "attn");
        hc(p, "ffn");
        f32(p + ".attn.attn_sink", {nh}, 0.5f);
        norm(p + ".attn.q_norm.weight", ql);
        norm(p + ".attn.kv_norm.weight", hd);
        fp8(p + ".attn.wq_a", ql, H);
        fp8(p + ".attn.wq_b", nh * hd, ql);
        fp8(p + ".attn.wkv", hd, H);
        fp8(p + ".attn.wo_a", og * olr, nh * hd / og);
        fp8(p + ".attn.wo_b", H, og * olr);
        if (ratio != 0) {
            int64_t coff = ratio == 4 ? 2 : 1; // overlapping windows need two projections
            matrix(p + ".attn.compressor.wkv.weight", coff * hd, H);
            matrix(p + ".attn.compressor.wgate.weight", coff * hd, H);
            f32(p + ".attn.compressor.ape", {ratio, coff * hd}, 0.1f);
            norm(p + ".attn.compressor.norm.weight", hd);
            if (ratio == 4) {
                fp8(p + ".attn.indexer.wq_b", ih * ihd, ql);
                matrix(p + ".attn.indexer.weights_proj.weight", ih, H);
                matrix(p + ".attn.indexer.compressor.wkv.weight", 2 * ihd, H);
                matrix(p + ".attn.indexer.compressor.wgate.weight", 2 * ihd, H);
                f32(p + ".attn.indexer.compressor.ape", {ratio, 2 * ihd}, 0.1f);
                norm(p + ".attn.indexer.compressor.norm.weight", ihd);
            }
        }
        matrix(p + ".ffn.gate.weight", E, H);
        if (hash_routed) {
            plans_.push_back({{p + ".ffn.gate.tid2eid", "I64", {c_.vocab_size, c_.num_experts_per_tok}},
                              fill_kind::tid2eid, 0, 0, c_.vocab_size, c_.num_experts_per_tok});
        } else {
            f32(p + ".ffn.gate.bias", {E}, 0.01f);
        }
        fp8(p + ".ffn.shared_experts.w1", ns * I, H);
        fp8(p + ".ffn.shared_experts.w2", H, ns * I);
        fp8(p + ".ffn.shared_experts.w3", ns * I, H);
        for (int64_t e = 0; e < E; ++e) {
            std::string x = p + ".ffn.experts." + std::to_string(e);
            fp4(x + ".w1", I, H);
            fp4(x + ".w2", H, I);
            fp4(x + ".w3", I, H);
        }
    }

    std::vector<tensor_plan> build() {
        const int64_t H = c_.hidden_size, V = c_.vocab_size, L = c_.num_hidden_layers;
        matrix("embed.weight", V, H);
        matrix("head.weight", V, H);
        norm("norm.weight", H);
        hc_head("");
        for (int64_t l = 0; l < L; ++l) {
            block("layers." + std::to_string(l), c_.compress_ratios[size_t(l)], l < c_.num_hash_layers);
        }
        for (int64_t m = 0; m < c_.num_nextn_predict_layers; ++m) {
            std::string p = "mtp." + std::to_string(m);
            block(p, c_.compress_ratios[size_t(L + m)], false);
            fp8(p + ".e_proj", H, H);
            fp8(p + ".h_proj", H, H);
            norm(p + ".enorm.weight", H);
            norm(p + ".hnorm.weight", H);
            norm(p + ".norm.weight", H);
            hc_head(p + ".");
        }
        return std::move(plans_);
    }

private:
    const v4_model_config& c_;
    float std_;
    std::vector<tensor_plan> plans_;
};

result<std::vector<tensor_plan>> plan_checkpoint(const v4_model_config& cfg) {
    CACHALOT_TRY(validate(cfg));
    return plan_builder(cfg).build();
}

template <class T>
void put_le(std::vector<uint8_t>& out, size_t i, T v) {
    using U = std::make_unsigned_t<T>;
    U u = U(v);
    for (size_t b = 0; b < sizeof(T); ++b) {
        out[i * sizeof(T) + b] = uint8_t(u >> (8 * b));
    }
}

/// Makes each planned tensor's bytes in plan order. A quantised weight's scales come from the
/// same quantisation, so they are kept until the `.scale` tensor right after it is asked for.
class tensor_filler {
public:
    tensor_filler(const std::vector<tensor_plan>& plans, uint64_t seed, int64_t n_experts)
        : plans_(plans), seed_(seed), n_experts_(n_experts) {}

    status operator()(size_t index, std::vector<uint8_t>& out) {
        const tensor_plan& p = plans_[index];
        const std::string& name = p.entry.name;
        switch (p.kind) {
        case fill_kind::bf16_normal: {
            auto v = random_normal(seed_, name, element_count(p), p.mean, p.std);
            out.resize(v.size() * 2);
            for (size_t k = 0; k < v.size(); ++k) {
                put_le(out, k, f32_to_bf16(v[k]));
            }
            return ok_status();
        }
        case fill_kind::f32_normal: {
            auto v = random_normal(seed_, name, element_count(p), p.mean, p.std);
            out.resize(v.size() * 4);
            for (size_t k = 0; k < v.size(); ++k) {
                put_le(out, k, f32_to_bits(v[k]));
            }
            return ok_status();
        }
        case fill_kind::fp8_weight: {
            auto v = random_normal(seed_, name, size_t(p.rows * p.cols), p.mean, p.std);
            auto q = quantize_fp8_block(v, p.rows, p.cols);
            out = std::move(q.codes);
            pending_scales_ = std::move(q.scales);
            return ok_status();
        }
        case fill_kind::fp4_weight: {
            auto v = random_normal(seed_, name, size_t(p.rows * p.cols), p.mean, p.std);
            auto q = quantize_fp4_group(v, p.rows, p.cols);
            out = std::move(q.packed);
            pending_scales_ = std::move(q.scales);
            return ok_status();
        }
        case fill_kind::fp8_scale:
        case fill_kind::fp4_scale:
            CACHALOT_CHECK(index > 0 && !pending_scales_.empty(), "a .scale tensor must follow its weight");
            out = std::move(pending_scales_);
            pending_scales_.clear();
            return ok_status();
        case fill_kind::tid2eid: {
            // Each token gets `cols` distinct experts: a partial Fisher-Yates shuffle per row.
            tensor_rng rng(seed_, name);
            const int64_t n_experts = n_experts_;
            std::vector<int64_t> ids(static_cast<size_t>(n_experts));
            out.resize(size_t(p.rows * p.cols) * 8);
            for (int64_t r = 0; r < p.rows; ++r) {
                for (int64_t e = 0; e < n_experts; ++e) {
                    ids[size_t(e)] = e;
                }
                for (int64_t k = 0; k < p.cols; ++k) {
                    int64_t j = k + int64_t(rng.below(uint64_t(n_experts - k)));
                    std::swap(ids[size_t(k)], ids[size_t(j)]);
                    put_le(out, size_t(r * p.cols + k), ids[size_t(k)]);
                }
            }
            return ok_status();
        }
        }
        return make_error(errc::internal, "tensor " + name + ": unknown fill kind");
    }

private:
    static size_t element_count(const tensor_plan& p) {
        size_t n = 1;
        for (int64_t d : p.entry.shape) {
            n *= size_t(d);
        }
        return n;
    }

    const std::vector<tensor_plan>& plans_;
    uint64_t seed_;
    int64_t n_experts_;
    std::vector<uint8_t> pending_scales_;
};

// ---- files ------------------------------------------------------------------------------------

status write_text_atomically(const fs::path& dir, const std::string& name, std::string_view text) {
    fs::path tmp = dir / (name + ".tmp");
    output_file out;
    CACHALOT_TRY(out.open(tmp.string()));
    CACHALOT_TRY(out.write(text.data(), text.size()));
    CACHALOT_TRY(out.close());
    std::error_code ec;
    fs::rename(tmp, dir / name, ec);
    if (ec) {
        fs::remove(tmp, ec);
        return make_error(errc::io_error, "cannot rename " + tmp.string() + " to " + name);
    }
    return ok_status();
}

/// The file in `dir` that makes it look like a checkpoint already, or "" when there is none.
std::string existing_checkpoint_file(const fs::path& dir) {
    std::error_code ec;
    if (fs::exists(dir / "config.json", ec)) {
        return "config.json";
    }
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        auto name = it->path().filename().string();
        if (name.ends_with(".safetensors") || name == "model.safetensors.index.json") {
            return name;
        }
    }
    return "";
}

std::string human_bytes(uint64_t n) {
    char buf[32];
    if (n >= (uint64_t(1) << 20)) {
        std::snprintf(buf, sizeof buf, "%.1f MiB", double(n) / double(1 << 20));
    } else {
        std::snprintf(buf, sizeof buf, "%.1f KiB", double(n) / 1024.0);
    }
    return buf;
}

} // namespace

result<std::vector<safetensors_entry>> v4_tensor_list(const v4_model_config& cfg) {
    auto plans = plan_checkpoint(cfg);
    CACHALOT_TRY(plans);
    std::vector<safetensors_entry> entries;
    entries.reserve(plans->size());
    for (auto& p : *plans) {
        entries.push_back(std::move(p.entry));
    }
    return entries;
}

status make_random_checkpoint(const make_model_options& opts) {
    auto cfg = v4_preset(opts.preset);
    CACHALOT_TRY(cfg);
    return make_random_checkpoint(*cfg, opts);
}

status make_random_checkpoint(const v4_model_config& cfg, const make_model_options& opts) {
    auto say = [&](const std::string& msg) {
        if (opts.progress) {
            opts.progress(msg);
        }
    };
    if (opts.out_dir.empty()) {
        return make_error(errc::invalid_argument, "no output directory given");
    }
    auto plans = plan_checkpoint(cfg);
    CACHALOT_TRY(plans);
    // The embedded demo tokenizer has 1024 tokens; a smaller embedding would let it emit ids
    // the model has no row for.
    constexpr int64_t k_demo_tokenizer_tokens = 1024;
    if (cfg.vocab_size < k_demo_tokenizer_tokens) {
        return make_error(errc::invalid_argument, "model config: vocab_size " + std::to_string(cfg.vocab_size) +
                                                      " is below the embedded tokenizer's " +
                                                      std::to_string(k_demo_tokenizer_tokens) + " tokens");
    }

    const fs::path dir(opts.out_dir);
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
        return make_error(errc::invalid_argument, opts.out_dir + " exists and is not a directory");
    }
    fs::create_directories(dir, ec);
    if (ec) {
        return make_error(errc::io_error, "cannot create directory " + opts.out_dir + ": " + ec.message());
    }
    if (auto found = existing_checkpoint_file(dir); !found.empty()) {
        if (!opts.force) {
            return make_error(errc::invalid_argument, "refusing to overwrite: " + opts.out_dir +
                                                          " already holds a checkpoint (" + found +
                                                          "); use --force to replace it");
        }
        // config.json goes first so that an interrupted rewrite never looks complete; an index
        // would send loaders to stale shards instead of the new model.safetensors.
        for (const char* stale : {"config.json", "model.safetensors.index.json"}) {
            fs::remove(dir / stale, ec);
            if (ec) {
                return make_error(errc::io_error, "cannot remove " + (dir / stale).string() + ": " + ec.message());
            }
        }
    }

    std::vector<safetensors_entry> entries;
    entries.reserve(plans->size());
    for (const auto& p : *plans) {
        entries.push_back(p.entry);
    }
    tensor_filler filler(*plans, opts.seed, cfg.n_routed_experts);
    const fs::path tmp = dir / "model.safetensors.tmp";
    uint64_t next_report = 0;
    say("writing " + std::to_string(entries.size()) + " tensors to " + (dir / "model.safetensors").string() +
        " (seed " + std::to_string(opts.seed) + ")");
    status st = write_safetensors(
        tmp.string(), entries, [&](size_t i, std::vector<uint8_t>& out) { return filler(i, out); },
        [&](uint64_t done, uint64_t total) {
            if (done >= next_report && total >= (uint64_t(64) << 20)) {
                say("model.safetensors: " + std::to_string(done * 100 / total) + "% of " + human_bytes(total));
                next_report = done + total / 10;
            }
        });
    if (!st.ok()) {
        fs::remove(tmp, ec);
        return st;
    }
    fs::rename(tmp, dir / "model.safetensors", ec);
    if (ec) {
        fs::remove(tmp, ec);
        return make_error(errc::io_error, "cannot rename " + tmp.string() + " to model.safetensors");
    }
    CACHALOT_TRY(write_text_atomically(dir, "tokenizer.json", demo_tokenizer_json()));
    CACHALOT_TRY(write_text_atomically(dir, "tokenizer_config.json", k_tokenizer_config_json));
    CACHALOT_TRY(write_text_atomically(dir, "generation_config.json", generation_config_json(cfg)));
    CACHALOT_TRY(write_text_atomically(dir, "config.json", v4_config_json(cfg)));
    uint64_t size = fs::file_size(dir / "model.safetensors", ec);
    say("wrote " + opts.out_dir + ": " + std::to_string(entries.size()) + " tensors, " + human_bytes(ec ? 0 : size));
    return ok_status();
}

} // namespace cachalot

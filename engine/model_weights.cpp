// Tensor lookup and validation; see model_weights.h.
#include "engine/model_weights.h"

#include <cstring>

namespace cachalot {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) {
        r += (i ? ", " : "") + std::to_string(s[i]);
    }
    return r + "]";
}

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

class loader {
public:
    loader(const checkpoint& ck, const model_config& cfg) : ck_(ck), cfg_(cfg) {}

    result<const tensor_info*> tensor(const std::string& name) {
        const tensor_info* t = ck_.find(name);
        if (!t) {
            return make_error(errc::bad_format, "checkpoint is missing tensor '" + name + "'");
        }
        return t;
    }

    result<const tensor_info*> tensor(const std::string& name, const std::vector<int64_t>& shape) {
        auto t = tensor(name);
        if (!t) {
            return t;
        }
        if ((*t)->shape != shape) {
            return make_error(errc::bad_format, "tensor '" + name + "' has shape " + shape_str((*t)->shape) +
                                                    ", the config implies " + shape_str(shape));
        }
        return t;
    }

    /// Small parameter vectors in F32 (copied: checkpoint data need not be 4-byte aligned).
    status floats(const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& out) {
        auto t = tensor(name, shape);
        if (!t) {
            return std::move(t).take_error();
        }
        const tensor_info& ti = **t;
        out.resize(size_t(ti.numel()));
        if (ti.type == dtype::f32) {
            std::memcpy(out.data(), ti.data, ti.size_bytes);
        } else if (ti.type == dtype::bf16) {
            for (size_t i = 0; i < out.size(); ++i) {
                uint16_t v;
                std::memcpy(&v, ti.data + 2 * i, 2);
                out[i] = bf16_to_f32(v);
            }
        } else {
            return make_error(errc::bad_format, "tensor '" + name + "' is " + std::string(dtype_name(ti.type)) +
                                                    ", expected F32 or BF16");
        }
        return ok_status();
    }

    /// A linear layer `prefix.weight` [out, in] in BF16, F32, FP8 (+ prefix.scale block scales)
    /// or packed FP4 (I8/U8 [out, in/2] + prefix.scale [out, in/32]).
    status linear(const std::string& prefix, int64_t out, int64_t in, weight_view& w) {
        std::string wname = prefix + ".weight";
        auto t = tensor(wname);
        if (!t) {
            return std::move(t).take_error();
        }
        const tensor_info& ti = **t;
        w = weight_view{};
        w.rows = out;
        w.cols = in;
        w.data = ti.data;
        auto expect_shape = [&](std::vector<int64_t> s) -> status {
            if (ti.shape != s) {
                return make_error(errc::bad_format, "tensor '" + wname + "' (" + std::string(dtype_name(ti.type)) +
                                                        ") has shape " + shape_str(ti.shape) + ", the config implies " +
                                                        shape_str(s));
            }
            return ok_status();
        };
        switch (ti.type) {
        case dtype::bf16:
        case dtype::f32:
            CACHALOT_TRY(expect_shape({out, in}));
            w.type = ti.type;
            return ok_status();
        case dtype::f8_e4m3: {
            CACHALOT_TRY(expect_shape({out, in}));
            int64_t br = cfg_.weight_block_size[0], bc = cfg_.weight_block_size[1];
            auto s = tensor(prefix + ".scale", {ceil_div(out, br), ceil_div(in, bc)});
            if (!s) {
                return std::move(s).take_error();
            }
            if ((*s)->type != dtype::f8_e8m0) {
                return make_error(errc::bad_format, "tensor '" + prefix + ".scale' is " +
                                                        std::string(dtype_name((*s)->type)) + ", expected F8_E8M0");
            }
            w.type = dtype::f8_e4m3;
            w.scales = (*s)->data;
            w.scale_block_rows = int32_t(br);
            w.scale_block_cols = int32_t(bc);
            w.scale_row_stride = ceil_div(in, bc);
            return ok_status();
        }
        case dtype::i8:
        case dtype::u8: {
            if (in % 32 != 0) {
                return make_error(errc::bad_format, "tensor '" + wname + "' is packed FP4 but its input width " +
                                                        std::to_string(in) + " is not a multiple of 32");
            }
            CACHALOT_TRY(expect_shape({out, in / 2}));
            auto s = tensor(prefix + ".scale", {out, in / 32});
            if (!s) {
                return std::move(s).take_error();
            }
            if ((*s)->type != dtype::f8_e8m0) {
                return make_error(errc::bad_format, "tensor '" + prefix + ".scale' is " +
                                                        std::string(dtype_name((*s)->type)) + ", expected F8_E8M0");
            }
            w.type = dtype::fp4_e2m1;
            w.scales = (*s)->data;
            w.scale_block_rows = 1;
            w.scale_block_cols = 32;
            w.scale_row_stride = in / 32;
            return ok_status();
        }
        default:
            return make_error(errc::bad_format, "tensor '" + wname + "' has dtype " + std::string(dtype_name(ti.type)) +
                                                    "; a linear weight must be BF16, F32, F8_E4M3 or packed FP4 (I8)");
        }
    }

    status hc(const std::string& prefix, int64_t m, int64_t n_scale, hc_weights& h) {
        int64_t D = cfg_.hidden_size, n = cfg_.hc_mult;
        CACHALOT_TRY(floats(prefix + "_fn", {m, n * D}, h.fn));
        CACHALOT_TRY(floats(prefix + "_base", {m}, h.base));
        CACHALOT_TRY(floats(prefix + "_scale", {n_scale}, h.scale));
        return ok_status();
    }

    status compressor(const std::string& prefix, int64_t ratio, int64_t dim, compressor_weights& c) {
        int64_t D = cfg_.hidden_size;
        c.ratio = ratio;
        c.dim = dim;
        c.overlap = ratio == 4;
        int64_t width = (c.overlap ? 2 : 1) * dim;
        CACHALOT_TRY(linear(prefix + ".wkv", width, D, c.wkv));
        CACHALOT_TRY(linear(prefix + ".wgate", width, D, c.wgate));
        CACHALOT_TRY(floats(prefix + ".ape", {ratio, width}, c.ape));
        CACHALOT_TRY(floats(prefix + ".norm.weight", {dim}, c.norm));
        return ok_status();
    }

    status expert(const std::string& prefix, expert_weights& e) {
        int64_t D = cfg_.hidden_size, I = cfg_.moe_intermediate_size;
        CACHALOT_TRY(linear(prefix + ".w1", I, D, e.w1));
        CACHALOT_TRY(linear(prefix + ".w2", D, I, e.w2));
        CACHALOT_TRY(linear(prefix + ".w3", I, D, e.w3));
        return ok_status();
    }

    status block(const std::string& p, int64_t ratio, bool hash_routed, block_weights& b) {
        int64_t D = cfg_.hidden_size, H = cfg_.num_attention_heads, d = cfg_.head_dim, n = cfg_.hc_mult;
        int64_t g = cfg_.o_groups, R = cfg_.o_lora_rank, E = cfg_.n_routed_experts;
        CACHALOT_TRY(floats(p + "attn_norm.weight", {D}, b.attn_norm));
        CACHALOT_TRY(floats(p + "ffn_norm.weight", {D}, b.ffn_norm));
        CACHALOT_TRY(hc(p + "hc_attn", (2 + n) * n, 3, b.hc_attn));
        CACHALOT_TRY(hc(p + "hc_ffn", (2 + n) * n, 3, b.hc_ffn));
        auto& a = b.attn;
        a.ratio = ratio;
        CACHALOT_TRY(linear(p + "attn.wq_a", cfg_.q_lora_rank, D, a.wq_a));
        CACHALOT_TRY(floats(p + "attn.q_norm.weight", {cfg_.q_lora_rank}, a.q_norm));
        CACHALOT_TRY(linear(p + "attn.wq_b", H * d, cfg_.q_lora_rank, a.wq_b));
        CACHALOT_TRY(linear(p + "attn.wkv", d, D, a.wkv));
        CACHALOT_TRY(floats(p + "attn.kv_norm.weight", {d}, a.kv_norm));
        CACHALOT_TRY(linear(p + "attn.wo_a", g * R, H * d / g, a.wo_a));
        CACHALOT_TRY(linear(p + "attn.wo_b", D, g * R, a.wo_b));
        CACHALOT_TRY(floats(p + "attn.attn_sink", {H}, a.sink));
        if (ratio > 0) {
            a.has_compressor = true;
            CACHALOT_TRY(compressor(p + "attn.compressor", ratio, d, a.compressor));
        }
        if (ratio == 4) {
            a.has_indexer = true;
            int64_t nI = cfg_.index_n_heads, dI = cfg_.index_head_dim;
            CACHALOT_TRY(linear(p + "attn.indexer.wq_b", nI * dI, cfg_.q_lora_rank, a.indexer.wq_b));
            CACHALOT_TRY(linear(p + "attn.indexer.weights_proj", nI, D, a.indexer.weights_proj));
            CACHALOT_TRY(compressor(p + "attn.indexer.compressor", 4, dI, a.indexer.compressor));
        }
        auto& f = b.ffn;
        CACHALOT_TRY(linear(p + "ffn.gate", E, D, f.gate));
        if (hash_routed) {
            auto t = tensor(p + "ffn.gate.tid2eid", {cfg_.vocab_size, cfg_.num_experts_per_tok});
            if (!t) {
                return std::move(t).take_error();
            }
            const tensor_info& ti = **t;
            if (ti.type != dtype::i64 && ti.type != dtype::i32) {
                return make_error(errc::bad_format, "tensor '" + ti.name + "' must be I64 or I32");
            }
            f.tid2eid.resize(size_t(ti.numel()));
            for (size_t i = 0; i < f.tid2eid.size(); ++i) {
                int64_t v;
                if (ti.type == dtype::i64) {
                    std::memcpy(&v, ti.data + 8 * i, 8);
                } else {
                    int32_t v32;
                    std::memcpy(&v32, ti.data + 4 * i, 4);
                    v = v32;
                }
                if (v < 0 || v >= E) {
                    return make_error(errc::bad_format, "tensor '" + ti.name + "' holds expert id " +
                                                            std::to_string(v) + " outside [0, " + std::to_string(E) +
                                                            ")");
                }
                f.tid2eid[i] = int32_t(v);
            }
        } else {
            CACHALOT_TRY(floats(p + "ffn.gate.bias", {E}, f.bias));
        }
        f.experts.resize(size_t(E));
        for (int64_t e = 0; e < E; ++e) {
            CACHALOT_TRY(expert(p + "ffn.experts." + std::to_string(e), f.experts[size_t(e)]));
        }
        f.has_shared = cfg_.n_shared_experts > 0;
        if (f.has_shared) {
            CACHALOT_TRY(expert(p + "ffn.shared_experts", f.shared));
        }
        return ok_status();
    }

private:
    const checkpoint& ck_;
    const model_config& cfg_;
};

} // namespace

result<model_weights> load_model_weights(const checkpoint& ck, const model_config& cfg, bool with_mtp) {
    loader ld(ck, cfg);
    model_weights w;
    int64_t D = cfg.hidden_size, V = cfg.vocab_size, n = cfg.hc_mult;
    CACHALOT_TRY(ld.linear("embed", V, D, w.embed));
    CACHALOT_TRY(ld.linear("head", V, D, w.head));
    CACHALOT_TRY(ld.floats("norm.weight", {D}, w.norm));
    CACHALOT_TRY(ld.hc("hc_head", n, 1, w.hc_head));
    w.layers.resize(size_t(cfg.num_hidden_layers));
    for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
        CACHALOT_TRY(
            ld.block("layers." + std::to_string(l) + ".", cfg.ratio(l), l < cfg.num_hash_layers, w.layers[size_t(l)]));
    }
    if (with_mtp) {
        w.mtp.resize(size_t(cfg.num_nextn_predict_layers));
        for (int64_t j = 0; j < cfg.num_nextn_predict_layers; ++j) {
            std::string p = "mtp." + std::to_string(j) + ".";
            auto& m = w.mtp[size_t(j)];
            CACHALOT_TRY(ld.block(p, cfg.ratio(cfg.num_hidden_layers + j), false, m.block));
            CACHALOT_TRY(ld.linear(p + "e_proj", D, D, m.e_proj));
            CACHALOT_TRY(ld.linear(p + "h_proj", D, D, m.h_proj));
            CACHALOT_TRY(ld.floats(p + "enorm.weight", {D}, m.enorm));
            CACHALOT_TRY(ld.floats(p + "hnorm.weight", {D}, m.hnorm));
            CACHALOT_TRY(ld.floats(p + "norm.weight", {D}, m.norm));
            CACHALOT_TRY(ld.hc(p + "hc_head", n, 1, m.hc_head));
        }
    }
    return w;
}

namespace {

// Every matmul weight of a block (the routed experts' FP4 weights too: the kernel decides).
void block_views(block_weights& b, std::vector<weight_view*>& out) {
    attention_weights& a = b.attn;
    out.insert(out.end(), {&a.wq_a, &a.wq_b, &a.wkv, &a.wo_a, &a.wo_b, &b.ffn.gate});
    if (a.has_compressor) {
        out.insert(out.end(), {&a.compressor.wkv, &a.compressor.wgate});
    }
    if (a.has_indexer) {
        out.insert(out.end(),
                   {&a.indexer.wq_b, &a.indexer.weights_proj, &a.indexer.compressor.wkv, &a.indexer.compressor.wgate});
    }
    if (b.ffn.has_shared) {
        out.insert(out.end(), {&b.ffn.shared.w1, &b.ffn.shared.w2, &b.ffn.shared.w3});
    }
    for (expert_weights& e : b.ffn.experts) {
        out.insert(out.end(), {&e.w1, &e.w2, &e.w3});
    }
}

} // namespace

void pack_fast_weights(model_weights& w) {
    std::vector<weight_view*> views = {&w.head};
    for (block_weights& b : w.layers) {
        block_views(b, views);
    }
    for (mtp_weights& m : w.mtp) {
        block_views(m.block, views);
        views.insert(views.end(), {&m.e_proj, &m.h_proj});
    }
    // Weights are independent: packed on every thread (load time is mostly this and the page
    // faults it takes).
    std::vector<packed_weight> packed(views.size());
    thread_pool::global().parallel_for(int64_t(views.size()), 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            weight_view& v = *views[size_t(i)];
            if (v.data && !v.lanes) {
                packed[size_t(i)] = pack_for_fast(v);
            }
        }
    });
    for (size_t i = 0; i < views.size(); ++i) {
        if (!packed[i].empty()) {
            weight_view& v = *views[i];
            v.lanes = packed[i].bytes.get();
            checkpoint::release(v.data, size_t(v.rows * v.row_bytes()));
            w.packed.push_back(std::move(packed[i]));
        }
    }
}

} // namespace cachalot

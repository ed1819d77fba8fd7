// model_weights: every tensor of a DeepSeek-V4 checkpoint, found by its native name, checked
// against the shape the config implies, and exposed as views into the mapped checkpoint (large
// matrices) or small F32 copies (norms, mHC parameters, sinks, biases). A missing tensor, a
// wrong shape or an unexpected dtype fails the load with the tensor named.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/safetensors.h"
#include "kernels/ops.h"
#include "kernels/weight.h"

namespace cachalot {

struct hc_weights {
    std::vector<float> fn;    // [m, hc·D], m = (2 + hc)·hc for sites, hc for the head
    std::vector<float> base;  // [m]
    std::vector<float> scale; // [3] for sites, [1] for the head
};

struct compressor_weights {
    int64_t ratio = 0;  // r
    int64_t dim = 0;    // d' (head_dim for the main compressor, index_head_dim for the indexer's)
    bool overlap = false; // r = 4: two halves, 8 slots
    weight_view wkv;    // [c·d', D]
    weight_view wgate;  // [c·d', D]
    std::vector<float> ape;  // [r, c·d']
    std::vector<float> norm; // [d']
};

struct indexer_weights {
    weight_view wq_b;         // [nI·dI, q_lora]
    weight_view weights_proj; // [nI, D]
    compressor_weights compressor;
};

struct attention_weights {
    int64_t ratio = 0;
    weight_view wq_a, wq_b, wkv, wo_a, wo_b;
    std::vector<float> q_norm, kv_norm, sink;
    bool has_compressor = false;
    compressor_weights compressor;
    bool has_indexer = false;
    indexer_weights indexer;
};

struct expert_weights {
    weight_view w1, w2, w3; // w1, w3: [I, D]; w2: [D, I]
};

struct moe_weights {
    weight_view gate;             // [E, D]
    std::vector<float> bias;      // [E]; empty on hash-routed layers
    std::vector<int32_t> tid2eid; // [vocab, K]; empty on learned-routing layers
    std::vector<expert_weights> experts;
    bool has_shared = false;
    expert_weights shared;
};

struct block_weights {
    std::vector<float> attn_norm, ffn_norm;
    hc_weights hc_attn, hc_ffn;
    attention_weights attn;
    moe_weights ffn;
};

struct mtp_weights {
    block_weights block;
    weight_view e_proj, h_proj;
    std::vector<float> enorm, hnorm, norm;
    hc_weights hc_head;
};

struct model_weights {
    weight_view embed; // [vocab, D]
    weight_view head;  // [vocab, D]
    std::vector<float> norm;
    hc_weights hc_head;
    std::vector<block_weights> layers;
    std::vector<mtp_weights> mtp;
    std::vector<packed_weight> packed; // what views' `lanes` point into (pack_fast_weights)
};

/// Repacks every matmul weight the `fast` CPU kernel has a layout of its own for (pack_for_fast),
/// points the views' `lanes` at the copies, kept in w.packed, and releases the mapped originals
/// (`exact` reads them again from the file when it needs them). Nothing happens on machines whose
/// kernel reads the stored form.
void pack_fast_weights(model_weights& w);

/// Resolves and validates every tensor the config implies. `with_mtp` = false skips mtp.*.
[[nodiscard]] result<model_weights> load_model_weights(const checkpoint& ck, const model_config& cfg, bool with_mtp = true);

} // namespace cachalot

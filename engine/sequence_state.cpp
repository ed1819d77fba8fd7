// Allocation and rollback of per-sequence state; see sequence_state.h.
#include "engine/sequence_state.h"

#include <algorithm>

#include "engine/model_config.h"
#include "kernels/attention.h"
#include "kernels/dtype.h"

namespace cachalot {

namespace {

compressor_state make_compressor(int64_t ratio, int64_t dim, int64_t slack) {
    compressor_state c;
    c.ratio = ratio;
    c.dim = dim;
    bool overlap = ratio == 4;
    c.width = (overlap ? 2 : 1) * dim;
    // Overlapping pools read the previous window too.
    c.capacity = (overlap ? 2 * ratio : ratio) + slack;
    c.a.assign(size_t(c.capacity * c.width), 0.0f);
    c.b.assign(size_t(c.capacity * c.width), 0.0f);
    return c;
}

layer_state make_layer(const model_config& cfg, int64_t ratio, int64_t slack, bool bf16) {
    layer_state s;
    s.ring_capacity = cfg.sliding_window + slack;
    if (bf16) {
        s.window16.assign(size_t(s.ring_capacity * cfg.head_dim), 0);
    } else {
        s.window.assign(size_t(s.ring_capacity * cfg.head_dim), 0.0f);
    }
    if (ratio > 0) {
        s.compressor = make_compressor(ratio, cfg.head_dim, slack);
        s.compressor.keep_f32 = !bf16;
        s.compressor.keep_bf16 = bf16;
    }
    if (ratio == 4) {
        // The indexer's keys: F32 for `exact`; for `fast`, BF16 lanes where the CPU scores in BF16
        // (forward.cpp's choice), else F32.
        s.index_compressor = make_compressor(4, cfg.index_head_dim, slack);
        const bool lanes = bf16 && cfg.index_head_dim % 2 == 0 && indexer_scores_bf16_native();
        s.index_compressor.bf16_lanes = lanes;
        s.index_compressor.keep_f32 = !lanes;
    }
    return s;
}

void truncate_compressor(compressor_state& c, int64_t n_positions) {
    if (c.dim == 0) {
        return;
    }
    c.truncate_entries(n_positions / c.ratio);
}

int64_t bytes_of(const layer_state& s) {
    auto comp = [](const compressor_state& c) {
        return int64_t(c.a.capacity() + c.b.capacity() + c.entries.capacity()) * int64_t(sizeof(float)) +
               int64_t(c.entries16.capacity() + c.lanes.capacity()) * int64_t(sizeof(uint16_t));
    };
    return int64_t(s.window.capacity() * sizeof(float) + s.window16.capacity() * sizeof(uint16_t)) +
           comp(s.compressor) + comp(s.index_compressor);
}

} // namespace

void compressor_state::append(const float* e) {
    const int64_t w = count++;
    if (keep_f32) {
        entries.insert(entries.end(), e, e + dim);
    }
    if (keep_bf16) {
        for (int64_t i = 0; i < dim; ++i) {
            entries16.push_back(f32_to_bf16(e[i]));
        }
    }
    if (bf16_lanes) {
        const auto need = size_t((w / k_index_lanes + 1) * indexer_lane_block_elems(dim));
        if (lanes.size() < need) {
            lanes.resize(need, 0);
        }
        indexer_key_to_lanes(e, dim, w, lanes.data());
    }
}

void compressor_state::truncate_entries(int64_t n) {
    if (n >= count) {
        return;
    }
    count = n;
    if (keep_f32) {
        entries.resize(size_t(n * dim));
    }
    if (keep_bf16) {
        entries16.resize(size_t(n * dim));
    }
    if (bf16_lanes) {
        // Whole blocks; lanes past n in the last block stay until rewritten, and no reader goes
        // past count.
        lanes.resize(size_t((n + k_index_lanes - 1) / k_index_lanes * indexer_lane_block_elems(dim)));
    }
}

sequence_state sequence_state::create(const model_config& cfg, precision p, int64_t spec_slack) {
    sequence_state s;
    s.keys_for = p;
    const bool bf16 = p == precision::fast;
    for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
        s.layers.push_back(make_layer(cfg, cfg.ratio(l), spec_slack, bf16));
    }
    for (int64_t j = 0; j < cfg.num_nextn_predict_layers; ++j) {
        s.mtp_layers.push_back(make_layer(cfg, cfg.ratio(cfg.num_hidden_layers + j), spec_slack, bf16));
    }
    s.last_streams.assign(size_t(cfg.hc_mult * cfg.hidden_size), 0.0f);
    return s;
}

void sequence_state::truncate(int64_t n) {
    n = std::clamp<int64_t>(n, 0, n_past);
    n_past = n;
    for (auto& l : layers) {
        truncate_compressor(l.compressor, n);
        truncate_compressor(l.index_compressor, n);
    }
    int64_t m = std::max<int64_t>(0, std::min(mtp_n_past, n - 1));
    mtp_n_past = m;
    for (auto& l : mtp_layers) {
        truncate_compressor(l.compressor, m);
        truncate_compressor(l.index_compressor, m);
    }
}

int64_t sequence_state::size_bytes() const {
    int64_t n = int64_t(last_streams.capacity() * sizeof(float));
    for (auto& l : layers) {
        n += bytes_of(l);
    }
    for (auto& l : mtp_layers) {
        n += bytes_of(l);
    }
    return n;
}

} // namespace cachalot

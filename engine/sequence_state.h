// sequence_state: everything one sequence keeps between forward steps (spec §3): per layer a
// ring of recent K=V vectors, the compressed entries and indexer keys emitted so far, and the
// compressor inputs (a, b) of the windows still in progress; plus the MTP block's own state and
// the trunk's last residual streams for drafting.
//
// Every per-position buffer is a ring indexed by position modulo its capacity, and emitted
// entries are append-only, so rolling back rejected speculative tokens is truncate(n): no
// snapshot is needed as long as at most `spec_slack` positions are rolled back at once.
#pragma once

#include <cstdint>
#include <vector>

namespace cachalot {

struct model_config;

/// A compressor's request state: rings of its inputs and the entries it has emitted.
struct compressor_state {
    int64_t ratio = 0;          // r
    int64_t dim = 0;            // d' of an entry
    int64_t width = 0;          // c·d' of an input row
    int64_t capacity = 0;       // ring slots
    std::vector<float> a;       // [capacity][width]: Wkv_c·x
    std::vector<float> b;       // [capacity][width]: Wg_c·x + ape[p mod r]
    std::vector<float> entries; // [n_entries][dim]: pooled, normalised, rotated
    // The indexer's compressor keeps its entries in BF16 too, 16 keys a block with the keys as
    // lanes (kernels/attention.h), for the `fast` path's indexer scores; off for other compressors.
    bool bf16_lanes = false;
    std::vector<uint16_t> lanes;

    int64_t n_entries() const { return dim ? int64_t(entries.size()) / dim : 0; }
    float* a_row(int64_t pos) { return a.data() + (pos % capacity) * width; }
    float* b_row(int64_t pos) { return b.data() + (pos % capacity) * width; }
    const float* entry(int64_t w) const { return entries.data() + w * dim; }
    /// Writes entry w (already in `entries`) into the BF16 lanes when this compressor keeps them.
    void store_lanes(int64_t w);
    /// Sizes the lanes to hold n entries (whole blocks of 16).
    void resize_lanes(int64_t n);
};

struct layer_state {
    int64_t ring_capacity = 0;
    std::vector<float> window;         // [ring_capacity][head_dim]: K=V of recent positions
    compressor_state compressor;       // r > 0
    compressor_state index_compressor; // r = 4

    float* window_row(int64_t pos, int64_t head_dim) { return window.data() + (pos % ring_capacity) * head_dim; }
};

struct sequence_state {
    int64_t n_past = 0;                  // positions processed by the trunk
    std::vector<layer_state> layers;     // trunk layers
    std::vector<float> last_streams;     // [hc·D] of position n_past − 1 (pre-HCHead)
    int64_t mtp_n_past = 0;              // positions processed by the MTP block
    std::vector<layer_state> mtp_layers; // one per MTP block

    /// Fresh state for a model; spec_slack = the most positions ever rolled back at once.
    static sequence_state create(const model_config& cfg, int64_t spec_slack = 8);

    /// Rolls the trunk back to n positions (n <= n_past) and the MTP block to at most n − 1.
    void truncate(int64_t n);

    /// Bytes held by this state.
    int64_t size_bytes() const;
};

} // namespace cachalot

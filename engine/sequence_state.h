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

#include "kernels/ops.h"

namespace cachalot {

struct model_config;

/// A compressor's request state: rings of its inputs and the entries it has emitted.
struct compressor_state {
    int64_t ratio = 0;    // r
    int64_t dim = 0;      // d' of an entry
    int64_t width = 0;    // c·d' of an input row
    int64_t capacity = 0; // ring slots
    std::vector<float> a; // [capacity][width]: Wkv_c·x
    std::vector<float> b; // [capacity][width]: Wg_c·x + ape[p mod r]
    // The entries emitted so far, pooled, normalised and rotated, each kept in the forms its
    // readers need: F32 (`exact` attention and indexer, and the `fast` indexer where the CPU has no
    // BF16 dot), BF16 (`fast` attention), and for the `fast` indexer with a BF16 dot, BF16 "lanes":
    // 16 keys a block with the keys as lanes (kernels/attention.h).
    int64_t count = 0;
    bool keep_f32 = true;
    bool keep_bf16 = false;
    bool bf16_lanes = false;
    std::vector<float> entries;      // [count][dim]
    std::vector<uint16_t> entries16; // [count][dim]
    std::vector<uint16_t> lanes;     // whole blocks of 16 keys

    int64_t n_entries() const { return count; }
    float* a_row(int64_t pos) { return a.data() + (pos % capacity) * width; }
    float* b_row(int64_t pos) { return b.data() + (pos % capacity) * width; }
    const float* entry(int64_t w) const { return entries.data() + w * dim; }        // keep_f32
    const uint16_t* entry16(int64_t w) const { return entries16.data() + w * dim; } // keep_bf16
    /// Appends the next entry (dim floats) in every form this compressor keeps (BF16 rounded to
    /// nearest even).
    void append(const float* e);
    /// Drops the entries past the first n.
    void truncate_entries(int64_t n);
};

/// A layer's recent K=V vectors, by position modulo the ring's capacity: F32 (`window`) or BF16
/// (`window16`), as the sequence keeps its keys; and its compressors.
struct layer_state {
    int64_t ring_capacity = 0;
    std::vector<float> window;         // [ring_capacity][head_dim]
    std::vector<uint16_t> window16;    // [ring_capacity][head_dim]
    compressor_state compressor;       // r > 0
    compressor_state index_compressor; // r = 4

    float* window_row(int64_t pos, int64_t head_dim) { return window.data() + (pos % ring_capacity) * head_dim; }
    uint16_t* window_row16(int64_t pos, int64_t head_dim) { return window16.data() + (pos % ring_capacity) * head_dim; }
};

/// A sequence's state for one precision: `exact` keeps its attention keys (window and compressed
/// entries) in F32, as the F32 goldens need; `fast` keeps them in BF16 (spec §3.2's reference form),
/// half the memory and half the bytes attention reads. model::forward refuses a state made for the
/// other precision.
struct sequence_state {
    precision keys_for = precision::exact;
    int64_t n_past = 0;                  // positions processed by the trunk
    std::vector<layer_state> layers;     // trunk layers
    std::vector<float> last_streams;     // [hc·D] of position n_past − 1 (pre-HCHead)
    int64_t mtp_n_past = 0;              // positions processed by the MTP block
    std::vector<layer_state> mtp_layers; // one per MTP block

    /// Fresh state for a model and precision; spec_slack = the most positions ever rolled back at
    /// once.
    static sequence_state create(const model_config& cfg, precision p, int64_t spec_slack = 8);

    /// Rolls the trunk back to n positions (n <= n_past) and the MTP block to at most n − 1.
    void truncate(int64_t n);

    /// Bytes held by this state.
    int64_t size_bytes() const;
};

} // namespace cachalot

// The contract between attention_dispatch.cpp and the ISA-specific attention files
// (attention_avx512.cpp, attention_avx2.cpp). Like matmul_cpu.h: those files are compiled with ISA flags, so they see
// only plain declarations here and export one table each.
#pragma once

#include <cstdint>

namespace cachalot {

/// A CPU implementation of the `fast` attention kernels (same contracts as attention.h's
/// reference functions, and compress_pool.h; head dims must be multiples of 16).
struct attention_kernel {
    const char* name;
    bool (*supported)();
    void (*sink_heads)(const float* q, int64_t n_heads, const float* const* keys, int64_t nk, int64_t d, float scale,
                       const float* sinks, float* scratch, float* out);
    void (*indexer_scores)(const float* q, const float* weights, int64_t n_heads, int64_t head_dim, const float* keys,
                           int64_t n_keys, float* scores);
    void (*compress_pool)(const float* const* a, const float* const* b, int64_t n_slots, int64_t dim, float* out);
    // Null where the ISA has no BF16 dot (the dispatcher then runs the reference).
    void (*indexer_scores_bf16)(const float* q, const float* weights, int64_t n_heads, int64_t head_dim,
                                const uint16_t* key_lanes, int64_t n_keys, float* scores);
    // sink_heads over BF16 keys, each widened to F32 as it is loaded: bitwise sink_heads on the keys'
    // F32 expansion.
    void (*sink_heads_bf16)(const float* q, int64_t n_heads, const uint16_t* const* keys, int64_t nk, int64_t d,
                            float scale, const float* sinks, float* scratch, float* out);
};

extern const attention_kernel k_attention_kernel_avx512;
extern const attention_kernel k_attention_kernel_avx2;

} // namespace cachalot

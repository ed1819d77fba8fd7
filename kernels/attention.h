// Attention-side kernels of V4: sink attention over a gathered key set (window and compressed
// entries alike; K = V), and the lightning indexer's scores. Reference implementations in
// F32 with fixed reduction order. Shapes: d = head_dim, nk = keys, nI/dI = indexer heads/dim.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/result.h"

namespace cachalot {

/// out[d] = Σ_j softmax_j(q·k_j·scale ∪ {sink}) · k_j, where the sink only enlarges the
/// denominator. keys: nk pointers to d floats. scratch: at least nk floats.
void attention_with_sink(const float* q, const float* const* keys, int64_t nk, int64_t d, float scale, float sink,
                         float* scratch, float* out);

/// The same for n_heads queries that share one key set (V4's single K=V head): each key is read
/// once for all heads while it is in cache. q, out: [n_heads][d]; sinks: [n_heads];
/// scratch: at least n_heads·nk floats. Per head, bit-identical to attention_with_sink.
void attention_with_sink_heads(const float* q, int64_t n_heads, const float* const* keys, int64_t nk, int64_t d,
                               float scale, const float* sinks, float* scratch, float* out);

/// attention_with_sink_heads over keys stored in BF16 (the `fast` path's key storage, spec §3.2):
/// bitwise attention_with_sink_heads on the keys widened to F32. keys: nk pointers to d BF16 values.
void attention_with_sink_heads_bf16(const float* q, int64_t n_heads, const uint16_t* const* keys, int64_t nk, int64_t d,
                                    float scale, const float* sinks, float* scratch, float* out);

/// scores[w] = Σ_h weights[h] · relu(q_h · key_w) for w < n_keys.
/// q: [nI][dI], weights: [nI], keys: [n_keys][dI] contiguous.
void indexer_scores(const float* q, const float* weights, int64_t n_heads, int64_t head_dim, const float* keys,
                    int64_t n_keys, float* scores);

/// The indexer's keys in BF16 for the `fast` path, stored "keys as lanes" so that vdpbf16ps reads
/// one key per lane and one dim pair per step, with no horizontal sums: blocks of 16 keys, element
/// i of key w at [w / 16][i / 2][w % 16][i % 2]. A block holds 16 · head_dim values (head_dim even).
constexpr int64_t k_index_lanes = 16;
inline int64_t indexer_lane_block_elems(int64_t head_dim) {
    return k_index_lanes * head_dim;
}
/// Writes key w (head_dim floats, rounded to nearest even) into its block of `lanes`.
void indexer_key_to_lanes(const float* key, int64_t head_dim, int64_t w, uint16_t* lanes);

/// indexer_scores on BF16: q rounded to BF16, keys in the lanes layout above, each key's dot summed
/// per dim pair exactly as vdpbf16ps does (the odd product, then the even one, both exact, each
/// added with round-to-nearest-even; subnormal inputs and results flushed to zero), then the heads
/// added in order as in indexer_scores. The scores only choose the top-k entries, so BF16 suffices;
/// the reference and the AVX-512 kernel agree bit for bit. head_dim must be even.
void indexer_scores_bf16(const float* q, const float* weights, int64_t n_heads, int64_t head_dim,
                         const uint16_t* key_lanes, int64_t n_keys, float* scores);

/// The indices of the k highest of scores[0..n) (ties: lower index first), in ascending index
/// order, so that attention visits the chosen entries in position order; all of [0, n) when
/// n <= k. O(n); scratch is reused between calls. Scores must not be NaN.
void top_k_ascending(const float* scores, int64_t n, int64_t k, std::vector<uint32_t>& scratch,
                     std::vector<int32_t>& out);

/// The `fast` precision's versions of attention_with_sink_heads and indexer_scores: same
/// contracts, F32 with fused multiply-add in a blocked order and a polynomial exp, so results
/// differ from the reference in rounding only. They run the best CPU variant this machine has (AVX-512 when the head
/// dims are multiples of 16), else the reference.
void attention_with_sink_heads_fast(const float* q, int64_t n_heads, const float* const* keys, int64_t nk, int64_t d,
                                    float scale, const float* sinks, float* scratch, float* out);
void indexer_scores_fast(const float* q, const float* weights, int64_t n_heads, int64_t head_dim, const float* keys,
                         int64_t n_keys, float* scores);
/// attention_with_sink_heads_fast over BF16 keys: bitwise attention_with_sink_heads_fast on the keys
/// widened to F32 (each key is widened as it is loaded; half the bytes of F32 keys).
void attention_with_sink_heads_bf16_fast(const float* q, int64_t n_heads, const uint16_t* const* keys, int64_t nk,
                                         int64_t d, float scale, const float* sinks, float* scratch, float* out);

/// indexer_scores_bf16 on the best CPU variant; indexer_scores_bf16_native() says whether that is
/// a vector kernel (AVX-512 BF16). Where it is not, the `fast` path keeps indexer_scores_fast,
/// which is then the faster of the two.
void indexer_scores_bf16_fast(const float* q, const float* weights, int64_t n_heads, int64_t head_dim,
                              const uint16_t* key_lanes, int64_t n_keys, float* scores);
bool indexer_scores_bf16_native();

/// The `fast` kernels on one named CPU variant ("avx512", "avx2", "reference"), whatever
/// attention_backend_name() picked: for tests and benchmarks. Fails with errc::unsupported when
/// this build, CPU or head dim rules that variant out, errc::invalid_argument for unknown names.
[[nodiscard]] status attention_with_sink_heads_on(std::string_view backend, const float* q, int64_t n_heads,
                                                  const float* const* keys, int64_t nk, int64_t d, float scale,
                                                  const float* sinks, float* scratch, float* out);
[[nodiscard]] status attention_with_sink_heads_bf16_on(std::string_view backend, const float* q, int64_t n_heads,
                                                       const uint16_t* const* keys, int64_t nk, int64_t d, float scale,
                                                       const float* sinks, float* scratch, float* out);
[[nodiscard]] status indexer_scores_on(std::string_view backend, const float* q, const float* weights, int64_t n_heads,
                                       int64_t head_dim, const float* keys, int64_t n_keys, float* scores);
[[nodiscard]] status indexer_scores_bf16_on(std::string_view backend, const float* q, const float* weights,
                                            int64_t n_heads, int64_t head_dim, const uint16_t* key_lanes,
                                            int64_t n_keys, float* scores);

/// Name of the CPU variant the `fast` attention uses here ("avx512", "avx2" or "reference").
std::string_view attention_backend_name();

} // namespace cachalot

// The compressor's pooling (spec §2.6): each channel of a new compressed entry is the
// softmax-gated sum of that channel over the window's slots. Reference in double (the `exact`
// precision); `fast` in F32 with a polynomial exp, vectorised over channels.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernels/result.h"

namespace cachalot {

/// out[c] = Σ_s softmax_s(b[s][c]) · a[s][c] for c < dim, s < n_slots. a, b: n_slots pointers to
/// dim floats each.
void compress_pool(const float* const* a, const float* const* b, int64_t n_slots, int64_t dim, float* out);
void compress_pool_fast(const float* const* a, const float* const* b, int64_t n_slots, int64_t dim, float* out);

/// compress_pool_fast on one named CPU variant ("avx512", "avx2", "reference"); see
/// attention_with_sink_heads_on in attention.h.
[[nodiscard]] status compress_pool_on(std::string_view backend, const float* const* a, const float* const* b,
                                      int64_t n_slots, int64_t dim, float* out);

} // namespace cachalot

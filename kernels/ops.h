// The kernel operations the engine calls. Each op has a reference implementation (plain loops,
// F32 accumulation, the `exact` precision) and optimised CPU variants picked at run time for
// the `fast` precision. Shapes use T = tokens, R = rows (out features), C = cols (in features).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string_view>

#include "kernels/result.h"
#include "kernels/thread_pool.h"
#include "kernels/weight.h"

namespace cachalot {

enum class precision : uint8_t {
    exact, // F32 activations, weights dequantised exactly
    fast,  // what serving uses: reduced-precision activations where accuracy allows
};

/// y: [T, R] = x: [T, C] · wᵀ. Weights are read in their stored form, row by row, once for all T
/// tokens. Rows are split across the pool; each output element is reduced by one thread in a
/// fixed order, so results do not depend on the number of threads.
void matmul(const weight_view& w, const float* x, int64_t n_tokens, float* y, precision p,
            thread_pool& pool = thread_pool::global());

/// One member of a matmul group: y = x · wᵀ.
struct matmul_task {
    weight_view w;
    const float* x = nullptr;
    float* y = nullptr;
};

/// Independent matmuls over the same number of tokens as one parallel region: their rows are
/// split across the pool together, so a small one neither leaves threads idle nor costs a
/// fork-join of its own (batched decode runs dozens a layer). Every output element is computed
/// exactly as matmul() computes it.
void matmul_group(std::span<const matmul_task> tasks, int64_t n_tokens, precision p,
                  thread_pool& pool = thread_pool::global());

/// A weight repacked for this machine's `fast` CPU kernel, owned; empty where that kernel reads the
/// weight in stored form (other ISAs, FP4 and F32 weights, shapes it does not cover).
struct packed_weight {
    struct free_deleter {
        void operator()(uint8_t* p) const { std::free(p); }
    };
    std::unique_ptr<uint8_t[], free_deleter> bytes;
    size_t size = 0;
    bool empty() const { return size == 0; }
};

/// Repacks w for the `fast` kernel (AVX-512: FP8 and BF16 weights with whole 16-row blocks, in the
/// row-lanes layout of weight_view::lanes); set w.lanes = result.bytes.get() for matmul() to use
/// it. `exact` always reads the stored form. Packed or not, a weight's results are the same for
/// every token count and batch, but the two forms differ in rounding (the order of the sums): a
/// weight should be packed for its whole life or not at all.
[[nodiscard]] packed_weight pack_for_fast(const weight_view& w);

/// Name of the CPU backend `fast` uses on this machine ("avx512", "avx2", "reference").
std::string_view cpu_backend_name();

/// The `fast` matmul on one named CPU backend ("avx512", "avx2", "reference"), whatever
/// cpu_backend_name() picked: for tests and benchmarks. Fails with errc::unsupported when this
/// build or CPU lacks that backend, errc::invalid_argument for an unknown name.
[[nodiscard]] status matmul_on_backend(std::string_view backend, const weight_view& w, const float* x, int64_t n_tokens,
                                       float* y, thread_pool& pool = thread_pool::global());

/// out[i] = x[i] * w[i] / sqrt(mean(x^2) + eps); w may be null (weightless rms).
void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* out);

/// In place over n streams of d floats, x[k] ← post[k]·y + Σ_j comb[j·n + k]·x[j] (j in order):
/// the mixing step of hyper-connections. Per element the same operations in the same order on
/// every ISA clone.
void mix_streams(const float* y, const float* post, const float* comb, int64_t n, int64_t d, float* x);

/// Σ x[i]² in double, with a fixed reduction order (eight partial sums).
double sum_squares(const float* x, int64_t n);

/// Dot product with a fixed reduction order.
float dot_f32(const float* a, const float* b, int64_t n);

} // namespace cachalot

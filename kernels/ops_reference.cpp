// Reference implementations: plain loops with F32 accumulation in a fixed order. They define the
// `exact` precision and are what every optimised variant is tested against.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/ops.h"

namespace cachalot {

// Cloned per ISA: the eight partial sums vectorise into one register on any width, and since
// each lane is its own sequential sum the result is bit-identical on every clone.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
float dot_f32(const float* a, const float* b, int64_t n) {
    // Eight independent partial sums: vectorisable without -ffast-math, still deterministic.
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; ++k) {
            acc[k] += a[i + k] * b[i + k];
        }
    }
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i) {
        s += a[i] * b[i];
    }
    return s;
}

// Cloned like dot_f32: eight double partial sums, so the sum vectorises instead of waiting on
// one long chain of dependent adds, with the same bits on every clone.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
double
sum_squares(const float* x, int64_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; ++k) {
            acc[k] += double(x[i + k]) * double(x[i + k]);
        }
    }
    double ss = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i) {
        ss += double(x[i]) * double(x[i]);
    }
    return ss;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* out) {
    const float r = float(1.0 / std::sqrt(sum_squares(x, n) / double(n) + double(eps)));
    int64_t i = 0;
    if (w) {
        for (i = 0; i < n; ++i) {
            out[i] = x[i] * r * w[i];
        }
    } else {
        for (i = 0; i < n; ++i) {
            out[i] = x[i] * r;
        }
    }
}

// Blocks of 64 elements: the old values of every stream are copied aside per block (the update is
// in place), and each block's loops vectorise at the clone's width.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void mix_streams(const float* y, const float* post, const float* comb, int64_t n, int64_t d, float* x) {
    constexpr int64_t block = 64;
    std::vector<float> heap;
    float stack[16 * block];
    float* old = stack;
    if (n > 16) {
        heap.resize(size_t(n * block));
        old = heap.data();
    }
    for (int64_t i0 = 0; i0 < d; i0 += block) {
        const int64_t m = std::min(block, d - i0);
        for (int64_t j = 0; j < n; ++j) {
            std::memcpy(old + j * block, x + j * d + i0, size_t(m) * sizeof(float));
        }
        for (int64_t k = 0; k < n; ++k) {
            float* out = x + k * d + i0;
            const float pk = post[k];
            for (int64_t i = 0; i < m; ++i) {
                out[i] = pk * y[i0 + i];
            }
            for (int64_t j = 0; j < n; ++j) {
                const float c = comb[j * n + k];
                const float* oj = old + j * block;
                for (int64_t i = 0; i < m; ++i) {
                    out[i] += c * oj[i];
                }
            }
        }
    }
}

void matmul_reference(const weight_view& w, const float* x, int64_t n_tokens, float* y, thread_pool& pool) {
    const int64_t R = w.rows, C = w.cols;
    pool.parallel_for(R, 8, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(C));
        for (int64_t r = r0; r < r1; ++r) {
            dequant_row(w, r, row.data());
            for (int64_t t = 0; t < n_tokens; ++t) {
                y[t * R + r] = dot_f32(row.data(), x + t * C, C);
            }
        }
    });
}

} // namespace cachalot

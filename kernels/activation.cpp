// SwiGLU; see activation.h.
#include "kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace cachalot {

namespace {

void swiglu_exact(const float* g, const float* u, int64_t n, float limit, float* out) {
    for (int64_t i = 0; i < n; ++i) {
        float a = g[i], b = u[i];
        if (limit > 0.0f) {
            a = std::min(a, limit);
            b = std::clamp(b, -limit, limit);
        }
        out[i] = a / (1.0f + std::exp(-a)) * b;
    }
}

// e^x by Cephes' expf reduction and polynomial, written branch-free so that GCC vectorises the
// loop below (each clone at its own width). Inputs are clamped to where e^x is a normal float,
// NaN to the lower bound, so the integer conversion below is always defined.
inline float exp_poly(float x) {
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    // Round to nearest by the 1.5·2^23 trick (|x·log2 e| < 2^22): no libm call in the loop.
    const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = (int32_t(k) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void swiglu_fast(const float* g, const float* u, int64_t n, float limit, float* out) {
    // An infinite limit clamps nothing: one loop serves both cases.
    const float lim = limit > 0.0f ? limit : std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) {
        const float a = std::min(g[i], lim);
        const float b = std::min(std::max(u[i], -lim), lim);
        out[i] = a / (1.0f + exp_poly(-a)) * b;
    }
}

} // namespace

void swiglu(const float* g, const float* u, int64_t n, float limit, float* out, precision p) {
    if (p == precision::fast) {
        swiglu_fast(g, u, n, limit, out);
    } else {
        swiglu_exact(g, u, n, limit, out);
    }
}

} // namespace cachalot

// Rotary embedding; see rotary.h. rotary_rotate is cloned per ISA: each pair is rotated
// independently in double, so every clone gives the same bits.
#include "kernels/rotary.h"

#include <cmath>

namespace cachalot {

void rotary_angles(const double* omega, int64_t n_pairs, int64_t pos, double* cs) {
    for (int64_t i = 0; i < n_pairs; ++i) {
        const double phi = double(pos) * omega[i];
        cs[2 * i] = std::cos(phi);
        cs[2 * i + 1] = std::sin(phi);
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void rotary_rotate(float* v, const double* cs, int64_t n_pairs, bool inverse) {
    const double sign = inverse ? -1.0 : 1.0;
    for (int64_t i = 0; i < n_pairs; ++i) {
        const double c = cs[2 * i], s = sign * cs[2 * i + 1];
        const double x0 = v[2 * i], x1 = v[2 * i + 1];
        v[2 * i] = float(x0 * c - x1 * s);
        v[2 * i + 1] = float(x0 * s + x1 * c);
    }
}

} // namespace cachalot

// Reference compressor pooling; see compress_pool.h. The fast variant lives with the other
// ISA-specific attention kernels and is reached through attention_dispatch.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/compress_pool.h"

namespace cachalot {

void compress_pool(const float* const* a, const float* const* b, int64_t n_slots, int64_t dim, float* out) {
    std::vector<double> gate(static_cast<size_t>(n_slots));
    for (int64_t c = 0; c < dim; ++c) {
        double mx = -INFINITY;
        for (int64_t s = 0; s < n_slots; ++s) {
            gate[size_t(s)] = b[s][c];
            mx = std::max(mx, gate[size_t(s)]);
        }
        double den = 0.0, num = 0.0;
        for (int64_t s = 0; s < n_slots; ++s) {
            double e = std::exp(gate[size_t(s)] - mx);
            den += e;
            num += e * double(a[s][c]);
        }
        out[c] = float(num / den);
    }
}

} // namespace cachalot

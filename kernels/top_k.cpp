// Top-k selection for the lightning indexer; see attention.h.
#include <algorithm>
#include <functional>
#include <numeric>

#include "kernels/attention.h"

namespace cachalot {

void top_k_ascending(const float* scores, int64_t n, int64_t k, std::vector<float>& scratch,
                     std::vector<int32_t>& out) {
    out.clear();
    if (n <= 0 || k <= 0) {
        return;
    }
    if (n <= k) {
        out.resize(static_cast<size_t>(n));
        std::iota(out.begin(), out.end(), 0);
        return;
    }
    // The k-th largest score in O(n), then one pass in index order: everything above it, and as
    // many of the scores equal to it as fit, lowest index first.
    scratch.assign(scores, scores + n);
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
    const float kth = scratch[size_t(k - 1)];
    int64_t above = 0;
    for (int64_t i = 0; i < n; ++i) {
        above += scores[i] > kth;
    }
    int64_t ties_left = k - above;
    out.reserve(static_cast<size_t>(k));
    for (int64_t i = 0; i < n; ++i) {
        if (scores[i] > kth || (scores[i] == kth && ties_left-- > 0)) {
            out.push_back(int32_t(i));
        }
    }
}

} // namespace cachalot

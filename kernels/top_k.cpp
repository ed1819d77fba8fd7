// Top-k selection for the lightning indexer; see attention.h.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>

#include "kernels/attention.h"

namespace cachalot {

namespace {

// Unsigned keys in the order of the floats (not NaN): -0 is keyed as +0, since the two compare
// equal and the selection below must treat them as one value.
inline uint32_t order_key(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    if (b == 0x80000000u) {
        b = 0;
    }
    return (b & 0x80000000u) ? ~b : b | 0x80000000u;
}

inline float key_value(uint32_t key) {
    const uint32_t b = (key & 0x80000000u) ? key & 0x7fffffffu : ~key;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

// The k-th largest of keys[0..n) (1 <= k <= n) by most-significant-digit radix selection: a
// histogram of the top bits, then only the bucket that holds the k-th key goes on to the next
// digit. Branch-free counting passes instead of nth_element's data-dependent partitioning, which
// was the larger part of prefill's top-k time at long contexts.
uint32_t kth_largest_key(std::vector<uint32_t>& keys, int64_t n, int64_t k) {
    constexpr int digit_bits[3] = {11, 11, 10};
    std::array<int64_t, 2048> hist;
    int shift = 32;
    for (int d = 0; d < 3 && n > 64; ++d) {
        shift -= digit_bits[d];
        const uint32_t mask = (1u << digit_bits[d]) - 1;
        hist.fill(0);
        for (int64_t i = 0; i < n; ++i) {
            ++hist[(keys[size_t(i)] >> shift) & mask];
        }
        uint32_t bucket = mask;
        for (;; --bucket) {
            if (hist[bucket] >= k) {
                break;
            }
            k -= hist[bucket];
        }
        // Keep the bucket's keys (all agree on the digits so far) at the front.
        int64_t m = 0;
        for (int64_t i = 0; i < n; ++i) {
            const uint32_t v = keys[size_t(i)];
            keys[size_t(m)] = v;
            m += ((v >> shift) & mask) == bucket;
        }
        n = m;
    }
    std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.begin() + n, std::greater<uint32_t>());
    return keys[size_t(k - 1)];
}

} // namespace

void top_k_ascending(const float* scores, int64_t n, int64_t k, std::vector<uint32_t>& scratch,
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
    scratch.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        scratch[size_t(i)] = order_key(scores[i]);
    }
    const float kth = key_value(kth_largest_key(scratch, n, k));
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

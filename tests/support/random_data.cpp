#include "tests/support/random_data.h"

#include <random>

namespace cachalot::test {

std::vector<float> random_normal(int64_t n, uint32_t seed, float spread) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, spread);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) {
        v = normal(rng);
    }
    return x;
}

} // namespace cachalot::test

// Seeded random test inputs shared by the kernel tests.
#pragma once

#include <cstdint>
#include <vector>

namespace cachalot::test {

/// n values drawn from N(0, spread²) by std::mt19937(seed): the same values on every run.
std::vector<float> random_normal(int64_t n, uint32_t seed, float spread = 1.0f);

} // namespace cachalot::test

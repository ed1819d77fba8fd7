// A random matmul weight with its own storage, for the kernel tests.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/weight.h"

namespace cachalot::test {

/// Random codes of `type` (no NaN codes), E8M0 scales near 1 (2^-7 .. 2^4): FP8 in blocks of
/// scale_rows x scale_cols (128 x 128 unless given), FP4 per 32 columns of a row.
struct test_weight {
    std::vector<uint8_t> data;
    std::vector<uint8_t> scales;
    weight_view view;

    test_weight(dtype type, int64_t rows, int64_t cols, uint32_t seed, int32_t scale_rows = 128,
                int32_t scale_cols = 128);
};

} // namespace cachalot::test

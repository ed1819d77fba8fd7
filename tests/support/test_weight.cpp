#include "tests/support/test_weight.h"

#include <cstring>
#include <random>

#include "kernels/dtype.h"

namespace cachalot::test {

test_weight::test_weight(dtype type, int64_t rows, int64_t cols, uint32_t seed, int32_t scale_rows,
                         int32_t scale_cols) {
    std::mt19937 rng(seed);
    view.type = type;
    view.rows = rows;
    view.cols = cols;
    data.resize(size_t(rows * view.row_bytes()));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    switch (type) {
    case dtype::f32:
        for (int64_t i = 0; i < rows * cols; ++i) {
            float v = normal(rng);
            std::memcpy(&data[size_t(4 * i)], &v, 4);
        }
        break;
    case dtype::bf16:
        for (int64_t i = 0; i < rows * cols; ++i) {
            uint16_t v = f32_to_bf16(normal(rng));
            std::memcpy(&data[size_t(2 * i)], &v, 2);
        }
        break;
    case dtype::f8_e4m3:
        for (auto& b : data) {
            do {
                b = uint8_t(rng());
            } while ((b & 0x7f) == 0x7f);
        }
        view.scale_block_rows = scale_rows;
        view.scale_block_cols = scale_cols;
        view.scale_row_stride = (cols + scale_cols - 1) / scale_cols;
        scales.resize(size_t(((rows + scale_rows - 1) / scale_rows) * view.scale_row_stride));
        break;
    case dtype::fp4_e2m1:
        for (auto& b : data) {
            b = uint8_t(rng());
        }
        view.scale_block_rows = 1;
        view.scale_block_cols = 32;
        view.scale_row_stride = (cols + 31) / 32;
        scales.resize(size_t(rows * view.scale_row_stride));
        break;
    default:
        break;
    }
    for (auto& s : scales) {
        s = uint8_t(120 + rng() % 12); // 2^-7 .. 2^4
    }
    view.data = data.data();
    view.scales = scales.empty() ? nullptr : scales.data();
}

} // namespace cachalot::test

// Exact dequantisation of one stored weight row (spec §1.4).
#include "kernels/weight.h"

#include "kernels/result.h"

namespace cachalot {

void dequant_row(const weight_view& w, int64_t r, float* out) {
    const uint8_t* src = w.row_data(r);
    switch (w.type) {
    case dtype::f32: {
        const float* p = reinterpret_cast<const float*>(src);
        for (int64_t j = 0; j < w.cols; ++j) {
            out[j] = p[j];
        }
        return;
    }
    case dtype::bf16: {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(src);
        for (int64_t j = 0; j < w.cols; ++j) {
            out[j] = bf16_to_f32(p[j]);
        }
        return;
    }
    case dtype::f8_e4m3: {
        const auto& table = e4m3_table();
        const uint8_t* sc = w.row_scales(r);
        for (int64_t j0 = 0; j0 < w.cols; j0 += w.scale_block_cols) {
            float s = sc ? e8m0_to_f32(sc[j0 / w.scale_block_cols]) : 1.0f;
            int64_t j1 = j0 + w.scale_block_cols < w.cols ? j0 + w.scale_block_cols : w.cols;
            for (int64_t j = j0; j < j1; ++j) {
                out[j] = table[src[j]] * s;
            }
        }
        return;
    }
    case dtype::fp4_e2m1: {
        const uint8_t* sc = w.row_scales(r);
        for (int64_t j0 = 0; j0 < w.cols; j0 += w.scale_block_cols) {
            float s = e8m0_to_f32(sc[j0 / w.scale_block_cols]);
            int64_t j1 = j0 + w.scale_block_cols < w.cols ? j0 + w.scale_block_cols : w.cols;
            for (int64_t j = j0; j < j1; j += 2) {
                uint8_t b = src[j / 2];
                out[j] = k_fp4_values[b & 0xf] * s;
                out[j + 1] = k_fp4_values[b >> 4] * s;
            }
        }
        return;
    }
    default:
        CACHALOT_CHECK(false, "dequant_row: not a weight dtype");
    }
}

} // namespace cachalot

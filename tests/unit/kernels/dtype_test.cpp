#include <doctest/doctest.h>

#include <cmath>

#include "kernels/dtype.h"
#include "kernels/weight.h"

using namespace cachalot;

TEST_CASE("e4m3 decodes normals, subnormals, the maximum and NaN") {
    CHECK(e4m3_to_f32(0x00) == 0.0f);
    CHECK(e4m3_to_f32(0x38) == 1.0f);          // e=7, m=0
    CHECK(e4m3_to_f32(0x7e) == 448.0f);        // largest finite
    CHECK(e4m3_to_f32(0x01) == std::ldexp(1.0f / 8, -6));
    CHECK(e4m3_to_f32(0xb8) == -1.0f);
    CHECK(std::isnan(e4m3_to_f32(0x7f)));
    CHECK(std::isnan(e4m3_to_f32(0xff)));
}

TEST_CASE("e4m3 encoding round-trips every finite code") {
    for (int v = 0; v < 256; ++v) {
        if ((v & 0x7f) == 0x7f) {
            continue;
        }
        float f = e4m3_to_f32(uint8_t(v));
        uint8_t back = f32_to_e4m3(f);
        if (f == 0.0f) {
            CHECK(e4m3_to_f32(back) == 0.0f);
        } else {
            CHECK(back == v);
        }
    }
    CHECK(f32_to_e4m3(1000.0f) == 0x7e);
}

TEST_CASE("e8m0 and bf16 conversions are exact") {
    CHECK(e8m0_to_f32(127) == 1.0f);
    CHECK(e8m0_to_f32(130) == 8.0f);
    CHECK(e8m0_to_f32(120) == std::ldexp(1.0f, -7));
    CHECK(std::isnan(e8m0_to_f32(0xff)));
    CHECK(bf16_to_f32(0x3f80) == 1.0f);
    CHECK(f32_to_bf16(1.0f) == 0x3f80);
    CHECK(f32_to_bf16(bf16_to_f32(0x4049)) == 0x4049);
}

TEST_CASE("fp4 rows dequantise low nibble first with one scale per 32 values") {
    uint8_t data[16];
    for (int i = 0; i < 16; ++i) {
        data[i] = uint8_t((i & 0xf) | (((15 - i) & 0xf) << 4));
    }
    uint8_t scale = 128; // 2.0
    weight_view w;
    w.type = dtype::fp4_e2m1;
    w.rows = 1;
    w.cols = 32;
    w.data = data;
    w.scales = &scale;
    w.scale_block_rows = 1;
    w.scale_block_cols = 32;
    w.scale_row_stride = 1;
    float out[32];
    dequant_row(w, 0, out);
    for (int i = 0; i < 16; ++i) {
        CHECK(out[2 * i] == k_fp4_values[size_t(i)] * 2.0f);
        CHECK(out[2 * i + 1] == k_fp4_values[size_t(15 - i)] * 2.0f);
    }
}

// Row slices that start inside a scale block (V4's grouped wo_a when o_lora_rank is not a
// multiple of 128) use the scales of the rows they really are, on every backend.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/ops.h"

using namespace cachalot;

TEST_CASE("matmul on a row slice starting inside a scale block uses that block's scales") {
    const int64_t R = 300, C = 256, T = 3;
    std::vector<uint8_t> q(static_cast<size_t>(R * C)), scales(3 * 2);
    for (size_t i = 0; i < q.size(); ++i) {
        q[i] = uint8_t((i * 29 + 3) % 126);
    }
    for (size_t i = 0; i < scales.size(); ++i) {
        scales[i] = uint8_t(118 + 3 * i); // every block its own power of two
    }
    weight_view w;
    w.type = dtype::f8_e4m3;
    w.rows = R;
    w.cols = C;
    w.data = q.data();
    w.scales = scales.data();
    w.scale_block_rows = 128;
    w.scale_block_cols = 128;
    w.scale_row_stride = 2;
    std::vector<float> x(static_cast<size_t>(T * C));
    for (size_t i = 0; i < x.size(); ++i) {
        x[i] = std::sin(float(i) * 0.37f);
    }
    const int64_t r0 = 96, n = 100; // rows 96..195 straddle blocks 0 and 1
    weight_view slice = w.slice_rows(r0, n);
    // Each backend against itself on the whole tensor: a row's result does not depend on the
    // rows around it, so the slice must reproduce those rows bit for bit.
    for (const char* backend : {"reference", "avx512", "avx2"}) {
        CAPTURE(backend);
        std::vector<float> full(static_cast<size_t>(T * R)), part(static_cast<size_t>(T * n));
        auto s = matmul_on_backend(backend, w, x.data(), T, full.data());
        if (!s.ok()) {
            MESSAGE("backend unavailable here: " << s.err().message);
            continue;
        }
        REQUIRE(matmul_on_backend(backend, slice, x.data(), T, part.data()).ok());
        int64_t mismatches = 0;
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t r = 0; r < n; ++r) {
                mismatches += full[size_t(t * R + r0 + r)] != part[size_t(t * n + r)];
            }
        }
        CHECK(mismatches == 0);
    }
}

// Weights repacked for the `fast` kernel (pack_for_fast, the AVX-512 row-lanes layout): within the
// bf16-activation error bound of the exact reference, bitwise the same for every token count, batch,
// tile and thread count, on row slices of whole blocks, and in matmul groups; and left alone where
// the kernel reads the stored form. Machines without the AVX-512 kernel pack nothing and skip.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/thread_pool.h"
#include "kernels/weight.h"
#include "tests/support/random_data.h"
#include "tests/support/test_weight.h"

using namespace cachalot;

namespace {

// A random weight (tests/support) with its packed copy when the kernel has one.
struct packed_test_weight : test::test_weight {
    packed_weight packed;

    packed_test_weight(dtype type, int64_t rows, int64_t cols, uint32_t seed, int32_t scale_rows = 128,
                       int32_t scale_cols = 128)
        : test_weight(type, rows, cols, seed, scale_rows, scale_cols), packed(pack_for_fast(view)) {
        view.lanes = packed.bytes.get();
    }
};

std::vector<float> random_activations(int64_t n, uint32_t seed) {
    return test::random_normal(n, seed);
}

bool lanes_here() {
    return !packed_test_weight(dtype::bf16, 16, 4, 1).packed.empty();
}

struct lanes_shape {
    dtype type;
    int64_t rows, cols;
};
// Odd widths (padded to whole steps of 4 columns), several scale blocks, one block, many blocks.
const lanes_shape k_lanes_shapes[] = {
    {dtype::f8_e4m3, 16, 4}, {dtype::f8_e4m3, 256, 512}, {dtype::f8_e4m3, 144, 301}, {dtype::f8_e4m3, 48, 2048},
    {dtype::bf16, 32, 6},    {dtype::bf16, 160, 512},    {dtype::bf16, 64, 1001}};

} // namespace

TEST_CASE("pack_for_fast packs FP8 and BF16 weights of whole 16-row blocks, nothing else") {
    if (!lanes_here()) {
        MESSAGE("this machine's fast kernel reads every weight in stored form; skipped");
        return;
    }
    CHECK_FALSE(packed_test_weight(dtype::f8_e4m3, 256, 512, 1).packed.empty());
    CHECK(packed_test_weight(dtype::f8_e4m3, 256, 512, 1).packed.size == 256 * 512);
    CHECK(packed_test_weight(dtype::bf16, 32, 6, 1).packed.size == 32 * 8 * 2);
    CHECK(packed_test_weight(dtype::f8_e4m3, 130, 512, 1).packed.empty());        // rows not whole blocks
    CHECK(packed_test_weight(dtype::f8_e4m3, 64, 512, 1, 8, 128).packed.empty()); // scale rows split blocks
    weight_view f4;
    std::vector<uint8_t> bytes(64 * 16, 0x11), sc(64 * 2, 127);
    f4.type = dtype::fp4_e2m1;
    f4.rows = 64;
    f4.cols = 32;
    f4.data = bytes.data();
    f4.scales = sc.data();
    f4.scale_block_cols = 32;
    f4.scale_row_stride = 1;
    CHECK(pack_for_fast(f4).empty());
    // Slices keep the packed copy only for whole blocks.
    packed_test_weight w(dtype::f8_e4m3, 256, 512, 2);
    CHECK(w.view.slice_rows(128, 64).lanes == w.packed.bytes.get() + 128 * 512);
    CHECK(w.view.slice_rows(8, 64).lanes == nullptr);
    CHECK(w.view.slice_rows(16, 40).lanes == nullptr);
}

TEST_CASE("packed weights stay within the bf16-activation error bound of the exact reference") {
    if (!lanes_here()) {
        return;
    }
    thread_pool pool(2);
    uint32_t seed = 10;
    for (const auto& s : k_lanes_shapes) {
        packed_test_weight w(s.type, s.rows, s.cols, seed++);
        REQUIRE_FALSE(w.packed.empty());
        for (int64_t n_tokens : {1, 2, 5, 16, 17, 40}) {
            CAPTURE(dtype_name(s.type));
            CAPTURE(s.rows);
            CAPTURE(s.cols);
            CAPTURE(n_tokens);
            auto x = random_activations(n_tokens * s.cols, seed++);
            std::vector<float> want(size_t(n_tokens * s.rows)), got(want.size(), NAN);
            matmul(w.view, x.data(), n_tokens, want.data(), precision::exact, pool);
            matmul(w.view, x.data(), n_tokens, got.data(), precision::fast, pool);
            // Per element against a double sum over bf16(x): the F32 summation bound.
            std::vector<float> row(static_cast<size_t>(s.cols));
            int bad = 0;
            for (int64_t r = 0; r < s.rows; ++r) {
                dequant_row(w.view, r, row.data());
                for (int64_t t = 0; t < n_tokens; ++t) {
                    double sum = 0, abs_sum = 0;
                    for (int64_t c = 0; c < s.cols; ++c) {
                        const double xr = bf16_to_f32(f32_to_bf16(x[size_t(t * s.cols + c)]));
                        sum += double(row[size_t(c)]) * xr;
                        abs_sum += std::fabs(double(row[size_t(c)]) * xr);
                    }
                    const double bound = 2.0 * double(s.cols + 1) * std::ldexp(1.0, -24) * abs_sum + 1e-30;
                    bad += !(std::fabs(double(got[size_t(t * s.rows + r)]) - sum) <= bound);
                }
            }
            CHECK(bad == 0);
        }
    }
}

TEST_CASE("packed weights give bitwise the same results for any token count, batch, slice and thread count") {
    if (!lanes_here()) {
        return;
    }
    thread_pool p1(1), p2(2), p4(4);
    uint32_t seed = 100;
    for (const auto& s : k_lanes_shapes) {
        packed_test_weight w(s.type, s.rows, s.cols, seed++);
        const int64_t n = 37; // two full tiles of 16 and a partial one
        auto x = random_activations(n * s.cols, seed++);
        CAPTURE(dtype_name(s.type));
        CAPTURE(s.rows);
        CAPTURE(s.cols);
        std::vector<float> y1(size_t(n * s.rows)), y2(y1.size()), y4(y1.size());
        matmul(w.view, x.data(), n, y1.data(), precision::fast, p1);
        matmul(w.view, x.data(), n, y2.data(), precision::fast, p2);
        matmul(w.view, x.data(), n, y4.data(), precision::fast, p4);
        CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0);
        CHECK(std::memcmp(y1.data(), y4.data(), y1.size() * 4) == 0);
        for (int64_t batch : {1, 2, 3, 4, 7, 9, 16}) {
            CAPTURE(batch);
            std::vector<float> yb(y1.size(), NAN);
            for (int64_t t = 0; t < n; t += batch) {
                const int64_t m = std::min(batch, n - t);
                matmul(w.view, x.data() + t * s.cols, m, yb.data() + t * s.rows, precision::fast, p2);
            }
            CHECK(std::memcmp(y1.data(), yb.data(), y1.size() * 4) == 0);
        }
        // A slice of whole blocks computes its rows exactly as the full weight does.
        if (s.rows >= 48) {
            const weight_view sl = w.view.slice_rows(16, 32);
            REQUIRE(sl.lanes != nullptr);
            std::vector<float> ys(size_t(n * 32));
            matmul(sl, x.data(), n, ys.data(), precision::fast, p2);
            for (int64_t t = 0; t < n; ++t) {
                CHECK(std::memcmp(ys.data() + t * 32, y1.data() + t * s.rows + 16, 32 * 4) == 0);
            }
        }
    }
}

TEST_CASE("matmul groups mixing packed and stored-form weights compute each member as matmul does") {
    if (!lanes_here()) {
        return;
    }
    thread_pool pool(2);
    packed_test_weight a(dtype::f8_e4m3, 256, 512, 7), b(dtype::bf16, 64, 512, 8);
    weight_view plain = a.view;
    plain.lanes = nullptr; // the same x, packed two ways in one group
    const weight_view views[] = {a.view, b.view, plain, a.view.slice_rows(32, 64)};
    for (int64_t n_tokens : {1, 4, 16, 20}) {
        CAPTURE(n_tokens);
        auto x = random_activations(n_tokens * 512, 9);
        std::vector<std::vector<float>> want, got;
        std::vector<matmul_task> tasks;
        for (const weight_view& w : views) {
            want.emplace_back(size_t(n_tokens * w.rows));
            got.emplace_back(size_t(n_tokens * w.rows), NAN);
            matmul(w, x.data(), n_tokens, want.back().data(), precision::fast, pool);
        }
        for (size_t i = 0; i < std::size(views); ++i) {
            tasks.push_back({views[i], x.data(), got[i].data()});
        }
        matmul_group(tasks, n_tokens, precision::fast, pool);
        for (size_t i = 0; i < std::size(views); ++i) {
            CHECK(std::memcmp(want[i].data(), got[i].data(), want[i].size() * 4) == 0);
        }
    }
}

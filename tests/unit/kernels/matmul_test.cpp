// The `fast` matmul against the exact reference, on every CPU backend this machine runs, for every
// weight type, odd shapes and token counts: error bounds, bitwise reproducibility across thread
// counts and batch sizes, and NaN propagation. Speed is measured by bench/matmul_bench.cpp, not here.
//
// Error bounds. Fast decodes weights exactly and rounds activations to BF16 (round-to-nearest-even,
// relative error |d| <= u = 2^-9, close to uniform, so E[d^2] ~ u^2/3 = 1.3e-6). For a dot product
// of terms with random signs the normalised error E[(sum w x d)^2] / E[(sum w x)^2] is then also
// ~1.3e-6; F32 accumulation adds ~C * 2^-48, negligible. We assert NMSE <= 2e-5 (15x margin, far
// inside the 1e-4 the model tolerates). A second, per-element check pins down the decode: against
// a double-precision sum of w * bf16(x), each output must agree within 2 * C * 2^-24 * sum|w x|
// (the worst-case F32 summation error), which a wrong scale, nibble or column order breaks.
// F32 weights keep F32 activations, so their per-element check uses x unrounded.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/thread_pool.h"
#include "kernels/weight.h"
#include "tests/support/random_data.h"
#include "tests/support/test_weight.h"

using namespace cachalot;

namespace {

using test::test_weight;

std::vector<float> random_activations(int64_t n, uint32_t seed) {
    return test::random_normal(n, seed);
}

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        double d = double(got[i]) - double(want[i]);
        num += d * d;
        den += double(want[i]) * double(want[i]);
    }
    return den > 0 ? num / den : num;
}

// Counts outputs outside the F32 summation bound around sum_c w * bf16(x) in double.
int count_outside_bound(const weight_view& w, const std::vector<float>& x, int64_t n_tokens,
                        const std::vector<float>& y) {
    const bool round_x = w.type != dtype::f32;
    std::vector<float> row(static_cast<size_t>(w.cols));
    int bad = 0;
    for (int64_t r = 0; r < w.rows; ++r) {
        dequant_row(w, r, row.data());
        for (int64_t t = 0; t < n_tokens; ++t) {
            double sum = 0, abs_sum = 0;
            for (int64_t c = 0; c < w.cols; ++c) {
                float xv = x[size_t(t * w.cols + c)];
                double xr = round_x ? double(bf16_to_f32(f32_to_bf16(xv))) : double(xv);
                sum += double(row[size_t(c)]) * xr;
                abs_sum += std::fabs(double(row[size_t(c)]) * xr);
            }
            double bound = 2.0 * double(w.cols + 1) * std::ldexp(1.0, -24) * abs_sum + 1e-30;
            double got = y[size_t(t * w.rows + r)];
            if (!(std::fabs(got - sum) <= bound)) {
                if (bad < 3) {
                    MESSAGE("r=" << r << " t=" << t << " got " << got << " want " << sum << " bound " << bound);
                }
                ++bad;
            }
        }
    }
    return bad;
}

struct shape {
    dtype type;
    int64_t rows, cols;
};

const shape k_shapes[] = {
    {dtype::f8_e4m3, 37, 200}, {dtype::f8_e4m3, 128, 256}, {dtype::f8_e4m3, 130, 1100}, {dtype::f8_e4m3, 3, 64},
    {dtype::fp4_e2m1, 37, 96}, {dtype::fp4_e2m1, 64, 512}, {dtype::fp4_e2m1, 129, 544}, {dtype::fp4_e2m1, 5, 32},
    {dtype::bf16, 37, 200},    {dtype::bf16, 64, 1000},    {dtype::bf16, 5, 31},        {dtype::bf16, 70, 512},
    {dtype::f32, 24, 300},     {dtype::f32, 7, 5},         {dtype::f32, 33, 1030},      {dtype::f32, 24, 2048},
    {dtype::f32, 70, 64},
};

const char* const k_backends[] = {"avx512", "avx2"};

bool backend_runs(const char* name) {
    test_weight w(dtype::bf16, 1, 2, 1);
    float x[2] = {1, 1}, y[1];
    thread_pool pool(1);
    return matmul_on_backend(name, w.view, x, 1, y, pool).ok();
}

} // namespace

TEST_CASE("fast matmul stays within the bf16-activation error bound of the exact reference") {
    thread_pool pool(2);
    for (const char* backend : k_backends) {
        if (!backend_runs(backend)) {
            MESSAGE("backend " << backend << " does not run on this machine; skipped");
            continue;
        }
        uint32_t seed = 1;
        for (const shape& s : k_shapes) {
            test_weight w(s.type, s.rows, s.cols, seed++);
            for (int64_t n_tokens : {1, 3, 16, 65}) {
                CAPTURE(backend);
                CAPTURE(dtype_name(s.type));
                CAPTURE(s.rows);
                CAPTURE(s.cols);
                CAPTURE(n_tokens);
                auto x = random_activations(n_tokens * s.cols, seed++);
                std::vector<float> want(size_t(n_tokens * s.rows)), got(want.size(), -1.0f);
                matmul(w.view, x.data(), n_tokens, want.data(), precision::exact, pool);
                REQUIRE(matmul_on_backend(backend, w.view, x.data(), n_tokens, got.data(), pool).ok());
                double e = nmse(got, want);
                CHECK(e <= (s.type == dtype::f32 ? 1e-10 : 2e-5));
                CHECK(count_outside_bound(w.view, x, n_tokens, got) == 0);
            }
        }
    }
}

TEST_CASE("fast matmul gives bitwise the same results on 1, 2 and 4 threads and in any batch") {
    thread_pool p1(1), p2(2), p4(4);
    for (const char* backend : k_backends) {
        if (!backend_runs(backend)) {
            continue;
        }
        uint32_t seed = 100;
        for (const shape& s : k_shapes) {
            test_weight w(s.type, s.rows, s.cols, seed++);
            const int64_t n_tokens = 13;
            auto x = random_activations(n_tokens * s.cols, seed++);
            std::vector<float> y1(size_t(n_tokens * s.rows)), y2(y1.size()), y4(y1.size()), y_one(y1.size());
            CAPTURE(backend);
            CAPTURE(dtype_name(s.type));
            CAPTURE(s.rows);
            REQUIRE(matmul_on_backend(backend, w.view, x.data(), n_tokens, y1.data(), p1).ok());
            REQUIRE(matmul_on_backend(backend, w.view, x.data(), n_tokens, y2.data(), p2).ok());
            REQUIRE(matmul_on_backend(backend, w.view, x.data(), n_tokens, y4.data(), p4).ok());
            CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0);
            CHECK(std::memcmp(y1.data(), y4.data(), y1.size() * 4) == 0);
            // Token by token: other tile shapes, same numbers.
            for (int64_t t = 0; t < n_tokens; ++t) {
                REQUIRE(
                    matmul_on_backend(backend, w.view, x.data() + t * s.cols, 1, y_one.data() + t * s.rows, p2).ok());
            }
            CHECK(std::memcmp(y1.data(), y_one.data(), y1.size() * 4) == 0);
            // In batches of 2, 3 and 4 tokens (the fused decode-and-dot path): same numbers.
            for (int64_t batch : {2, 3, 4}) {
                CAPTURE(batch);
                std::vector<float> y_batched(y1.size());
                for (int64_t t = 0; t < n_tokens; t += batch) {
                    const int64_t m = std::min(batch, n_tokens - t);
                    REQUIRE(
                        matmul_on_backend(backend, w.view, x.data() + t * s.cols, m, y_batched.data() + t * s.rows, p2)
                            .ok());
                }
                CHECK(std::memcmp(y1.data(), y_batched.data(), y1.size() * 4) == 0);
            }
        }
    }
}

TEST_CASE("fast matmul propagates NaN weight codes and NaN scales to the rows they touch") {
    thread_pool pool(2);
    for (const char* backend : k_backends) {
        if (!backend_runs(backend)) {
            continue;
        }
        test_weight f8(dtype::f8_e4m3, 130, 200, 7);
        f8.data[size_t(5 * 200 + 150)] = 0x7f; // row 5
        f8.scales[1] = 0xff;                   // rows 0..127, cols 128..199
        test_weight f4(dtype::fp4_e2m1, 10, 64, 8);
        f4.scales[size_t(3 * f4.view.scale_row_stride + 1)] = 0xff; // row 3
        auto x = random_activations(2 * 200, 9);
        std::vector<float> y(2 * 130);
        REQUIRE(matmul_on_backend(backend, f8.view, x.data(), 2, y.data(), pool).ok());
        for (int64_t t = 0; t < 2; ++t) {
            for (int64_t r = 0; r < 130; ++r) {
                CHECK(std::isnan(y[size_t(t * 130 + r)]) == (r < 128));
            }
        }
        std::vector<float> y4(2 * 10);
        REQUIRE(matmul_on_backend(backend, f4.view, x.data(), 2, y4.data(), pool).ok());
        for (int64_t r = 0; r < 10; ++r) {
            CHECK(std::isnan(y4[size_t(r)]) == (r == 3));
        }
    }
}

TEST_CASE("fast matmul runs the backend it names and exact precision keeps the reference numbers") {
    std::string_view name = cpu_backend_name();
    const cpu_features& f = host_cpu_features();
    bool avx512 = f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512bf16 && f.avx512vbmi;
    CHECK(name == (avx512 ? "avx512" : f.avx2 && f.fma ? "avx2" : "reference"));
    CHECK(matmul_on_backend("no-such-backend", test_weight(dtype::f32, 1, 1, 1).view, nullptr, 0, nullptr).err().code ==
          errc::invalid_argument);

    thread_pool pool(2);
    test_weight w(dtype::f8_e4m3, 40, 300, 11);
    auto x = random_activations(3 * 300, 12);
    std::vector<float> exact(3 * 40), ref(3 * 40);
    matmul(w.view, x.data(), 3, exact.data(), precision::exact, pool);
    REQUIRE(matmul_on_backend("reference", w.view, x.data(), 3, ref.data(), pool).ok());
    CHECK(std::memcmp(exact.data(), ref.data(), exact.size() * 4) == 0);
}

TEST_CASE("matmul_group computes every member exactly as matmul does, in both precisions") {
    thread_pool pool(2);
    // Mixed types and sizes, one row slice, and an FP4 width the kernels leave to the reference.
    test_weight a(dtype::f8_e4m3, 130, 256, 41), b(dtype::fp4_e2m1, 64, 512, 42), c(dtype::bf16, 8, 512, 43),
        d(dtype::f32, 24, 300, 44), e(dtype::fp4_e2m1, 5, 30, 45);
    const weight_view views[] = {a.view, b.view, c.view, d.view, e.view, a.view.slice_rows(7, 50)};
    for (precision p : {precision::exact, precision::fast}) {
        for (int64_t n_tokens : {1, 4, 16}) {
            CAPTURE(n_tokens);
            std::vector<std::vector<float>> xs, want, got;
            std::vector<matmul_task> tasks;
            uint32_t seed = 500;
            xs.reserve(std::size(views));
            for (const weight_view& w : views) {
                xs.push_back(random_activations(n_tokens * w.cols, seed++));
                want.emplace_back(size_t(n_tokens * w.rows));
                got.emplace_back(size_t(n_tokens * w.rows), -1.0f);
            }
            for (size_t i = 0; i < std::size(views); ++i) {
                // The slice reads the first member's x: the group packs it once for both.
                const float* x = i + 1 == std::size(views) ? xs[0].data() : xs[i].data();
                matmul(views[i], x, n_tokens, want[i].data(), p, pool);
                tasks.push_back({views[i], x, got[i].data()});
            }
            matmul_group(tasks, n_tokens, p, pool);
            for (size_t i = 0; i < std::size(views); ++i) {
                CAPTURE(i);
                CHECK(std::memcmp(want[i].data(), got[i].data(), want[i].size() * 4) == 0);
            }
        }
    }
}

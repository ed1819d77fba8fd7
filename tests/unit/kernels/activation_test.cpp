// SwiGLU: the fast variant against the exact one, the clamps, and edge values.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/activation.h"

using namespace cachalot;

TEST_CASE("fast swiglu matches the exact one to a few ulp, with and without the clamp") {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> d(-30.0f, 30.0f);
    const int64_t n = 1037; // not a multiple of any vector width
    std::vector<float> g(n), u(n);
    for (int64_t i = 0; i < n; ++i) {
        g[size_t(i)] = d(rng);
        u[size_t(i)] = d(rng);
    }
    for (float limit : {10.0f, 0.0f}) {
        CAPTURE(limit);
        std::vector<float> want(n), got(n);
        swiglu(g.data(), u.data(), n, limit, want.data(), precision::exact);
        swiglu(g.data(), u.data(), n, limit, got.data(), precision::fast);
        for (int64_t i = 0; i < n; ++i) {
            CAPTURE(g[size_t(i)]);
            CAPTURE(u[size_t(i)]);
            const float w = want[size_t(i)];
            CHECK(std::fabs(got[size_t(i)] - w) <= 4e-7f * std::fabs(w) + 1e-30f);
        }
    }
}

TEST_CASE("swiglu clamps gate from above and up both ways, in both precisions") {
    const float g[] = {50.0f, -50.0f, 0.0f, 3.0f};
    const float u[] = {50.0f, -50.0f, 7.0f, -20.0f};
    for (precision p : {precision::exact, precision::fast}) {
        float out[4];
        swiglu(g, u, 4, 10.0f, out, p);
        const float silu10 = 10.0f / (1.0f + std::exp(-10.0f));
        CHECK(out[0] == doctest::Approx(silu10 * 10.0f).epsilon(1e-6));
        CHECK(std::fabs(out[1]) < 1e-18f); // silu(−50) ≈ −1e−20
        CHECK(out[2] == 0.0f);
        CHECK(out[3] == doctest::Approx(3.0f / (1.0f + std::exp(-3.0f)) * -10.0f).epsilon(1e-6));
    }
}

TEST_CASE("swiglu propagates NaN and works in place") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (precision p : {precision::exact, precision::fast}) {
        float g[] = {nan, 1.0f, 2.0f};
        const float u[] = {1.0f, nan, 0.5f};
        swiglu(g, u, 3, 10.0f, g, p);
        CHECK(std::isnan(g[0]));
        CHECK(std::isnan(g[1]));
        CHECK(g[2] == doctest::Approx(2.0f / (1.0f + std::exp(-2.0f)) * 0.5f).epsilon(1e-6));
    }
}

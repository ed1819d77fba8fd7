// Sinkhorn: the result is close to doubly stochastic (columns to eps, rows to the convergence of
// 20 iterations), and one iteration is the row softmax followed by one column pass.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/sinkhorn.h"

using namespace cachalot;

TEST_CASE("sinkhorn makes the mixing matrix doubly stochastic") {
    std::mt19937 rng(2);
    std::normal_distribution<double> dist(0.0, 1.0);
    for (int64_t n : {1, 3, 4, 6}) {
        std::vector<double> C(size_t(n * n));
        for (auto& v : C) {
            v = dist(rng);
        }
        sinkhorn(C.data(), n, 20, 1e-6);
        for (int64_t j = 0; j < n; ++j) {
            double row = 0.0, col = 0.0;
            for (int64_t k = 0; k < n; ++k) {
                row += C[size_t(j * n + k)];
                col += C[size_t(k * n + j)];
                CHECK(C[size_t(j * n + k)] > 0.0);
            }
            CHECK(row == doctest::Approx(1.0).epsilon(1e-2)); // the last pass is a column pass
            CHECK(col == doctest::Approx(1.0).epsilon(1e-4));
        }
    }
}

TEST_CASE("one sinkhorn iteration is the row softmax plus eps, then a column pass") {
    const double eps = 1e-6;
    std::vector<double> C = {0.0, 1.0, 2.0, -1.0};
    sinkhorn(C.data(), 2, 1, eps);
    auto soft = [&](double a, double b) {
        return std::exp(a - std::max(a, b)) / (std::exp(a - std::max(a, b)) + std::exp(b - std::max(a, b))) + eps;
    };
    double r00 = soft(0.0, 1.0), r01 = soft(1.0, 0.0), r10 = soft(2.0, -1.0), r11 = soft(-1.0, 2.0);
    CHECK(C[0] == doctest::Approx(r00 / (r00 + r10 + eps)));
    CHECK(C[2] == doctest::Approx(r10 / (r00 + r10 + eps)));
    CHECK(C[1] == doctest::Approx(r01 / (r01 + r11 + eps)));
    CHECK(C[3] == doctest::Approx(r11 / (r01 + r11 + eps)));
}

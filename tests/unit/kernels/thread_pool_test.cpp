#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
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

TEST_CASE("thread pool honours max_chunk and still covers every index once") {
    thread_pool pool(2);
    std::vector<std::atomic<int>> hits(50);
    std::atomic<int64_t> widest{0};
    pool.parallel_for(
        50, 1,
        [&](int64_t b, int64_t e) {
            int64_t w = widest.load();
            while (e - b > w && !widest.compare_exchange_weak(w, e - b)) {
            }
            for (int64_t i = b; i < e; ++i) {
                hits[size_t(i)]++;
            }
        },
        /*max_chunk=*/1);
    for (auto& h : hits) {
        CHECK(h.load() == 1);
    }
    CHECK(widest.load() == 1);
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

TEST_CASE("dot_f32 on this machine's ISA clone gives the bits of the plain eight-lane order") {
    // The reference kernels are cloned per ISA; exact results must not depend on the clone.
    auto plain = [](const float* a, const float* b, int64_t n) {
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            for (int k = 0; k < 8; ++k) {
                volatile float prod = a[i + k] * b[i + k]; // no fused multiply-add
                acc[k] += prod;
            }
        }
        float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (; i < n; ++i) {
            volatile float prod = a[i] * b[i];
            s += prod;
        }
        return s;
    };
    uint32_t seed = 7;
    auto next = [&] {
        seed = seed * 1664525u + 1013904223u;
        return float(int32_t(seed >> 8) % 20001 - 10000) / 3333.0f;
    };
    int mismatches = 0;
    for (int t = 0; t < 500; ++t) {
        int64_t n = 1 + int64_t(seed % 1500);
        std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            a[size_t(i)] = next();
            b[size_t(i)] = next();
        }
        mismatches += dot_f32(a.data(), b.data(), n) != plain(a.data(), b.data(), n);
    }
    CHECK(mismatches == 0);
}

TEST_CASE("mix_streams on this machine's ISA clone gives the bits of the plain per-element order") {
    auto plain = [](const float* y, const float* post, const float* comb, int64_t n, int64_t d, float* x) {
        std::vector<float> old(x, x + n * d);
        for (int64_t k = 0; k < n; ++k) {
            for (int64_t i = 0; i < d; ++i) {
                float v = post[k] * y[i];
                for (int64_t j = 0; j < n; ++j) {
                    volatile float prod = comb[j * n + k] * old[size_t(j * d + i)]; // no fused multiply-add
                    v += prod;
                }
                x[k * d + i] = v;
            }
        }
    };
    uint32_t seed = 11;
    auto next = [&] {
        seed = seed * 1664525u + 1013904223u;
        return float(int32_t(seed >> 8) % 20001 - 10000) / 3333.0f;
    };
    // Hyper-connection widths around V4's 4 (and past the 16 streams kept on the stack), widths
    // that are and are not multiples of the block.
    for (int64_t n : {1, 4, 5, 17}) {
        for (int64_t d : {7, 64, 100, 512}) {
            CAPTURE(n);
            CAPTURE(d);
            std::vector<float> y(static_cast<size_t>(d)), post(static_cast<size_t>(n)),
                comb(static_cast<size_t>(n * n)), x(static_cast<size_t>(n * d));
            for (auto* v : {&y, &post, &comb, &x}) {
                for (float& f : *v) {
                    f = next();
                }
            }
            std::vector<float> want = x;
            plain(y.data(), post.data(), comb.data(), n, d, want.data());
            mix_streams(y.data(), post.data(), comb.data(), n, d, x.data());
            CHECK(std::memcmp(want.data(), x.data(), x.size() * sizeof(float)) == 0);
        }
    }
}

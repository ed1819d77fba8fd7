// cachalot-matmul-bench: times the exact reference matmul against the `fast` CPU backends on
// model-like weights (an FP8 [4096 x 4096] projection with 128x128 block scales, an FP4 expert
// [2048 x 4096] with 1x32 scales) for 1, 16, 64 and 512 tokens, and prints min/median wall time,
// GB/s of stored weight bytes and GFLOP/s, one line per case. It checks nothing; the tests do.
// The machine is shared and noisy: compare rows of one run, not runs.
//
// usage: cachalot-matmul-bench [--threads N] [--reps N] [--tokens 1,16,64,512] [--no-reference]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/thread_pool.h"
#include "kernels/weight.h"

using namespace cachalot;

namespace {

struct bench_weight {
    std::string label;
    std::vector<uint8_t> data;
    std::vector<uint8_t> scales;
    weight_view view;
};

bench_weight make_weight(dtype type, int64_t rows, int64_t cols) {
    bench_weight b;
    std::mt19937 rng(42);
    b.view.type = type;
    b.view.rows = rows;
    b.view.cols = cols;
    b.data.resize(size_t(rows * b.view.row_bytes()));
    for (auto& v : b.data) {
        v = uint8_t(rng());
        if (type == dtype::f8_e4m3 && (v & 0x7f) == 0x7f) {
            v = 0x3f;
        }
    }
    if (type == dtype::f8_e4m3) {
        b.view.scale_block_rows = 128;
        b.view.scale_block_cols = 128;
        b.view.scale_row_stride = (cols + 127) / 128;
        b.scales.resize(size_t((rows + 127) / 128 * b.view.scale_row_stride));
        b.label = "fp8 " + std::to_string(rows) + "x" + std::to_string(cols);
    } else {
        b.view.scale_block_rows = 1;
        b.view.scale_block_cols = 32;
        b.view.scale_row_stride = cols / 32;
        b.scales.resize(size_t(rows * b.view.scale_row_stride));
        b.label = "fp4 " + std::to_string(rows) + "x" + std::to_string(cols);
    }
    for (auto& s : b.scales) {
        s = uint8_t(118 + rng() % 8);
    }
    b.view.data = b.data.data();
    b.view.scales = b.scales.data();
    return b;
}

struct timing {
    double min_s = 0;
    double median_s = 0;
    double min_cpu_s = 0; // process CPU time: on a crowded machine, what the kernel itself costs
};

template <class Fn>
timing time_it(int reps, Fn fn) {
    fn(); // warm caches, tables and the pool
    std::vector<double> t, cpu;
    for (int i = 0; i < reps; ++i) {
        std::clock_t c0 = std::clock();
        auto a = std::chrono::steady_clock::now();
        fn();
        auto b = std::chrono::steady_clock::now();
        std::clock_t c1 = std::clock();
        t.push_back(std::chrono::duration<double>(b - a).count());
        cpu.push_back(double(c1 - c0) / CLOCKS_PER_SEC);
    }
    std::sort(t.begin(), t.end());
    return {t.front(), t[t.size() / 2], *std::min_element(cpu.begin(), cpu.end())};
}

} // namespace

int main(int argc, char** argv) {
    int threads = 0, reps = 7;
    bool reference = true;
    std::vector<int64_t> tokens = {1, 16, 64, 512};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc) {
            threads = std::atoi(argv[++i]);
        } else if (a == "--reps" && i + 1 < argc) {
            reps = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--tokens" && i + 1 < argc) {
            tokens.clear();
            for (char* p = std::strtok(argv[++i], ","); p; p = std::strtok(nullptr, ",")) {
                tokens.push_back(std::max<int64_t>(1, std::atoll(p)));
            }
        } else if (a == "--no-reference") {
            reference = false;
        } else {
            std::fprintf(stderr, "cachalot-matmul-bench: unknown argument '%s'\n"
                                 "usage: cachalot-matmul-bench [--threads N] [--reps N] [--tokens 1,16,64,512] "
                                 "[--no-reference]\n",
                         a.c_str());
            return 2;
        }
    }
    thread_pool pool(threads);
    std::fprintf(stderr, "threads=%d fast backend=%.*s\n", pool.size(), int(cpu_backend_name().size()),
                 cpu_backend_name().data());

    std::vector<bench_weight> weights;
    weights.push_back(make_weight(dtype::f8_e4m3, 4096, 4096));
    weights.push_back(make_weight(dtype::fp4_e2m1, 2048, 4096));

    // GB/s and GFLOP/s come from the minimum wall time; the last column divides by CPU time instead.
    std::printf("%-14s %6s %-10s %10s %10s %9s %9s %8s %12s\n", "weight", "tokens", "backend", "min_ms", "median_ms",
                "GB/s", "GFLOP/s", "cpu_ms", "GFLOP/cpu-s");
    for (const auto& w : weights) {
        const double bytes = double(w.data.size() + w.scales.size());
        for (int64_t n : tokens) {
            std::vector<float> x(size_t(n * w.view.cols)), y(size_t(n * w.view.rows));
            std::mt19937 rng(7);
            std::normal_distribution<float> normal(0.0f, 1.0f);
            for (auto& v : x) {
                v = normal(rng);
            }
            const double flops = 2.0 * double(w.view.rows) * double(w.view.cols) * double(n);
            std::vector<std::string> backends = {"avx512", "avx2"};
            if (reference) {
                backends.insert(backends.begin(), "reference");
            }
            for (const auto& b : backends) {
                // The scalar reference is slow: fewer repetitions as the work grows.
                int r = b == "reference" ? std::max(1, std::min(reps, int(64 / n))) : reps;
                bool ok = true;
                timing t = time_it(r, [&] { ok = matmul_on_backend(b, w.view, x.data(), n, y.data(), pool).ok(); });
                if (!ok) {
                    continue;
                }
                std::printf("%-14s %6lld %-10s %10.3f %10.3f %9.2f %9.1f %8.2f %12.1f\n", w.label.c_str(), (long long)n,
                            b.c_str(), t.min_s * 1e3, t.median_s * 1e3, bytes / t.min_s * 1e-9, flops / t.min_s * 1e-9,
                            t.min_cpu_s * 1e3, flops / std::max(t.min_cpu_s, 1e-6) * 1e-9);
                std::fflush(stdout);
            }
        }
    }
    return 0;
}

// cachalot-matmul-bench: times the exact reference matmul against the `fast` CPU backends on
// model-like weights (an FP8 [4096 x 4096] projection with 128x128 block scales, an FP4 expert
// [2048 x 4096] with 1x32 scales, and FP8 matrices of bench-v4's attention shapes) for 1, 16, 64
// and 512 tokens, with FP8/BF16 weights packed as `fast` packs them at load ("avx512") and in
// stored form ("avx512-stored"), and prints min/median wall time,
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
#if defined(__x86_64__)
#include <immintrin.h>
#endif
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

// ---- --machine: bandwidth and instruction peaks ---------------------------------------------------

#if defined(__x86_64__)

// XOR of every 64-byte line in [p, p + n): loads only, nothing the compiler can drop.
__attribute__((target("avx512f"))) uint64_t read_lines_avx512(const uint8_t* p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a = _mm512_xor_si512(a, _mm512_load_si512(p + i));
        b = _mm512_xor_si512(b, _mm512_load_si512(p + i + 64));
        c = _mm512_xor_si512(c, _mm512_load_si512(p + i + 128));
        d = _mm512_xor_si512(d, _mm512_load_si512(p + i + 192));
    }
    uint64_t lanes[8];
    _mm512_storeu_si512(lanes, _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d)));
    return lanes[0] ^ lanes[7];
}

uint64_t read_lines_scalar(const uint8_t* p, size_t n) {
    uint64_t acc[8] = {};
    for (size_t i = 0; i + 64 <= n; i += 64) {
        for (int k = 0; k < 8; ++k) {
            uint64_t v;
            std::memcpy(&v, p + i + 8 * k, 8);
            acc[k] ^= v;
        }
    }
    return acc[0] ^ acc[1] ^ acc[2] ^ acc[3] ^ acc[4] ^ acc[5] ^ acc[6] ^ acc[7];
}

double read_bandwidth(const std::vector<uint8_t*>& chunks, size_t chunk_bytes, int threads, thread_pool& pool,
                      int reps) {
    const bool wide = __builtin_cpu_supports("avx512f");
    std::vector<uint64_t> sink(chunks.size());
    thread_pool one(1);
    thread_pool& use = threads == 1 ? one : pool;
    timing t = time_it(reps, [&] {
        use.parallel_for(int64_t(chunks.size()), 1, [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
                sink[size_t(c)] = wide ? read_lines_avx512(chunks[size_t(c)], chunk_bytes)
                                       : read_lines_scalar(chunks[size_t(c)], chunk_bytes);
            }
        });
    });
    volatile uint64_t keep = sink[0];
    (void)keep;
    return double(chunks.size() * chunk_bytes) / t.min_s * 1e-9;
}

// Sixteen independent chains of one instruction in hand-written assembly, so throughput, not
// latency, is what is timed (the compiler's register copies around these destructive instructions
// measured up to half the true rate for vpdpbusd). Each loop trip issues 16 instructions.
constexpr int64_t k_peak_trips = 20'000'000;
#define CACHALOT_X16(op)                                                                                               \
    op " %%zmm0, %%zmm1, %%zmm2\n" op " %%zmm0, %%zmm1, %%zmm3\n" op " %%zmm0, %%zmm1, %%zmm4\n" op                    \
       " %%zmm0, %%zmm1, %%zmm5\n" op " %%zmm0, %%zmm1, %%zmm6\n" op " %%zmm0, %%zmm1, %%zmm7\n" op                    \
       " %%zmm0, %%zmm1, %%zmm8\n" op " %%zmm0, %%zmm1, %%zmm9\n" op " %%zmm0, %%zmm1, %%zmm10\n" op                   \
       " %%zmm0, %%zmm1, %%zmm11\n" op " %%zmm0, %%zmm1, %%zmm12\n" op " %%zmm0, %%zmm1, %%zmm13\n" op                 \
       " %%zmm0, %%zmm1, %%zmm14\n" op " %%zmm0, %%zmm1, %%zmm15\n" op " %%zmm0, %%zmm1, %%zmm16\n" op                 \
       " %%zmm0, %%zmm1, %%zmm17\n"
#define CACHALOT_PEAK_LOOP(op)                                                                                         \
    __asm__ volatile(                                                                                                  \
        "vpxord %%zmm0, %%zmm0, %%zmm0\n vpxord %%zmm1, %%zmm1, %%zmm1\n 1:\n" CACHALOT_X16(op) "dec %0\n jnz 1b\n"    \
        : "+r"(trips)                                                                                                  \
        :                                                                                                              \
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",   \
          "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "cc")

__attribute__((target("avx512f"))) void peak_fma() {
    int64_t trips = k_peak_trips;
    CACHALOT_PEAK_LOOP("vfmadd231ps");
}
__attribute__((target("avx512f"))) void peak_bf16() {
    int64_t trips = k_peak_trips;
    CACHALOT_PEAK_LOOP("vdpbf16ps");
}
__attribute__((target("avx512f"))) void peak_int8() {
    int64_t trips = k_peak_trips;
    CACHALOT_PEAK_LOOP("vpdpbusd");
}
#undef CACHALOT_PEAK_LOOP
#undef CACHALOT_X16

int machine_report(thread_pool& pool, int reps) {
    // 512 MiB in one chunk per 8 MiB: far past any cache, split evenly over the threads.
    constexpr size_t chunk_bytes = size_t(8) << 20, n_chunks = 64;
    std::vector<uint8_t> buffer(chunk_bytes * n_chunks + 64, 1);
    uint8_t* base = buffer.data() + (64 - reinterpret_cast<uintptr_t>(buffer.data()) % 64) % 64;
    std::vector<uint8_t*> chunks;
    for (size_t c = 0; c < n_chunks; ++c) {
        chunks.push_back(base + c * chunk_bytes);
    }
    std::printf("memory read bandwidth, 1 thread:  %6.1f GB/s\n", read_bandwidth(chunks, chunk_bytes, 1, pool, reps));
    if (pool.size() > 1) {
        std::printf("memory read bandwidth, %d threads: %6.1f GB/s\n", pool.size(),
                    read_bandwidth(chunks, chunk_bytes, pool.size(), pool, reps));
    }
    struct peak {
        const char* name;
        bool supported;
        double ops_per_instr; // multiply-adds count two
        void (*fn)();
    };
    const bool f = __builtin_cpu_supports("avx512f");
    const peak peaks[] = {{"FP32 FMA (vfmadd, zmm)", f, 32, peak_fma},
                          {"BF16 dot (vdpbf16ps, zmm)", f && __builtin_cpu_supports("avx512bf16"), 64, peak_bf16},
                          {"int8 dot (vpdpbusd, zmm)", f && __builtin_cpu_supports("avx512vnni"), 128, peak_int8}};
    for (const auto& pk : peaks) {
        if (!pk.supported) {
            std::printf("%-28s not supported\n", pk.name);
            continue;
        }
        timing t = time_it(reps, pk.fn);
        const double instrs = double(k_peak_trips) * 16;
        std::printf("%-28s %6.2f G instructions/s per core = %6.0f G ops/s per core\n", pk.name,
                    instrs / t.min_s * 1e-9, instrs * pk.ops_per_instr / t.min_s * 1e-9);
    }
    return 0;
}
#else
int machine_report(thread_pool&, int) {
    std::fprintf(stderr, "cachalot-matmul-bench: --machine measures x86-64 only\n");
    return 2;
}
#endif

} // namespace

int main(int argc, char** argv) {
    int threads = 0, reps = 7;
    bool reference = true, machine = false;
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
        } else if (a == "--machine") {
            machine = true;
        } else {
            std::fprintf(stderr,
                         "cachalot-matmul-bench: unknown argument '%s'\n"
                         "usage: cachalot-matmul-bench [--threads N] [--reps N] [--tokens 1,16,64,512] "
                         "[--no-reference] [--machine]\n",
                         a.c_str());
            return 2;
        }
    }
    thread_pool pool(threads);
    std::fprintf(stderr, "threads=%d fast backend=%.*s\n", pool.size(), int(cpu_backend_name().size()),
                 cpu_backend_name().data());
    if (machine) {
        return machine_report(pool, reps);
    }

    std::vector<bench_weight> weights;
    weights.push_back(make_weight(dtype::f8_e4m3, 4096, 4096));
    weights.push_back(make_weight(dtype::fp4_e2m1, 2048, 4096));
    // Shapes of bench-v4's attention (wkv-like, wq_b-like with K = 128, wo_a-like with K = 2048).
    weights.push_back(make_weight(dtype::f8_e4m3, 1024, 512));
    weights.push_back(make_weight(dtype::f8_e4m3, 4096, 128));
    weights.push_back(make_weight(dtype::f8_e4m3, 512, 2048));

    // GB/s and GFLOP/s come from the minimum wall time; the last column divides by CPU time instead.
    std::printf("%-14s %6s %-10s %10s %10s %9s %9s %8s %12s\n", "weight", "tokens", "backend", "min_ms", "median_ms",
                "GB/s", "GFLOP/s", "cpu_ms", "GFLOP/cpu-s");
    for (const auto& w : weights) {
        const double bytes = double(w.data.size() + w.scales.size());
        // What `fast` runs: the weight repacked where the kernel has a layout of its own
        // ("avx512" below), and the stored form beside it ("avx512-stored").
        const packed_weight packed = pack_for_fast(w.view);
        weight_view packed_view = w.view;
        packed_view.lanes = packed.bytes.get();
        for (int64_t n : tokens) {
            std::vector<float> x(size_t(n * w.view.cols)), y(size_t(n * w.view.rows));
            std::mt19937 rng(7);
            std::normal_distribution<float> normal(0.0f, 1.0f);
            for (auto& v : x) {
                v = normal(rng);
            }
            const double flops = 2.0 * double(w.view.rows) * double(w.view.cols) * double(n);
            std::vector<std::string> backends = {"avx512", "avx2"};
            if (!packed.empty()) {
                backends.insert(backends.begin() + 1, "avx512-stored");
            }
            if (reference) {
                backends.insert(backends.begin(), "reference");
            }
            for (const auto& b : backends) {
                // The scalar reference is slow: fewer repetitions as the work grows.
                int r = b == "reference" ? std::max(1, std::min(reps, int(64 / n))) : reps;
                bool ok = true;
                const bool stored = b == "avx512-stored";
                const weight_view& v = b == "avx512" ? packed_view : w.view;
                timing t = time_it(
                    r, [&] { ok = matmul_on_backend(stored ? "avx512" : b, v, x.data(), n, y.data(), pool).ok(); });
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

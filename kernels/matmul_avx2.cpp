// The AVX2 `fast` matmul, for x86 machines without AVX-512 BF16. Same semantics as the AVX-512
// path: activations are rounded to BF16 once per call (kept as F32 values here, since AVX2 has no
// BF16 dot product), weights are decoded exactly (FP8 by a gather from the 256-entry table, FP4 by
// vpermps over its 8 magnitudes, BF16 by a shift) with the E8M0 scale multiplied in exactly, and
// products are summed in F32 with FMA. F32 weights keep F32 activations. Each strip of rows is
// decoded once per call into an F32 panel in cache and reused for every token.
//
// Every output element is one 8-lane accumulator fed in column order and reduced by one fixed
// tree, so results do not depend on tiles or threads (they differ from the AVX-512 path's, within
// the same error bound).
//
// This file is compiled with -mavx2 -mfma -mf16c: it must not define or instantiate anything with
// external linkage except the kernel table, and it calls no inline functions from other headers.
//
// T = tokens, R = rows, C = cols, Cp = C rounded up to the 16-column chunk
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/matmul_cpu.h"

namespace cachalot {

namespace {

constexpr int64_t k_chunk = 16; // columns per decode step
constexpr int k_max_rt = 4;
constexpr int k_max_tt = 4;

int64_t round_up(int64_t v, int64_t m) {
    return (v + m - 1) / m * m;
}
int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

float bits_f32(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}
uint32_t f32_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}
// Round to the nearest BF16 (ties to even) and return it as an F32 value.
float round_bf16(float f) {
    uint32_t b = f32_bits(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return bits_f32((b | 0x00400000u) & 0xffff0000u);
    }
    b += 0x7fffu + ((b >> 16) & 1u);
    return bits_f32(b & 0xffff0000u);
}
float e8m0_value(uint8_t s) {
    if (s == 0xff) {
        return bits_f32(0x7fc00000u);
    }
    return s == 0 ? bits_f32(0x00400000u) : bits_f32(uint32_t(s) << 23);
}
float pow2(int k) {
    return bits_f32(uint32_t(127 + k) << 23);
}
float e4m3_value(uint8_t code) {
    int mag = code & 0x7f;
    if (mag == 0x7f) {
        return bits_f32(0x7fc00000u);
    }
    int e = mag >> 3, m = mag & 7;
    float v = e == 0 ? float(m) * pow2(-9) : float(8 + m) * pow2(e - 10);
    return (code & 0x80) ? -v : v;
}
alignas(32) constexpr float k_fp4_mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
float fp4_value(uint8_t code) {
    float v = k_fp4_mag[code & 7];
    return (code & 8) ? -v : v;
}

struct decode_tables {
    alignas(64) float e4m3[256];
    uint16_t f4_layout[16]; // position in a 16-column chunk -> column: evens, then odds
};

decode_tables* build_tables() {
    auto* t = static_cast<decode_tables*>(std::aligned_alloc(64, sizeof(decode_tables)));
    for (int i = 0; i < 256; ++i) {
        t->e4m3[i] = e4m3_value(uint8_t(i));
    }
    for (int p = 0; p < 8; ++p) {
        t->f4_layout[p] = uint16_t(2 * p);
        t->f4_layout[8 + p] = uint16_t(2 * p + 1);
    }
    return t;
}

const decode_tables& tables() {
    static const decode_tables* t = build_tables();
    return *t;
}

struct scratch_buffer {
    void* ptr = nullptr;
    size_t size = 0;
    ~scratch_buffer() { std::free(ptr); }
    void* get(size_t n) {
        if (n > size) {
            std::free(ptr);
            size = size_t(round_up(int64_t(n), 4096));
            ptr = std::aligned_alloc(64, size);
        }
        return ptr;
    }
};
thread_local scratch_buffer t_panel;

inline float reduce8(__m256 a) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

using micro_fn = void (*)(const float* w, int64_t ws, const float* x, int64_t xs, int64_t n_vec, float* y, int64_t ys);

template <int RT, int TT>
void micro(const float* w, int64_t ws, const float* x, int64_t xs, int64_t n_vec, float* y, int64_t ys) {
    __m256 acc[RT][TT];
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            acc[r][t] = _mm256_setzero_ps();
        }
    }
    for (int64_t v = 0; v < n_vec; ++v) {
        __m256 wv[RT];
#pragma GCC unroll 8
        for (int r = 0; r < RT; ++r) {
            wv[r] = _mm256_load_ps(w + r * ws + v * 8);
        }
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            __m256 xv = _mm256_load_ps(x + t * xs + v * 8);
#pragma GCC unroll 8
            for (int r = 0; r < RT; ++r) {
                acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            y[t * ys + r] = reduce8(acc[r][t]);
        }
    }
}

#define CACHALOT_MICRO_ROW(R)                                                                                          \
    { micro<R, 1>, micro<R, 2>, micro<R, 3>, micro<R, 4> }
const micro_fn k_micro[k_max_rt][k_max_tt] = {CACHALOT_MICRO_ROW(1), CACHALOT_MICRO_ROW(2), CACHALOT_MICRO_ROW(3),
                                              CACHALOT_MICRO_ROW(4)};
#undef CACHALOT_MICRO_ROW

const uint8_t* row_scales(const matmul_problem& p, int64_t r) {
    return p.scales ? p.scales + ((p.first_row + r) / p.scale_block_rows) * p.scale_row_stride : nullptr;
}

float scalar_value(const matmul_problem& p, const uint8_t* src, const uint8_t* sc, int64_t c) {
    float s = sc ? e8m0_value(sc[c / p.scale_block_cols]) : 1.0f;
    switch (p.type) {
    case dtype::f32: {
        float v;
        std::memcpy(&v, src + 4 * c, 4);
        return v;
    }
    case dtype::bf16: {
        uint16_t v;
        std::memcpy(&v, src + 2 * c, 2);
        return bits_f32(uint32_t(v) << 16);
    }
    case dtype::f8_e4m3:
        return e4m3_value(src[c]) * s;
    case dtype::fp4_e2m1:
        return fp4_value(uint8_t((src[c / 2] >> (4 * (c & 1))) & 0xf)) * s;
    default:
        return 0.0f;
    }
}

// Element by element, for tails and for scale blocks that do not line up with the chunks.
void decode_chunk_scalar(const matmul_problem& p, const uint8_t* src, const uint8_t* sc, int64_t c0, float* out) {
    const bool fp4 = p.type == dtype::fp4_e2m1;
    for (int64_t i = 0; i < k_chunk; ++i) {
        int64_t c = c0 + (fp4 ? tables().f4_layout[i] : i);
        out[c0 + i] = c < p.cols ? scalar_value(p, src, sc, c) : 0.0f;
    }
}

void decode_row(const matmul_problem& p, int64_t r, float* out, int64_t cp) {
    const uint8_t* src = p.data + r * p.row_bytes;
    const uint8_t* sc = row_scales(p, r);
    const int64_t full = p.cols / k_chunk * k_chunk; // chunks wholly inside the row
    const bool aligned = !sc || p.scale_block_cols % k_chunk == 0;
    int64_t c0 = 0;
    if (aligned) {
        switch (p.type) {
        case dtype::f32:
            for (; c0 < full; c0 += 8) {
                _mm256_store_ps(out + c0, _mm256_loadu_ps(reinterpret_cast<const float*>(src) + c0));
            }
            break;
        case dtype::bf16:
            for (; c0 < full; c0 += 8) {
                __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * c0)));
                _mm256_store_ps(out + c0, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
            }
            break;
        case dtype::f8_e4m3: {
            const float* table = tables().e4m3;
            int64_t block = 0, block_end = p.scale_block_cols; // no division per vector
            for (; c0 < full; c0 += 8) {
                if (c0 >= block_end) {
                    ++block;
                    block_end += p.scale_block_cols;
                }
                __m256 s = _mm256_set1_ps(sc ? e8m0_value(sc[block]) : 1.0f);
                __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + c0)));
                _mm256_store_ps(out + c0, _mm256_mul_ps(_mm256_i32gather_ps(table, idx, 4), s));
            }
            break;
        }
        case dtype::fp4_e2m1: {
            const __m256 mag = _mm256_load_ps(k_fp4_mag);
            const __m256i sign = _mm256_set1_epi32(int32_t(0x80000000u));
            int64_t block = 0, block_end = p.scale_block_cols;
            for (; c0 < full; c0 += k_chunk) {
                if (c0 >= block_end) {
                    ++block;
                    block_end += p.scale_block_cols;
                }
                __m256 table = _mm256_mul_ps(mag, _mm256_set1_ps(sc ? e8m0_value(sc[block]) : 1.0f));
                __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + c0 / 2)));
                __m256 even = _mm256_permutevar8x32_ps(table, w);
                __m256 odd = _mm256_permutevar8x32_ps(table, _mm256_srli_epi32(w, 4));
                even = _mm256_or_ps(even, _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(w, 28), sign)));
                odd = _mm256_or_ps(odd, _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(w, 24), sign)));
                _mm256_store_ps(out + c0, even);
                _mm256_store_ps(out + c0 + 8, odd);
            }
            break;
        }
        default:
            break;
        }
    }
    for (; c0 < cp; c0 += k_chunk) {
        decode_chunk_scalar(p, src, sc, c0, out);
    }
}

bool supported() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int64_t packed_x_bytes(dtype, int64_t cols, bool) {
    return round_up(round_up(cols, k_chunk) * 4, 64);
}

void pack_x(const matmul_problem& p, int64_t t0, int64_t t1) {
    const int64_t C = p.cols, cp = round_up(C, k_chunk);
    const bool fp4 = p.type == dtype::fp4_e2m1;
    const bool round = p.type != dtype::f32;
    for (int64_t t = t0; t < t1; ++t) {
        const float* xs = p.x + t * C;
        float* out = reinterpret_cast<float*>(static_cast<uint8_t*>(p.x_packed) + t * p.x_packed_stride);
        for (int64_t c0 = 0; c0 < cp; c0 += k_chunk) {
            for (int64_t i = 0; i < k_chunk; ++i) {
                int64_t c = c0 + (fp4 ? tables().f4_layout[i] : i);
                float v = c < C ? xs[c] : 0.0f;
                out[c0 + i] = round ? round_bf16(v) : v;
            }
        }
    }
}

void compute_rows(const matmul_problem& p, int64_t r0, int64_t r1) {
    const int64_t T = p.n_tokens, R = p.rows;
    const int64_t cp = round_up(p.cols, k_chunk);
    int64_t rs = (T <= 8 ? (64 << 10) : (256 << 10)) / (cp * 4);
    rs = (rs < 4 ? 4 : rs > 64 ? 64 : rs) / 4 * 4;
    float* panel = static_cast<float*>(t_panel.get(size_t(rs * cp) * sizeof(float)));
    const float* x = static_cast<const float*>(p.x_packed);
    const int64_t xs = p.x_packed_stride / 4;
    const int rt_max = T <= 2 ? 4 : 3;
    const int tt_max = T <= 2 ? 2 : 4;
    for (int64_t s0 = r0; s0 < r1; s0 += rs) {
        const int64_t sn = min64(rs, r1 - s0);
        for (int64_t i = 0; i < sn; ++i) {
            decode_row(p, s0 + i, panel + i * cp, cp);
        }
        for (int64_t t0 = 0; t0 < T; t0 += tt_max) {
            const int tn = int(min64(tt_max, T - t0));
            for (int64_t i0 = 0; i0 < sn; i0 += rt_max) {
                const int rn = int(min64(rt_max, sn - i0));
                k_micro[rn - 1][tn - 1](panel + i0 * cp, cp, x + t0 * xs, xs, cp / 8, p.y + t0 * R + s0 + i0, R);
            }
        }
    }
}

} // namespace

// No layout of its own: it reads every weight in stored form.
const matmul_kernel k_matmul_kernel_avx2 = {"avx2", supported, packed_x_bytes, pack_x, compute_rows, nullptr, nullptr};

} // namespace cachalot

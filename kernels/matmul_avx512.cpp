// The AVX-512 `fast` matmul: BF16 products with F32 accumulation through vdpbf16ps. Activations
// are rounded to BF16 once per call (pack_x). FP8 and BF16 weights repacked at load ("row lanes",
// see that section below) are decoded a step at a time into registers and multiplied against up
// to 16 broadcast tokens, each output element one vector lane. Weights in stored form (FP4, F32,
// layouts the lanes do not cover): each strip of rows is decoded once per call into a BF16 panel
// in cache, or straight into registers for 1-4 tokens, and multiplied against every token. FP8
// e4m3 decodes through two 128-entry vpermi2b byte tables, FP4 e2m1 through a 32-entry vpermw
// table, with the power-of-two E8M0 block scale folded exactly into the tables. F32 weights keep
// F32 activations and F32 FMAs (they are the small mHC/gate tensors the model runs in FP32).
//
// Numbers: in stored form every output element (r, t) is one 16-lane accumulator fed in column
// order by the same instruction sequence, then reduced by one fixed tree; in row lanes it is one
// lane fed column pair by column pair. Either way the result depends neither on the tile, strip,
// token count nor thread. Decoded weights are exact; the only roundings are the BF16 activations
// and the F32 sums (and DAZ on BF16 subnormals inside vdpbf16ps).
//
// This file is compiled with AVX-512 flags: it must not define or instantiate anything with
// external linkage except the kernel table, and it calls no inline functions from other headers
// (avx512_reduce.h's are file-local copies).
// Requires AVX512F/BW/VL/DQ, AVX512_BF16 and AVX512_VBMI; the dispatcher checks before calling.
//
// T = tokens, R = rows, C = cols, Cp = C rounded up to the 64-column chunk
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/avx512_reduce.h"
#include "kernels/matmul_cpu.h"

namespace cachalot {

namespace {

constexpr int64_t k_chunk = 64;            // columns per decode step of the BF16 family
constexpr int64_t k_chunk_f32 = 16;        // columns per vector of the F32 path
constexpr int k_max_rt = 8;                // rows per micro tile
constexpr int k_max_tt = 6;                // tokens per micro tile
constexpr int64_t k_prefetch_bytes = 1024; // how far weight decode reads ahead
constexpr int64_t k_max_fused_tokens = 4;  // up to this many tokens, decode feeds the dots directly

int64_t round_up(int64_t v, int64_t m) {
    return (v + m - 1) / m * m;
}
int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

// ---- scalar helpers for building tables (local copies: see the file comment) -------------------

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
uint16_t to_bf16(float f) {
    uint32_t b = f32_bits(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return uint16_t((b >> 16) | 0x40);
    }
    b += 0x7fffu + ((b >> 16) & 1u);
    return uint16_t(b >> 16);
}
float e8m0_value(uint8_t s) {
    if (s == 0xff) {
        return bits_f32(0x7fc00000u);
    }
    return s == 0 ? bits_f32(0x00400000u) : bits_f32(uint32_t(s) << 23);
}
float pow2(int k) {
    return bits_f32(uint32_t(127 + k) << 23);
} // normal range only
float e4m3_value(uint8_t code) {
    int mag = code & 0x7f;
    if (mag == 0x7f) {
        return bits_f32(0x7fc00000u);
    }
    int e = mag >> 3, m = mag & 7;
    float v = e == 0 ? float(m) * pow2(-9) : float(8 + m) * pow2(e - 10);
    return (code & 0x80) ? -v : v;
}
constexpr float k_fp4_mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
float fp4_value(uint8_t code) {
    float v = k_fp4_mag[code & 7];
    return (code & 8) ? -v : v;
}

// ---- decode tables, one per E8M0 scale byte with the scale folded in -----------------------------

struct decode_tables {
    // FP8: for magnitude code i < 128, the BF16 of e4m3(i) * scale, split into its low bytes
    // [0, 128) and high bytes [128, 256), the operands of two vpermi2b.
    alignas(64) uint8_t f8[256][256];
    // FP4: the BF16 of fp4(k) * scale for the 16 codes.
    alignas(64) uint16_t f4[256][16];
    // Activation layouts within a 64-column chunk: position -> column.
    alignas(64) uint16_t f8_layout[64];
    alignas(64) uint16_t f4_layout[64];
};

decode_tables* build_tables() {
    auto* t = static_cast<decode_tables*>(std::aligned_alloc(64, sizeof(decode_tables)));
    for (int s = 0; s < 256; ++s) {
        float scale = e8m0_value(uint8_t(s));
        for (int i = 0; i < 128; ++i) {
            uint16_t b = to_bf16(e4m3_value(uint8_t(i)) * scale);
            t->f8[s][i] = uint8_t(b & 0xff);
            t->f8[s][128 + i] = uint8_t(b >> 8);
        }
        for (int k = 0; k < 16; ++k) {
            t->f4[s][k] = to_bf16(fp4_value(uint8_t(k)) * scale);
        }
    }
    // vpunpck{l,h}bw interleave within 128-bit lanes: the low half takes bytes 0-7 of each lane.
    for (int p = 0; p < 32; ++p) {
        t->f8_layout[p] = uint16_t((p / 8) * 16 + p % 8);
        t->f8_layout[32 + p] = uint16_t((p / 8) * 16 + 8 + p % 8);
        t->f4_layout[p] = uint16_t(2 * p);
        t->f4_layout[32 + p] = uint16_t(2 * p + 1);
    }
    return t;
}

const decode_tables& tables() {
    static const decode_tables* t = build_tables();
    return *t;
}

// FP8 e4m3 codes to BF16 through the two 128-entry byte tables of one E8M0 scale (folded in): 64
// codes give two vectors of 32 BF16, the codes of bytes 0-7 of each 128-bit lane in the first and
// of bytes 8-15 in the second (the vpunpck{l,h}bw order).
struct f8_decoder {
    const decode_tables& tb = tables(); // once, not on every scale change in the hot loops
    __m512i lo0 = _mm512_setzero_si512(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
    int cur = -1;
    // Loads scale byte s's tables unless they are the ones loaded.
    void use(int s) {
        if (s != cur) {
            cur = s;
            const uint8_t* t = tb.f8[s];
            lo0 = _mm512_load_si512(t);
            lo1 = _mm512_load_si512(t + 64);
            hi0 = _mm512_load_si512(t + 128);
            hi1 = _mm512_load_si512(t + 192);
        }
    }
    void decode(__m512i w, __m512i& a, __m512i& b) const {
        const __m512i lo = _mm512_permutex2var_epi8(lo0, w, lo1);
        __m512i hi = _mm512_permutex2var_epi8(hi0, w, hi1);
        hi = _mm512_ternarylogic_epi32(hi, w, _mm512_set1_epi8(char(0x80)), 0xf8); // hi | (w & 0x80)
        a = _mm512_unpacklo_epi8(lo, hi);
        b = _mm512_unpackhi_epi8(lo, hi);
    }
};

const uint16_t* layout_of(dtype type) {
    switch (type) {
    case dtype::f8_e4m3:
        return tables().f8_layout;
    case dtype::fp4_e2m1:
        return tables().f4_layout;
    default:
        return nullptr; // natural order
    }
}

// ---- per-thread scratch for the decoded panel ------------------------------------------------------

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

// ---- reductions and micro kernels ------------------------------------------------------------------

// y_t[r] for RT rows of one token (acc_t[r * stride]): groups of four rows through reduce16x4.
template <int RT>
inline void store_rows(const __m512* acc_t, int64_t stride, float* y_t) {
    int r = 0;
#pragma GCC unroll 2
    for (; r + 4 <= RT; r += 4) {
        _mm512_mask_storeu_ps(
            y_t + r, 0x000f,
            reduce16x4(acc_t[r * stride], acc_t[(r + 1) * stride], acc_t[(r + 2) * stride], acc_t[(r + 3) * stride]));
    }
#pragma GCC unroll 4
    for (; r < RT; ++r) {
        y_t[r] = reduce16(acc_t[r * stride]);
    }
}

// w: [RT rows, ws] bf16 panel, x: [TT tokens, xs] bf16, n_vec vectors of 32; y[t * ys + r].
using micro_fn = void (*)(const uint16_t* w, int64_t ws, const uint16_t* x, int64_t xs, int64_t n_vec, float* y,
                          int64_t ys);

template <int RT, int TT>
void micro_bf16(const uint16_t* w, int64_t ws, const uint16_t* x, int64_t xs, int64_t n_vec, float* y, int64_t ys) {
    __m512 acc[RT][TT];
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            acc[r][t] = _mm512_setzero_ps();
        }
    }
    for (int64_t v = 0; v < n_vec; ++v) {
        __m512bh wv[RT];
#pragma GCC unroll 8
        for (int r = 0; r < RT; ++r) {
            wv[r] = (__m512bh)_mm512_loadu_si512(w + r * ws + v * 32); // panels, or weights in place
        }
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            __m512bh xv = (__m512bh)_mm512_load_si512(x + t * xs + v * 32);
#pragma GCC unroll 8
            for (int r = 0; r < RT; ++r) {
                acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
        store_rows<RT>(&acc[0][t], TT, y + t * ys);
    }
}

// The same for F32 panels and activations (n_vec vectors of 16).
using micro_f32_fn = void (*)(const float* w, int64_t ws, const float* x, int64_t xs, int64_t n_vec, float* y,
                              int64_t ys);

template <int RT, int TT>
void micro_f32(const float* w, int64_t ws, const float* x, int64_t xs, int64_t n_vec, float* y, int64_t ys) {
    __m512 acc[RT][TT];
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            acc[r][t] = _mm512_setzero_ps();
        }
    }
    for (int64_t v = 0; v < n_vec; ++v) {
        __m512 wv[RT];
#pragma GCC unroll 8
        for (int r = 0; r < RT; ++r) {
            wv[r] = _mm512_loadu_ps(w + r * ws + v * 16); // straight from the weight when unpadded
        }
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            __m512 xv = _mm512_load_ps(x + t * xs + v * 16);
#pragma GCC unroll 8
            for (int r = 0; r < RT; ++r) {
                acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
        store_rows<RT>(&acc[0][t], TT, y + t * ys);
    }
}

#define CACHALOT_MICRO_ROW(K, R)                                                                                       \
    { K<R, 1>, K<R, 2>, K<R, 3>, K<R, 4>, K<R, 5>, K<R, 6> }
#define CACHALOT_MICRO_TABLE(K)                                                                                        \
    {                                                                                                                  \
        CACHALOT_MICRO_ROW(K, 1), CACHALOT_MICRO_ROW(K, 2), CACHALOT_MICRO_ROW(K, 3), CACHALOT_MICRO_ROW(K, 4),        \
            CACHALOT_MICRO_ROW(K, 5), CACHALOT_MICRO_ROW(K, 6), CACHALOT_MICRO_ROW(K, 7), CACHALOT_MICRO_ROW(K, 8)     \
    }
const micro_fn k_micro_bf16[k_max_rt][k_max_tt] = CACHALOT_MICRO_TABLE(micro_bf16);
const micro_f32_fn k_micro_f32[k_max_rt][k_max_tt] = CACHALOT_MICRO_TABLE(micro_f32);
#undef CACHALOT_MICRO_TABLE
#undef CACHALOT_MICRO_ROW

// ---- weight decode into the panel ------------------------------------------------------------------

const uint8_t* row_scales(const matmul_problem& p, int64_t r) {
    return p.scales ? p.scales + ((p.first_row + r) / p.scale_block_rows) * p.scale_row_stride : nullptr;
}

// Any layout of scales, element by element; used when blocks do not line up with the chunks.
void decode_row_scalar(const matmul_problem& p, int64_t r, uint16_t* out, int64_t cp) {
    const uint8_t* src = p.data + r * p.row_bytes;
    const uint8_t* sc = row_scales(p, r);
    const uint16_t* layout = layout_of(p.type);
    for (int64_t c0 = 0; c0 < cp; c0 += k_chunk) {
        for (int64_t i = 0; i < k_chunk; ++i) {
            int64_t c = c0 + (layout ? layout[i] : i);
            uint16_t v = 0;
            if (c < p.cols) {
                float s = sc ? e8m0_value(sc[c / p.scale_block_cols]) : 1.0f;
                switch (p.type) {
                case dtype::bf16:
                    std::memcpy(&v, src + 2 * c, 2);
                    break;
                case dtype::f8_e4m3:
                    v = to_bf16(e4m3_value(src[c]) * s);
                    break;
                case dtype::fp4_e2m1:
                    v = to_bf16(fp4_value(uint8_t((src[c / 2] >> (4 * (c & 1))) & 0xf)) * s);
                    break;
                default:
                    break;
                }
            }
            out[c0 + i] = v;
        }
    }
}

void decode_row_f8(const matmul_problem& p, int64_t r, uint16_t* out, int64_t cp) {
    const uint8_t* src = p.data + r * p.row_bytes;
    const uint8_t* sc = row_scales(p, r);
    if (sc && p.scale_block_cols % k_chunk != 0) {
        decode_row_scalar(p, r, out, cp);
        return;
    }
    f8_decoder dec;
    // A running block index: a division per chunk would cost as much as the decode itself.
    int64_t block = 0, block_end = p.scale_block_cols;
    for (int64_t c0 = 0; c0 < cp; c0 += k_chunk) {
        if (c0 >= block_end) {
            ++block;
            block_end += p.scale_block_cols;
        }
        dec.use(sc ? sc[block] : 127);
        int64_t n = p.cols - c0;
        // Rows lie back to back: running ahead into the next row keeps the memory busy while
        // this one is decoded (the hardware prefetcher alone leaves GEMV at a third of it).
        _mm_prefetch(reinterpret_cast<const char*>(src + c0) + k_prefetch_bytes, _MM_HINT_T0);
        __mmask64 m = n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
        __m512i a, b;
        dec.decode(_mm512_maskz_loadu_epi8(m, src + c0), a, b);
        _mm512_store_si512(out + c0, a);
        _mm512_store_si512(out + c0 + 32, b);
    }
}

void decode_row_f4(const matmul_problem& p, int64_t r, uint16_t* out, int64_t cp) {
    const uint8_t* src = p.data + r * p.row_bytes;
    const uint8_t* sc = row_scales(p, r);
    if (sc && p.scale_block_cols != 32) {
        decode_row_scalar(p, r, out, cp);
        return;
    }
    const decode_tables& tb = tables();
    const __m512i low4 = _mm512_set1_epi16(0x0f);
    // Words 16..31 hold columns 32..63, the second scale group: they index the table's upper half.
    const __m512i upper = _mm512_mask_broadcast_i64x4(_mm512_setzero_si512(), 0xf0, _mm256_set1_epi16(0x10));
    for (int64_t c0 = 0; c0 < cp; c0 += k_chunk) {
        int s0 = sc ? sc[c0 / 32] : 127;
        int s1 = sc && c0 + 32 < p.cols ? sc[c0 / 32 + 1] : s0;
        __m512i table = _mm512_mask_broadcast_i64x4(
            _mm512_maskz_broadcast_i64x4(0x0f, _mm256_load_si256((const __m256i*)tb.f4[s0])), 0xf0,
            _mm256_load_si256((const __m256i*)tb.f4[s1]));
        int64_t n = (p.cols - c0) / 2;
        __mmask32 m = n >= 32 ? ~__mmask32(0) : (__mmask32(1) << n) - 1;
        _mm_prefetch(reinterpret_cast<const char*>(src + c0 / 2) + k_prefetch_bytes, _MM_HINT_T0);
        __m512i w = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, src + c0 / 2));
        __m512i idx_even = _mm512_ternarylogic_epi32(w, low4, upper, 0xea); // (w & 0xf) | upper
        __m512i idx_odd = _mm512_or_si512(_mm512_srli_epi16(w, 4), upper);
        _mm512_store_si512(out + c0, _mm512_permutexvar_epi16(idx_even, table));
        _mm512_store_si512(out + c0 + 32, _mm512_permutexvar_epi16(idx_odd, table));
    }
}

void decode_row_bf16(const matmul_problem& p, int64_t r, uint16_t* out, int64_t cp) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(p.data + r * p.row_bytes);
    for (int64_t c0 = 0; c0 < cp; c0 += 32) {
        int64_t n = p.cols - c0;
        __mmask32 m = n >= 32 ? ~__mmask32(0) : n <= 0 ? 0 : (__mmask32(1) << n) - 1;
        _mm512_store_si512(out + c0, _mm512_maskz_loadu_epi16(m, src + c0));
    }
}

void decode_row_f32(const matmul_problem& p, int64_t r, float* out, int64_t cp) {
    const float* src = reinterpret_cast<const float*>(p.data + r * p.row_bytes);
    for (int64_t c0 = 0; c0 < cp; c0 += 16) {
        int64_t n = p.cols - c0;
        __mmask16 m = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
        _mm512_store_ps(out + c0, _mm512_maskz_loadu_ps(m, src + c0));
    }
}

// ---- fused decode + dot for one to four tokens (GEMV) -----------------------------------------------
//
// With so few tokens the panel would be written and read back once per use: instead each 64-column
// chunk of a row is decoded into two registers exactly as decode_row_* would store it and fed
// straight to vdpbf16ps. Every accumulator sees the same values in the same column order as through
// the panel and micro_bf16, and is reduced by the same tree, so the results are bitwise those of the
// strip path (the batch/token-by-token tests rely on it).

struct fused_f8 {
    f8_decoder dec;
    static constexpr int64_t bytes_per_chunk = 64;
    static int64_t col_bytes(int64_t c0) { return c0; }
    inline void operator()(const matmul_problem& p, const uint8_t* src, const uint8_t* sc, int64_t c0, int64_t block,
                           __m512i& a, __m512i& b) {
        dec.use(sc ? sc[block] : 127);
        int64_t n = p.cols - c0;
        __mmask64 m = n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
        dec.decode(_mm512_maskz_loadu_epi8(m, src + c0), a, b);
    }
};

struct fused_f4 {
    const decode_tables& tb;
    const __m512i low4 = _mm512_set1_epi16(0x0f);
    const __m512i upper = _mm512_mask_broadcast_i64x4(_mm512_setzero_si512(), 0xf0, _mm256_set1_epi16(0x10));
    static constexpr int64_t bytes_per_chunk = 32;
    static int64_t col_bytes(int64_t c0) { return c0 / 2; }
    inline void operator()(const matmul_problem& p, const uint8_t* src, const uint8_t* sc, int64_t c0, int64_t,
                           __m512i& a, __m512i& b) {
        int s0 = sc ? sc[c0 / 32] : 127;
        int s1 = sc && c0 + 32 < p.cols ? sc[c0 / 32 + 1] : s0;
        __m512i table = _mm512_mask_broadcast_i64x4(
            _mm512_maskz_broadcast_i64x4(0x0f, _mm256_load_si256((const __m256i*)tb.f4[s0])), 0xf0,
            _mm256_load_si256((const __m256i*)tb.f4[s1]));
        int64_t n = (p.cols - c0) / 2;
        __mmask32 m = n >= 32 ? ~__mmask32(0) : (__mmask32(1) << n) - 1;
        __m512i w = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, src + c0 / 2));
        __m512i idx_even = _mm512_ternarylogic_epi32(w, low4, upper, 0xea);
        __m512i idx_odd = _mm512_or_si512(_mm512_srli_epi16(w, 4), upper);
        a = _mm512_permutexvar_epi16(idx_even, table);
        b = _mm512_permutexvar_epi16(idx_odd, table);
    }
};

struct fused_bf16 {
    static constexpr int64_t bytes_per_chunk = 128;
    static int64_t col_bytes(int64_t c0) { return 2 * c0; }
    inline void operator()(const matmul_problem& p, const uint8_t* src, const uint8_t*, int64_t c0, int64_t, __m512i& a,
                           __m512i& b) {
        const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
        int64_t n = p.cols - c0;
        if (n >= 64) {
            a = _mm512_loadu_si512(s + c0);
            b = _mm512_loadu_si512(s + c0 + 32);
            return;
        }
        __mmask32 ma = n >= 32 ? ~__mmask32(0) : n <= 0 ? 0 : (__mmask32(1) << n) - 1;
        int64_t nb = n - 32;
        __mmask32 mb = nb >= 32 ? ~__mmask32(0) : nb <= 0 ? 0 : (__mmask32(1) << nb) - 1;
        a = _mm512_maskz_loadu_epi16(ma, s + c0);
        b = _mm512_maskz_loadu_epi16(mb, s + c0 + 32);
    }
};

// Rows [r0, r0 + RT) against TT tokens.
template <int RT, int TT, class Dec>
void fused_tile(const matmul_problem& p, int64_t r0, int64_t cp, Dec dec) {
    const uint16_t* x = static_cast<const uint16_t*>(p.x_packed);
    const int64_t xs = p.x_packed_stride / 2;
    // The same position RT rows on: the next tile's data, one tile ahead.
    const int64_t ahead = RT * p.row_bytes;
    __m512 acc[RT][TT];
    const uint8_t* src[RT];
    const uint8_t* sc[RT];
#pragma GCC unroll 8
    for (int i = 0; i < RT; ++i) {
        src[i] = p.data + (r0 + i) * p.row_bytes;
        sc[i] = row_scales(p, r0 + i);
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            acc[i][t] = _mm512_setzero_ps();
        }
    }
    int64_t block = 0, block_end = p.scale_block_cols;
    for (int64_t c0 = 0; c0 < cp; c0 += k_chunk) {
        if (c0 >= block_end) {
            ++block;
            block_end += p.scale_block_cols;
        }
        __m512bh xa[TT], xb[TT];
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            xa[t] = (__m512bh)_mm512_load_si512(x + t * xs + c0);
            xb[t] = (__m512bh)_mm512_load_si512(x + t * xs + c0 + 32);
        }
#pragma GCC unroll 8
        for (int i = 0; i < RT; ++i) {
            const char* pf = reinterpret_cast<const char*>(src[i] + Dec::col_bytes(c0)) + ahead;
            _mm_prefetch(pf, _MM_HINT_T0);
            if constexpr (Dec::bytes_per_chunk > 64) {
                _mm_prefetch(pf + 64, _MM_HINT_T0);
            }
            __m512i a, b;
            dec(p, src[i], sc[i], c0, block, a, b);
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) {
                acc[i][t] = _mm512_dpbf16_ps(acc[i][t], (__m512bh)a, xa[t]);
                acc[i][t] = _mm512_dpbf16_ps(acc[i][t], (__m512bh)b, xb[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
        store_rows<RT>(&acc[0][t], TT, p.y + t * p.rows + r0);
    }
}

template <int TT, class Dec>
void fused_rows(const matmul_problem& p, int64_t r0, int64_t r1, int64_t cp, Dec dec) {
    constexpr int RT = TT == 1 ? 8 : TT == 2 ? 6 : 4;
    int64_t r = r0;
    for (; r + RT <= r1; r += RT) {
        fused_tile<RT, TT>(p, r, cp, dec);
    }
    for (; r < r1; ++r) {
        fused_tile<1, TT>(p, r, cp, dec);
    }
}

// FP4 with row-wise scales per 32 columns and whole 64-column chunks (every expert in the
// models we serve): the same decode and dot sequence as fused_tile<RT, TT, fused_f4>, so the same
// bits, without its per-row bounds, mask and scale-pointer work. That bookkeeping was most of the
// instructions per chunk, and expert GEMV is bound by them, not by memory. A decoder for
// fused_tile instead of this copy of its loop measured 5-8 % slower on expert-sized matrices
// (its per-row pointer arrays spill; here rows are one base and a stride).
bool f4_plain(const matmul_problem& p) {
    return p.scales && p.scale_block_cols == 32 && p.scale_block_rows == 1 && p.cols % k_chunk == 0 &&
           p.scale_row_stride * 32 >= p.cols;
}

template <int RT, int TT>
void fused_tile_f4(const matmul_problem& p, int64_t r0) {
    const uint16_t* x = static_cast<const uint16_t*>(p.x_packed);
    const int64_t xs = p.x_packed_stride / 2;
    const int64_t rb = p.row_bytes, srs = p.scale_row_stride;
    const uint8_t* w = p.data + r0 * rb;
    const uint8_t* sc = p.scales + (p.first_row + r0) * srs;
    const uint8_t* f4 = reinterpret_cast<const uint8_t*>(tables().f4);
    const __m512i low4 = _mm512_set1_epi16(0x0f);
    const __m512i upper = _mm512_mask_broadcast_i64x4(_mm512_setzero_si512(), 0xf0, _mm256_set1_epi16(0x10));
    const int64_t ahead = RT * rb;
    __m512 acc[RT][TT];
#pragma GCC unroll 8
    for (int i = 0; i < RT; ++i) {
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            acc[i][t] = _mm512_setzero_ps();
        }
    }
    const int64_t n_chunks = p.cols / k_chunk;
    for (int64_t k = 0; k < n_chunks; ++k) {
        __m512bh xa[TT], xb[TT];
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            xa[t] = (__m512bh)_mm512_load_si512(x + t * xs + k * k_chunk);
            xb[t] = (__m512bh)_mm512_load_si512(x + t * xs + k * k_chunk + 32);
        }
#pragma GCC unroll 8
        for (int i = 0; i < RT; ++i) {
            const uint8_t* wi = w + i * rb + k * 32;
            const uint8_t* si = sc + i * srs + k * 2;
            _mm_prefetch(reinterpret_cast<const char*>(wi) + ahead, _MM_HINT_T0);
            // Masked broadcasts: GCC 12's zero-extension and insert read an "undefined" vector.
            const __m512i table = _mm512_mask_broadcast_i64x4(
                _mm512_maskz_broadcast_i64x4(0x0f, _mm256_load_si256((const __m256i*)(f4 + 32 * si[0]))), 0xf0,
                _mm256_load_si256((const __m256i*)(f4 + 32 * si[1])));
            const __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)wi));
            const __m512i a = _mm512_permutexvar_epi16(_mm512_ternarylogic_epi32(v, low4, upper, 0xea), table);
            const __m512i b = _mm512_permutexvar_epi16(_mm512_or_si512(_mm512_srli_epi16(v, 4), upper), table);
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) {
                acc[i][t] = _mm512_dpbf16_ps(acc[i][t], (__m512bh)a, xa[t]);
                acc[i][t] = _mm512_dpbf16_ps(acc[i][t], (__m512bh)b, xb[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
        store_rows<RT>(&acc[0][t], TT, p.y + t * p.rows + r0);
    }
}

template <int TT>
void fused_rows_f4(const matmul_problem& p, int64_t r0, int64_t r1) {
    constexpr int RT = TT == 1 ? 8 : TT == 2 ? 6 : 4;
    int64_t r = r0;
    for (; r + RT <= r1; r += RT) {
        fused_tile_f4<RT, TT>(p, r);
    }
    for (; r < r1; ++r) {
        fused_tile_f4<1, TT>(p, r);
    }
}

void fused_gemv_f4(const matmul_problem& p, int64_t r0, int64_t r1) {
    switch (p.n_tokens) {
    case 1:
        fused_rows_f4<1>(p, r0, r1);
        return;
    case 2:
        fused_rows_f4<2>(p, r0, r1);
        return;
    case 3:
        fused_rows_f4<3>(p, r0, r1);
        return;
    default:
        fused_rows_f4<4>(p, r0, r1);
        return;
    }
}

template <class Dec>
void fused_gemv(const matmul_problem& p, int64_t r0, int64_t r1, int64_t cp, Dec dec) {
    switch (p.n_tokens) {
    case 1:
        fused_rows<1>(p, r0, r1, cp, dec);
        return;
    case 2:
        fused_rows<2>(p, r0, r1, cp, dec);
        return;
    case 3:
        fused_rows<3>(p, r0, r1, cp, dec);
        return;
    default:
        fused_rows<4>(p, r0, r1, cp, dec);
        return;
    }
}

// ---- the kernel table entries ----------------------------------------------------------------------

bool supported() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi");
}

int64_t padded_cols(dtype type, int64_t cols) {
    return type == dtype::f32 ? round_up(cols, k_chunk_f32) : round_up(cols, k_chunk);
}

int64_t lanes_cols(int64_t cols) {
    return round_up(cols, 4);
}

int64_t packed_x_bytes(dtype type, int64_t cols, bool lanes) {
    if (lanes) {
        return lanes_cols(cols) / 2 * 4; // a word (a BF16 column pair) per pair
    }
    return round_up(padded_cols(type, cols) * (type == dtype::f32 ? 4 : 2), 64);
}

void pack_x_lanes(const matmul_problem& p, int64_t t0, int64_t t1);

void pack_x(const matmul_problem& p, int64_t t0, int64_t t1) {
    if (p.lanes) {
        pack_x_lanes(p, t0, t1);
        return;
    }
    const int64_t C = p.cols;
    for (int64_t t = t0; t < t1; ++t) {
        const float* xs = p.x + t * C;
        uint8_t* dst = static_cast<uint8_t*>(p.x_packed) + t * p.x_packed_stride;
        if (p.type == dtype::f32) {
            float* out = reinterpret_cast<float*>(dst);
            for (int64_t c0 = 0; c0 < padded_cols(p.type, C); c0 += 16) {
                int64_t n = C - c0;
                __mmask16 m = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
                _mm512_store_ps(out + c0, _mm512_maskz_loadu_ps(m, xs + c0));
            }
            continue;
        }
        uint16_t* out = reinterpret_cast<uint16_t*>(dst);
        const uint16_t* layout = layout_of(p.type);
        const __m512i idx_a = layout ? _mm512_load_si512(layout) : _mm512_setzero_si512();
        const __m512i idx_b = layout ? _mm512_load_si512(layout + 32) : _mm512_setzero_si512();
        for (int64_t c0 = 0; c0 < padded_cols(p.type, C); c0 += k_chunk) {
            __m512 v[4];
            for (int k = 0; k < 4; ++k) {
                int64_t n = C - (c0 + 16 * k);
                __mmask16 m = n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
                v[k] = _mm512_maskz_loadu_ps(m, xs + c0 + 16 * k);
            }
            __m512i n0 = (__m512i)_mm512_cvtne2ps_pbh(v[1], v[0]);
            __m512i n1 = (__m512i)_mm512_cvtne2ps_pbh(v[3], v[2]);
            if (layout) {
                _mm512_store_si512(out + c0, _mm512_permutex2var_epi16(n0, idx_a, n1));
                _mm512_store_si512(out + c0 + 32, _mm512_permutex2var_epi16(n0, idx_b, n1));
            } else {
                _mm512_store_si512(out + c0, n0);
                _mm512_store_si512(out + c0 + 32, n1);
            }
        }
    }
}

// ---- row lanes: FP8 and BF16 weights repacked at load ------------------------------------------------
//
// Blocks of 16 rows; a block is a run of steps of 4 columns, a step two vectors of 16 lanes, one lane
// per row holding the row's two BF16 values of a column pair (vdpbf16ps' operand shape): the first
// vector the pair (4s, 4s + 1), the second (4s + 2, 4s + 3). FP8 steps are stored as 64 bytes that
// the two-table decode turns into exactly those two vectors; BF16 steps as the vectors themselves.
// Activations are packed per tile of 16 tokens as [column pair][16 tokens] words and broadcast, so
// each output element is one lane accumulated over the column pairs in order, with no horizontal
// sum and no panel: the same instruction sequence for every token and tile count, hence the same
// bits for any batch. (The stored-form kernels above stay for FP4, F32 and layouts not covered.)

constexpr int64_t k_lane_rows = 16;
constexpr int64_t k_lane_tile = 16;             // tokens per activation tile
constexpr int64_t k_lane_prefetch_bytes = 2048; // how far the weight reads run ahead

bool lanes_covered(const matmul_problem& p) {
    if (p.rows % k_lane_rows != 0 || p.cols <= 0) {
        return false;
    }
    if (p.type == dtype::bf16) {
        return true;
    }
    if (p.type != dtype::f8_e4m3) {
        return false;
    }
    // Each block within one scale row block, each step within one scale column block.
    return !p.scales ||
           (p.scale_block_rows % k_lane_rows == 0 && p.first_row % k_lane_rows == 0 && p.scale_block_cols % 4 == 0);
}

int64_t lanes_bytes(const matmul_problem& p) {
    if (!lanes_covered(p)) {
        return 0;
    }
    return p.rows * lanes_cols(p.cols) * (p.type == dtype::bf16 ? 2 : 1);
}

void pack_lanes(const matmul_problem& p, uint8_t* out) {
    const int64_t cp = lanes_cols(p.cols), steps = cp / 4;
    const int64_t full = p.cols / 4; // steps with all four columns present
    if (p.type == dtype::bf16) {
        // Step st of a block: vector 0 word 2r + kk = W[r][4st + kk], vector 1 word 2r + kk =
        // W[r][4st + 2 + kk], i.e. each row's four values as two 32-bit words.
        for (int64_t b = 0; b < p.rows / k_lane_rows; ++b) {
            auto* o = reinterpret_cast<uint32_t*>(out + b * steps * 128);
            for (int64_t r = 0; r < k_lane_rows; ++r) {
                const auto* src = reinterpret_cast<const uint16_t*>(p.data + (b * k_lane_rows + r) * p.row_bytes);
                for (int64_t st = 0; st < steps; ++st) {
                    uint16_t v[4] = {0, 0, 0, 0};
                    std::memcpy(v, src + 4 * st, size_t(st < full ? 4 : p.cols - 4 * st) * 2);
                    std::memcpy(o + st * 32 + r, v, 4);
                    std::memcpy(o + st * 32 + 16 + r, v + 2, 4);
                }
            }
        }
        return;
    }
    // FP8: vpunpck{l,h}bw take bytes 0-7 / 8-15 of each 128-bit lane, so word j of the first
    // decoded vector comes from byte 16 (j / 8) + j % 8 of the step, of the second from 8 bytes on.
    for (int64_t b = 0; b < p.rows / k_lane_rows; ++b) {
        uint8_t* o = out + b * steps * 64;
        for (int64_t r = 0; r < k_lane_rows; ++r) {
            const uint8_t* src = p.data + (b * k_lane_rows + r) * p.row_bytes;
            const int64_t at = 16 * (2 * r / 8) + 2 * r % 8; // words 2r and 2r + 1 share a lane
            for (int64_t st = 0; st < steps; ++st) {
                uint8_t v[4] = {0, 0, 0, 0};
                std::memcpy(v, src + 4 * st, size_t(st < full ? 4 : p.cols - 4 * st));
                uint8_t* q = o + st * 64 + at;
                q[0] = v[0];
                q[1] = v[1];
                q[8] = v[2];
                q[9] = v[3];
            }
        }
    }
}

thread_local scratch_buffer t_stage; // a tile's activations as [token][pair] words

// c[j] = column j of the 16 x 16 words r[0..15] (r[i] = row i). Masked forms with an explicit
// source throughout: GCC 12's unmasked ones read an "undefined" register.
inline void transpose16(const __m512i (&r)[16], __m512i (&c)[16]) {
    constexpr __mmask16 all = 0xffff;
    __m512i t[16], u[16], v[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_mask_unpacklo_epi32(r[2 * i], all, r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_mask_unpackhi_epi32(r[2 * i], all, r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) { // u[4i + k], 128-bit lane L: rows 4i .. 4i + 3 of column 4L + k
        u[4 * i] = _mm512_mask_unpacklo_epi64(t[4 * i], 0xff, t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_mask_unpackhi_epi64(t[4 * i], 0xff, t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_mask_unpacklo_epi64(t[4 * i + 1], 0xff, t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_mask_unpackhi_epi64(t[4 * i + 1], 0xff, t[4 * i + 1], t[4 * i + 3]);
    }
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm512_mask_shuffle_i32x4(u[k], all, u[k], u[4 + k], 0x88);
        v[k + 4] = _mm512_mask_shuffle_i32x4(u[k], all, u[k], u[4 + k], 0xdd);
        v[k + 8] = _mm512_mask_shuffle_i32x4(u[8 + k], all, u[8 + k], u[12 + k], 0x88);
        v[k + 12] = _mm512_mask_shuffle_i32x4(u[8 + k], all, u[8 + k], u[12 + k], 0xdd);
    }
    for (int k = 0; k < 4; ++k) {
        c[k] = _mm512_mask_shuffle_i32x4(v[k], all, v[k], v[k + 8], 0x88);
        c[k + 8] = _mm512_mask_shuffle_i32x4(v[k], all, v[k], v[k + 8], 0xdd);
        c[k + 4] = _mm512_mask_shuffle_i32x4(v[k + 4], all, v[k + 4], v[k + 12], 0x88);
        c[k + 12] = _mm512_mask_shuffle_i32x4(v[k + 4], all, v[k + 4], v[k + 12], 0xdd);
    }
}

// Tokens [t0, t1) into their tiles' [pair][16 tokens] words: each token's row rounded to BF16 pairs
// into a staging tile, then 16 x 16 transposes, storing only the slots of [t0, t1) (other threads may
// be packing the tile's other tokens).
void pack_x_lanes(const matmul_problem& p, int64_t t0, int64_t t1) {
    const int64_t C = p.cols, pairs = lanes_cols(C) / 2, stride = round_up(pairs, 16);
    auto* base = static_cast<uint32_t*>(p.x_packed);
    auto* stage = static_cast<uint32_t*>(t_stage.get(size_t(16 * stride) * 4));
    for (int64_t tile = t0 / k_lane_tile; tile * k_lane_tile < t1; ++tile) {
        const int64_t tb = tile * k_lane_tile > t0 ? tile * k_lane_tile : t0;
        const int64_t te = min64(t1, (tile + 1) * k_lane_tile);
        for (int64_t t = tb; t < te; ++t) {
            const float* xs = p.x + t * C;
            uint32_t* row = stage + (t % k_lane_tile) * stride;
            for (int64_t c0 = 0; c0 < 2 * stride; c0 += 32) {
                __m512 v[2];
                for (int k = 0; k < 2; ++k) {
                    const int64_t n = C - (c0 + 16 * k);
                    const __mmask16 m = n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
                    v[k] = _mm512_maskz_loadu_ps(m, xs + c0 + 16 * k);
                }
                // The same rounding as the stored-form path (cvtne2ps: nearest even).
                _mm512_store_si512(row + c0 / 2, (__m512i)_mm512_cvtne2ps_pbh(v[1], v[0]));
            }
        }
        uint32_t* out = base + tile * pairs * k_lane_tile;
        if (te - tb < 4) { // a transpose per 16 pairs would cost more than the stores it saves
            for (int64_t t = tb; t < te; ++t) {
                const uint32_t* row = stage + (t % k_lane_tile) * stride;
                for (int64_t q = 0; q < pairs; ++q) {
                    out[q * k_lane_tile + t % k_lane_tile] = row[q];
                }
            }
            continue;
        }
        const __mmask16 slots = __mmask16(((1u << (te - tb)) - 1) << (tb % k_lane_tile));
        for (int64_t p0 = 0; p0 < pairs; p0 += 16) {
            __m512i r[16], c[16];
            for (int i = 0; i < 16; ++i) {
                r[i] = _mm512_load_si512(stage + i * stride + p0); // rows outside [tb, te) are not stored
            }
            transpose16(r, c);
            const int64_t n = min64(16, pairs - p0);
            for (int64_t j = 0; j < n; ++j) {
                _mm512_mask_storeu_epi32(out + (p0 + j) * k_lane_tile, slots, c[j]);
            }
        }
    }
}

// RB blocks x TT tokens of one tile, FP8 or BF16, over steps [s0, s1) of one scale column block
// (FP8: dec holds that block's tables). acc[i][t]: block i, token t.
template <int TT, int RB, bool F8>
inline void lane_steps(const uint8_t* w, int64_t block_bytes, const uint32_t* xp, int64_t s0, int64_t s1,
                       const f8_decoder& dec, __m512 (&acc)[RB][TT]) {
    for (int64_t st = s0; st < s1; ++st) {
#pragma GCC unroll 8
        for (int i = 0; i < RB; ++i) {
            // Blocks lie back to back: reading ahead keeps the memory busy while this step's dots
            // run (without it the loads stall a quarter of a 16-sequence step; 1-4 KiB measured).
            const char* ahead =
                reinterpret_cast<const char*>(w + i * block_bytes + st * (F8 ? 64 : 128)) + k_lane_prefetch_bytes;
            _mm_prefetch(ahead, _MM_HINT_T0);
            if constexpr (!F8) {
                _mm_prefetch(ahead + 64, _MM_HINT_T0);
            }
            __m512i a, b;
            if constexpr (F8) {
                dec.decode(_mm512_loadu_si512(w + i * block_bytes + st * 64), a, b);
            } else {
                a = _mm512_loadu_si512(w + i * block_bytes + st * 128);
                b = _mm512_loadu_si512(w + i * block_bytes + st * 128 + 64);
            }
            const __m512bh va = (__m512bh)a, vb = (__m512bh)b;
            const uint32_t* xa = xp + (2 * st) * k_lane_tile;
#pragma GCC unroll 16
            for (int t = 0; t < TT; ++t) {
                acc[i][t] = _mm512_dpbf16_ps(acc[i][t], va, (__m512bh)_mm512_set1_epi32(int(xa[t])));
            }
#pragma GCC unroll 16
            for (int t = 0; t < TT; ++t) {
                acc[i][t] = _mm512_dpbf16_ps(acc[i][t], vb, (__m512bh)_mm512_set1_epi32(int(xa[k_lane_tile + t])));
            }
        }
    }
}

// Blocks [b0, b0 + RB) (one scale row block) against the TT tokens of one tile.
template <int TT, int RB>
void lane_tile(const matmul_problem& p, int64_t b0, const uint32_t* xp, float* y) {
    const int64_t steps = lanes_cols(p.cols) / 4;
    const bool f8 = p.type == dtype::f8_e4m3;
    const int64_t block_bytes = steps * 64 * (f8 ? 1 : 2);
    const uint8_t* w = p.lanes + b0 * block_bytes;
    __m512 acc[RB][TT];
#pragma GCC unroll 8
    for (int i = 0; i < RB; ++i) {
#pragma GCC unroll 16
        for (int t = 0; t < TT; ++t) {
            acc[i][t] = _mm512_setzero_ps();
        }
    }
    f8_decoder dec;
    if (!f8) {
        lane_steps<TT, RB, false>(w, block_bytes, xp, 0, steps, dec, acc);
    } else {
        const uint8_t* sc =
            p.scales ? p.scales + ((p.first_row + b0 * k_lane_rows) / p.scale_block_rows) * p.scale_row_stride
                     : nullptr;
        const int64_t per_block = sc ? p.scale_block_cols / 4 : steps;
        for (int64_t s0 = 0, cb = 0; s0 < steps; s0 += per_block, ++cb) {
            dec.use(sc ? sc[cb] : 127);
            lane_steps<TT, RB, true>(w, block_bytes, xp, s0, min64(steps, s0 + per_block), dec, acc);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < RB; ++i) {
#pragma GCC unroll 16
        for (int t = 0; t < TT; ++t) {
            _mm512_storeu_ps(y + t * p.rows + (b0 + i) * k_lane_rows, acc[i][t]);
        }
    }
}

// Blocks [b0, b1) against one tile of TT tokens: RB blocks at a time (no more than 16 accumulators)
// within each scale row block.
template <int TT>
void lane_rows(const matmul_problem& p, int64_t b0, int64_t b1, const uint32_t* xp, float* y) {
    constexpr int RB = TT <= 2 ? 8 : TT <= 4 ? 4 : TT <= 8 ? 2 : 1;
    const int64_t group = p.scales && p.type == dtype::f8_e4m3 ? p.scale_block_rows / k_lane_rows : int64_t(1) << 40;
    int64_t b = b0;
    while (b < b1) {
        // The end of b's scale row block, in blocks of this view.
        const int64_t first = p.first_row / k_lane_rows;
        const int64_t end = min64(b1, ((first + b) / group + 1) * group - first);
        for (; b + RB <= end; b += RB) {
            lane_tile<TT, RB>(p, b, xp, y);
        }
        for (; b < end; ++b) {
            lane_tile<TT, 1>(p, b, xp, y);
        }
    }
}

void compute_rows_lanes(const matmul_problem& p, int64_t r0, int64_t r1) {
    const int64_t pairs = lanes_cols(p.cols) / 2;
    const auto* x = static_cast<const uint32_t*>(p.x_packed);
    const int64_t b0 = r0 / k_lane_rows, b1 = (r1 + k_lane_rows - 1) / k_lane_rows;
    for (int64_t t0 = 0; t0 < p.n_tokens; t0 += k_lane_tile) {
        const uint32_t* xp = x + (t0 / k_lane_tile) * pairs * k_lane_tile;
        float* y = p.y + t0 * p.rows;
        switch (min64(k_lane_tile, p.n_tokens - t0)) {
#define CACHALOT_LANE_CASE(n)                                                                                          \
    case n:                                                                                                            \
        lane_rows<n>(p, b0, b1, xp, y);                                                                                \
        break;
            CACHALOT_LANE_CASE(1)
            CACHALOT_LANE_CASE(2)
            CACHALOT_LANE_CASE(3)
            CACHALOT_LANE_CASE(4)
            CACHALOT_LANE_CASE(5)
            CACHALOT_LANE_CASE(6)
            CACHALOT_LANE_CASE(7)
            CACHALOT_LANE_CASE(8)
            CACHALOT_LANE_CASE(9)
            CACHALOT_LANE_CASE(10)
            CACHALOT_LANE_CASE(11)
            CACHALOT_LANE_CASE(12)
            CACHALOT_LANE_CASE(13)
            CACHALOT_LANE_CASE(14)
            CACHALOT_LANE_CASE(15)
            CACHALOT_LANE_CASE(16)
#undef CACHALOT_LANE_CASE
        default:
            break;
        }
    }
}

// Rows of a strip whose decoded panel fits the cache level the token loop reads it from.
int64_t strip_rows(int64_t panel_row_bytes, int64_t n_tokens) {
    int64_t budget = n_tokens <= 8 ? (64 << 10) : (256 << 10);
    int64_t rows = budget / panel_row_bytes;
    rows = rows < 8 ? 8 : rows > 64 ? 64 : rows;
    return rows / 8 * 8;
}

// Rows [r0, r1) a strip at a time: strip(s0, n, rs) gives the strip's n rows as a [n][cp] panel,
// and every tile of tokens is multiplied from it while it is in cache.
template <class Elem, class Fn, class Strip>
void run_strips(const matmul_problem& p, int64_t r0, int64_t r1, int64_t cp, int64_t vec_elems,
                const Fn (&micro)[k_max_rt][k_max_tt], Strip strip) {
    const int64_t T = p.n_tokens, R = p.rows;
    const int64_t rs = strip_rows(cp * int64_t(sizeof(Elem)), T);
    const Elem* x = static_cast<const Elem*>(p.x_packed);
    const int64_t xs = p.x_packed_stride / int64_t(sizeof(Elem));
    // Few tokens: tall tiles keep enough independent accumulators; many: 4x6 reuses both loads.
    const int rt_max = T <= 2 ? 8 : 4;
    const int tt_max = T <= 2 ? 2 : 6;
    for (int64_t s0 = r0; s0 < r1; s0 += rs) {
        const int64_t sn = min64(rs, r1 - s0);
        const Elem* panel = strip(s0, sn, rs);
        for (int64_t t0 = 0; t0 < T; t0 += tt_max) {
            const int tn = int(min64(tt_max, T - t0));
            for (int64_t i0 = 0; i0 < sn; i0 += rt_max) {
                const int rn = int(min64(rt_max, sn - i0));
                micro[rn - 1][tn - 1](panel + i0 * cp, cp, x + t0 * xs, xs, cp / vec_elems, p.y + t0 * R + s0 + i0, R);
            }
        }
    }
}

// Strips decoded row by row into the per-thread panel.
template <class Elem, class Decode>
auto decoded_strips(int64_t cp, Decode decode) {
    return [cp, decode](int64_t s0, int64_t n, int64_t rs) {
        Elem* panel = static_cast<Elem*>(t_panel.get(size_t(rs * cp) * sizeof(Elem)));
        for (int64_t i = 0; i < n; ++i) {
            decode(s0 + i, panel + i * cp);
        }
        return static_cast<const Elem*>(panel);
    };
}

// F32 and BF16 rows that need no padding (cols == cp) are their own panel: the micro kernels read
// them where they lie (the copy would cost as much as the dots when there are few tokens, and a
// whole pass over a large head's memory when there are many).
template <class Elem>
auto strips_in_place(const matmul_problem& p, int64_t cp) {
    const Elem* w = reinterpret_cast<const Elem*>(p.data);
    return [w, cp](int64_t s0, int64_t, int64_t) { return w + s0 * cp; };
}

void compute_rows(const matmul_problem& p, int64_t r0, int64_t r1) {
    if (p.lanes) {
        compute_rows_lanes(p, r0, r1);
        return;
    }
    const int64_t cp = padded_cols(p.type, p.cols);
    switch (p.type) {
    case dtype::f32:
        if (p.cols == cp) {
            run_strips<float>(p, r0, r1, cp, 16, k_micro_f32, strips_in_place<float>(p, cp));
            return;
        }
        run_strips<float>(p, r0, r1, cp, 16, k_micro_f32,
                          decoded_strips<float>(cp, [&](int64_t r, float* out) { decode_row_f32(p, r, out, cp); }));
        return;
    case dtype::bf16:
        if (p.n_tokens <= k_max_fused_tokens) {
            fused_gemv(p, r0, r1, cp, fused_bf16{});
            return;
        }
        if (p.cols == cp) {
            run_strips<uint16_t>(p, r0, r1, cp, 32, k_micro_bf16, strips_in_place<uint16_t>(p, cp));
            return;
        }
        run_strips<uint16_t>(
            p, r0, r1, cp, 32, k_micro_bf16,
            decoded_strips<uint16_t>(cp, [&](int64_t r, uint16_t* out) { decode_row_bf16(p, r, out, cp); }));
        return;
    case dtype::f8_e4m3:
        if (p.n_tokens <= k_max_fused_tokens && !(p.scales && p.scale_block_cols % k_chunk != 0)) {
            fused_gemv(p, r0, r1, cp, fused_f8{});
            return;
        }
        run_strips<uint16_t>(
            p, r0, r1, cp, 32, k_micro_bf16,
            decoded_strips<uint16_t>(cp, [&](int64_t r, uint16_t* out) { decode_row_f8(p, r, out, cp); }));
        return;
    case dtype::fp4_e2m1:
        if (p.n_tokens <= k_max_fused_tokens && f4_plain(p)) {
            fused_gemv_f4(p, r0, r1);
            return;
        }
        if (p.n_tokens <= k_max_fused_tokens && !(p.scales && p.scale_block_cols != 32)) {
            fused_gemv(p, r0, r1, cp, fused_f4{tables()});
            return;
        }
        run_strips<uint16_t>(
            p, r0, r1, cp, 32, k_micro_bf16,
            decoded_strips<uint16_t>(cp, [&](int64_t r, uint16_t* out) { decode_row_f4(p, r, out, cp); }));
        return;
    default:
        return; // the dispatcher only sends weight types
    }
}

} // namespace

const matmul_kernel k_matmul_kernel_avx512 = {"avx512",     supported,   packed_x_bytes, pack_x,
                                              compute_rows, lanes_bytes, pack_lanes};

} // namespace cachalot

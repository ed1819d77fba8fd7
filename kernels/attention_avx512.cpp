// AVX-512 F32 attention kernels for the `fast` precision (see attention_cpu.h). Scores and the
// weighted sum are small GEMMs over one key set shared by all heads: 4 heads x 4 keys (scores)
// and 4 heads x 64 dims (weighted sum) per register tile, fused multiply-add, a vectorised exp.
// Results differ from the reference only in rounding (summation order, FMA, exp polynomial).
#include <immintrin.h>

#include <cstdint>

#include "kernels/attention_cpu.h"
#include "kernels/avx512_reduce.h"

namespace cachalot {
namespace {

bool avx512_supported() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

// e^x for x <= 0 (softmax after the max is subtracted); Cephes expf, ~1 ulp; 0 below -87.
inline __m512 exp_neg(__m512 x) {
    // The masked forms with an explicit source: GCC 12's unmasked ones read an "undefined"
    // register and trip -Wuninitialized.
    x = _mm512_mask_max_ps(x, 0xFFFF, x, _mm512_set1_ps(-87.0f));
    const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    const __m512 n = _mm512_mask_roundscale_ps(t, 0xFFFF, t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_mask_scalef_ps(p, 0xFFFF, p, n);
}

// Sixteen key elements as F32: F32 keys as they are, BF16 keys widened exactly (the bits shifted
// into the high half), so that a BF16 key set is computed exactly like its F32 expansion.
inline __m512 load_key(const float* k) {
    return _mm512_loadu_ps(k);
}
inline __m512 load_key(const uint16_t* k) {
    // Zero-masked forms: GCC 12's unmasked ones read an "undefined" register (-Wmaybe-uninitialized).
    const __m512i w = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_loadu_si256((const __m256i*)k));
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, w, 16));
}

/// s[h * ld + j] = scale · q_h · k_j for HB heads and KB keys. With `next` (KB keys of the next
/// tile), their lines are prefetched alongside: a decode row's keys lie in scattered ring and
/// entry rows, each a fresh stream the hardware prefetcher would pick up only part way.
template <int HB, int KB, class K>
inline void dot_tile(const float* q, int64_t d, const K* const* keys, float scale, float* s, int64_t ld,
                     const K* const* next = nullptr) {
    __m512 acc[HB][KB];
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
#pragma GCC unroll 4
        for (int j = 0; j < KB; ++j) {
            acc[h][j] = _mm512_setzero_ps();
        }
    }
    for (int64_t i = 0; i < d; i += 16) {
        __m512 k[KB];
#pragma GCC unroll 4
        for (int j = 0; j < KB; ++j) {
            k[j] = load_key(keys[j] + i);
            if (next && (sizeof(K) == 4 || i % 32 == 0)) { // a line per 64 bytes of key
                _mm_prefetch(reinterpret_cast<const char*>(next[j] + i), _MM_HINT_T0);
            }
        }
#pragma GCC unroll 4
        for (int h = 0; h < HB; ++h) {
            const __m512 qv = _mm512_loadu_ps(q + h * d + i);
#pragma GCC unroll 4
            for (int j = 0; j < KB; ++j) {
                acc[h][j] = _mm512_fmadd_ps(qv, k[j], acc[h][j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
        if constexpr (KB == 4) {
            _mm512_mask_storeu_ps(
                s + h * ld, 0x000f,
                _mm512_mul_ps(reduce16x4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]), _mm512_set1_ps(scale)));
        } else {
#pragma GCC unroll 4
            for (int j = 0; j < KB; ++j) {
                s[h * ld + j] = scale * reduce16(acc[h][j]);
            }
        }
    }
}

template <int HB, class K>
inline void dot_rows(const float* q, int64_t d, const K* const* keys, int64_t nk, float scale, float* s, int64_t ld) {
    int64_t j = 0;
    for (; j + 4 <= nk; j += 4) {
        dot_tile<HB, 4>(q, d, keys + j, scale, s + j, ld, j + 8 <= nk ? keys + j + 4 : nullptr);
    }
    for (; j < nk; ++j) {
        dot_tile<HB, 1>(q, d, keys + j, scale, s + j, ld);
    }
}

/// out[h][i0 .. i0 + 16·VB) = inv[h] · Σ_j p[h * ld + j] · k_j[i0 ..] for HB heads.
template <int HB, int VB, class K>
inline void weighted_tile(const float* p, int64_t ld, const K* const* keys, int64_t nk, int64_t i0, const float* inv,
                          float* out, int64_t d) {
    __m512 acc[HB][VB];
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
#pragma GCC unroll 4
        for (int v = 0; v < VB; ++v) {
            acc[h][v] = _mm512_setzero_ps();
        }
    }
    for (int64_t j = 0; j < nk; ++j) {
        __m512 k[VB];
#pragma GCC unroll 4
        for (int v = 0; v < VB; ++v) {
            k[v] = load_key(keys[j] + i0 + 16 * v);
        }
#pragma GCC unroll 4
        for (int h = 0; h < HB; ++h) {
            const __m512 pb = _mm512_set1_ps(p[h * ld + j]);
#pragma GCC unroll 4
            for (int v = 0; v < VB; ++v) {
                acc[h][v] = _mm512_fmadd_ps(pb, k[v], acc[h][v]);
            }
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
        const __m512 s = _mm512_set1_ps(inv[h]);
#pragma GCC unroll 4
        for (int v = 0; v < VB; ++v) {
            _mm512_storeu_ps(out + h * d + i0 + 16 * v, _mm512_mul_ps(acc[h][v], s));
        }
    }
}

template <int HB, class K>
inline void weighted_rows(const float* p, int64_t ld, const K* const* keys, int64_t nk, const float* inv, float* out,
                          int64_t d) {
    int64_t i = 0;
    for (; i + 64 <= d; i += 64) {
        weighted_tile<HB, 4>(p, ld, keys, nk, i, inv, out, d);
    }
    for (; i < d; i += 16) {
        weighted_tile<HB, 1>(p, ld, keys, nk, i, inv, out, d);
    }
}

/// In place: s[0..nk) → exp(s − m) with m = max(sink, s); returns 1 / (e^(sink − m) + Σ).
float softmax_with_sink(float* s, int64_t nk, float sink) {
    __m512 mv = _mm512_set1_ps(sink);
    int64_t j = 0;
    for (; j + 16 <= nk; j += 16) {
        mv = _mm512_mask_max_ps(mv, 0xFFFF, mv, _mm512_loadu_ps(s + j));
    }
    if (j < nk) {
        const __mmask16 tail = __mmask16((1u << (nk - j)) - 1);
        mv = _mm512_mask_max_ps(mv, tail, mv, _mm512_maskz_loadu_ps(tail, s + j));
    }
    const float m = reduce_max16(mv);
    const __m512 mb = _mm512_set1_ps(m);
    __m512 sum = _mm512_setzero_ps();
    for (j = 0; j + 16 <= nk; j += 16) {
        const __m512 e = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(s + j), mb));
        _mm512_storeu_ps(s + j, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (j < nk) {
        const __mmask16 tail = __mmask16((1u << (nk - j)) - 1);
        const __m512 e = exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + j), mb));
        _mm512_mask_storeu_ps(s + j, tail, e);
        sum = _mm512_mask_add_ps(sum, tail, sum, e);
    }
    const __m512 es = exp_neg(_mm512_set1_ps(sink - m));
    return 1.0f / (reduce16(sum) + _mm512_cvtss_f32(es));
}

template <class K>
void sink_heads(const float* q, int64_t n_heads, const K* const* keys, int64_t nk, int64_t d, float scale,
                const float* sinks, float* scratch, float* out) {
    int64_t h = 0;
    for (; h + 4 <= n_heads; h += 4) {
        dot_rows<4>(q + h * d, d, keys, nk, scale, scratch + h * nk, nk);
    }
    for (; h < n_heads; ++h) {
        dot_rows<1>(q + h * d, d, keys, nk, scale, scratch + h * nk, nk);
    }
    float inv[4];
    for (h = 0; h + 4 <= n_heads; h += 4) {
        for (int k = 0; k < 4; ++k) {
            inv[k] = softmax_with_sink(scratch + (h + k) * nk, nk, sinks[h + k]);
        }
        weighted_rows<4>(scratch + h * nk, nk, keys, nk, inv, out + h * d, d);
    }
    for (; h < n_heads; ++h) {
        inv[0] = softmax_with_sink(scratch + h * nk, nk, sinks[h]);
        weighted_rows<1>(scratch + h * nk, nk, keys, nk, inv, out + h * d, d);
    }
}

void indexer_scores(const float* q, const float* weights, int64_t n_heads, int64_t head_dim, const float* keys,
                    int64_t n_keys, float* scores) {
    const float* kp[4];
    float dots[4 * 4];
    int64_t w = 0;
    for (; w < n_keys; w += 4) {
        const int kb = n_keys - w >= 4 ? 4 : int(n_keys - w);
        for (int j = 0; j < kb; ++j) {
            kp[j] = keys + (w + j) * head_dim;
        }
        // The four keys' sums in the lanes of one register, heads added in order; a lane whose dot
        // is not positive is left as it is (acc + 0 is acc: acc is never -0).
        const __mmask16 lanes = __mmask16((1u << kb) - 1);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t h = 0; h < n_heads;) {
            const int hb = n_heads - h >= 4 ? 4 : 1;
            if (hb == 4 && kb == 4) {
                dot_tile<4, 4>(q + h * head_dim, head_dim, kp, 1.0f, dots, 4);
            } else {
                for (int hh = 0; hh < hb; ++hh) {
                    for (int j = 0; j < kb; ++j) {
                        dot_tile<1, 1>(q + (h + hh) * head_dim, head_dim, kp + j, 1.0f, dots + hh * 4 + j, 4);
                    }
                }
            }
            for (int hh = 0; hh < hb; ++hh) {
                const __m512 v = _mm512_maskz_loadu_ps(lanes, dots + hh * 4);
                const __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
                acc = _mm512_mask_add_ps(acc, pos, acc, _mm512_mul_ps(_mm512_set1_ps(weights[h + hh]), v));
            }
            h += hb;
        }
        _mm512_mask_storeu_ps(scores + w, lanes, acc);
    }
}

// ---- BF16 indexer scores (needs AVX512_BF16 too; the dispatcher checks) ----------------------------

// Round to nearest even, NaN kept quiet: a local copy of dtype.h's f32_to_bf16 (this file may not
// call inline functions of other headers, see attention_cpu.h).
inline uint16_t bf16_bits(float f) {
    uint32_t b;
    __builtin_memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return uint16_t((b >> 16) | 0x40);
    }
    b += 0x7fffu + ((b >> 16) & 1u);
    return uint16_t(b >> 16);
}

// HB heads against KB blocks of 16 keys: one vdpbf16ps per (head, block, dim pair), each lane a key
// summed in dim-pair order, no horizontal sums. qp: the heads' dim pairs as 32-bit words.
template <int HB, int KB>
__attribute__((target("avx512bf16"))) inline void lane_dots(const uint32_t* qp, int64_t pairs, const uint16_t* blocks,
                                                            int64_t block_elems, __m512 (&acc)[HB][KB]) {
#pragma GCC unroll 8
    for (int h = 0; h < HB; ++h) {
#pragma GCC unroll 2
        for (int b = 0; b < KB; ++b) {
            acc[h][b] = _mm512_setzero_ps();
        }
    }
    for (int64_t j = 0; j < pairs; ++j) {
        __m512bh k[KB];
#pragma GCC unroll 2
        for (int b = 0; b < KB; ++b) {
            k[b] = (__m512bh)_mm512_loadu_si512(blocks + b * block_elems + j * 32);
        }
#pragma GCC unroll 8
        for (int h = 0; h < HB; ++h) {
            const __m512bh qv = (__m512bh)_mm512_set1_epi32(int(qp[h * pairs + j]));
#pragma GCC unroll 2
            for (int b = 0; b < KB; ++b) {
                acc[h][b] = _mm512_dpbf16_ps(acc[h][b], k[b], qv);
            }
        }
    }
}

// s += weights[h] · dot for the lanes whose dot is positive, heads in order (acc + 0 is acc).
template <int HB, int KB>
inline void add_heads(const __m512 (&acc)[HB][KB], const float* weights, __m512 (&s)[KB]) {
#pragma GCC unroll 8
    for (int h = 0; h < HB; ++h) {
        const __m512 w = _mm512_set1_ps(weights[h]);
#pragma GCC unroll 2
        for (int b = 0; b < KB; ++b) {
            const __mmask16 pos = _mm512_cmp_ps_mask(acc[h][b], _mm512_setzero_ps(), _CMP_GT_OQ);
            s[b] = _mm512_mask_add_ps(s[b], pos, s[b], _mm512_mul_ps(w, acc[h][b]));
        }
    }
}

template <int KB>
__attribute__((target("avx512bf16"))) void score_blocks(const uint32_t* qp, const float* weights, int64_t n_heads,
                                                        int64_t pairs, const uint16_t* blocks, int64_t block_elems,
                                                        int64_t n_keys, float* scores) {
    __m512 s[KB];
#pragma GCC unroll 2
    for (int b = 0; b < KB; ++b) {
        s[b] = _mm512_setzero_ps();
    }
    int64_t h = 0;
    for (; h + 8 <= n_heads; h += 8) {
        __m512 acc[8][KB];
        lane_dots<8, KB>(qp + h * pairs, pairs, blocks, block_elems, acc);
        add_heads<8, KB>(acc, weights + h, s);
    }
    for (; h < n_heads; ++h) {
        __m512 acc[1][KB];
        lane_dots<1, KB>(qp + h * pairs, pairs, blocks, block_elems, acc);
        add_heads<1, KB>(acc, weights + h, s);
    }
#pragma GCC unroll 2
    for (int b = 0; b < KB; ++b) {
        const int64_t n = n_keys - 16 * b;
        const __mmask16 m = n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
        _mm512_mask_storeu_ps(scores + 16 * b, m, s[b]);
    }
}

__attribute__((target("avx512bf16"))) void indexer_scores_bf16(const float* q, const float* weights, int64_t n_heads,
                                                               int64_t head_dim, const uint16_t* key_lanes,
                                                               int64_t n_keys, float* scores) {
    // The query's dim pairs as words (the low half the even dim), one broadcast each per step.
    const int64_t pairs = head_dim / 2, block_elems = 16 * head_dim;
    auto* qp = static_cast<uint32_t*>(__builtin_alloca(size_t(n_heads * pairs) * sizeof(uint32_t)));
    for (int64_t i = 0; i < n_heads * pairs; ++i) {
        qp[i] = uint32_t(bf16_bits(q[2 * i])) | uint32_t(bf16_bits(q[2 * i + 1])) << 16;
    }
    int64_t w = 0;
    for (; w + 16 < n_keys; w += 32) {
        score_blocks<2>(qp, weights, n_heads, pairs, key_lanes + (w / 16) * block_elems, block_elems, n_keys - w,
                        scores + w);
    }
    for (; w < n_keys; w += 16) {
        score_blocks<1>(qp, weights, n_heads, pairs, key_lanes + (w / 16) * block_elems, block_elems, n_keys - w,
                        scores + w);
    }
}

// 16 channels at a time: the running max over slots, then Σ e·a and Σ e.
void compress_pool(const float* const* a, const float* const* b, int64_t n_slots, int64_t dim, float* out) {
    for (int64_t c = 0; c < dim; c += 16) {
        const __mmask16 m = dim - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (dim - c)) - 1);
        __m512 mx = _mm512_set1_ps(-3.0e38f);
        for (int64_t s = 0; s < n_slots; ++s) {
            mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, b[s] + c));
        }
        __m512 num = _mm512_setzero_ps(), den = _mm512_setzero_ps();
        for (int64_t s = 0; s < n_slots; ++s) {
            const __m512 e = exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, b[s] + c), mx));
            den = _mm512_add_ps(den, e);
            num = _mm512_fmadd_ps(e, _mm512_maskz_loadu_ps(m, a[s] + c), num);
        }
        _mm512_mask_storeu_ps(out + c, m, _mm512_div_ps(num, den));
    }
}

} // namespace

const attention_kernel k_attention_kernel_avx512 = {
    "avx512",      avx512_supported,    sink_heads<float>,   indexer_scores,
    compress_pool, indexer_scores_bf16, sink_heads<uint16_t>};

} // namespace cachalot

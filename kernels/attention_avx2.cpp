// AVX2 F32 attention kernels for the `fast` precision on x86 machines without AVX-512 (see
// attention_cpu.h). The AVX-512 file's scheme at half the width and with tiles sized for 16
// registers: 4 heads x 2 keys (scores) and 4 heads x 16 dims (weighted sum).
#include <immintrin.h>

#include <cstdint>

#include "kernels/attention_cpu.h"

namespace cachalot {
namespace {

bool avx2_supported() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

inline float reduce_add(__m256 a) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

inline float reduce_max(__m256 a) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

// e^x for x <= 0: Cephes expf as in the AVX-512 file; 2^n is built in the exponent bits.
inline __m256 exp_neg(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // n >= -126 here (x >= -87), so 2^n is a normal number.
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// Eight key elements as F32: BF16 keys widened exactly (see the AVX-512 file).
inline __m256 load_key(const float* k) {
    return _mm256_loadu_ps(k);
}
inline __m256 load_key(const uint16_t* k) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)k)), 16));
}

template <int HB, int KB, class K>
inline void dot_tile(const float* q, int64_t d, const K* const* keys, float scale, float* s, int64_t ld) {
    __m256 acc[HB][KB];
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
#pragma GCC unroll 4
        for (int j = 0; j < KB; ++j) {
            acc[h][j] = _mm256_setzero_ps();
        }
    }
    for (int64_t i = 0; i < d; i += 8) {
        __m256 k[KB];
#pragma GCC unroll 4
        for (int j = 0; j < KB; ++j) {
            k[j] = load_key(keys[j] + i);
        }
#pragma GCC unroll 4
        for (int h = 0; h < HB; ++h) {
            const __m256 qv = _mm256_loadu_ps(q + h * d + i);
#pragma GCC unroll 4
            for (int j = 0; j < KB; ++j) {
                acc[h][j] = _mm256_fmadd_ps(qv, k[j], acc[h][j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
#pragma GCC unroll 4
        for (int j = 0; j < KB; ++j) {
            s[h * ld + j] = scale * reduce_add(acc[h][j]);
        }
    }
}

template <int HB, class K>
inline void dot_rows(const float* q, int64_t d, const K* const* keys, int64_t nk, float scale, float* s, int64_t ld) {
    int64_t j = 0;
    for (; j + 2 <= nk; j += 2) {
        dot_tile<HB, 2>(q, d, keys + j, scale, s + j, ld);
    }
    for (; j < nk; ++j) {
        dot_tile<HB, 1>(q, d, keys + j, scale, s + j, ld);
    }
}

template <int HB, int VB, class K>
inline void weighted_tile(const float* p, int64_t ld, const K* const* keys, int64_t nk, int64_t i0, const float* inv,
                          float* out, int64_t d) {
    __m256 acc[HB][VB];
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
#pragma GCC unroll 4
        for (int v = 0; v < VB; ++v) {
            acc[h][v] = _mm256_setzero_ps();
        }
    }
    for (int64_t j = 0; j < nk; ++j) {
        __m256 k[VB];
#pragma GCC unroll 4
        for (int v = 0; v < VB; ++v) {
            k[v] = load_key(keys[j] + i0 + 8 * v);
        }
#pragma GCC unroll 4
        for (int h = 0; h < HB; ++h) {
            const __m256 pb = _mm256_broadcast_ss(p + h * ld + j);
#pragma GCC unroll 4
            for (int v = 0; v < VB; ++v) {
                acc[h][v] = _mm256_fmadd_ps(pb, k[v], acc[h][v]);
            }
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
        const __m256 s = _mm256_set1_ps(inv[h]);
#pragma GCC unroll 4
        for (int v = 0; v < VB; ++v) {
            _mm256_storeu_ps(out + h * d + i0 + 8 * v, _mm256_mul_ps(acc[h][v], s));
        }
    }
}

template <int HB, class K>
inline void weighted_rows(const float* p, int64_t ld, const K* const* keys, int64_t nk, const float* inv, float* out,
                          int64_t d) {
    for (int64_t i = 0; i < d; i += 16) { // d is a multiple of 16
        weighted_tile<HB, 2>(p, ld, keys, nk, i, inv, out, d);
    }
}

float softmax_with_sink(float* s, int64_t nk, float sink) {
    __m256 mv = _mm256_set1_ps(sink);
    int64_t j = 0;
    for (; j + 8 <= nk; j += 8) {
        mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
    }
    float m = reduce_max(mv);
    for (; j < nk; ++j) {
        m = s[j] > m ? s[j] : m;
    }
    const __m256 mb = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    for (j = 0; j + 8 <= nk; j += 8) {
        const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(s + j), mb));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    float total = reduce_add(sum);
    if (j < nk) {
        float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t t = j; t < nk; ++t) {
            tail[t - j] = s[t] - m;
        }
        float e[8];
        _mm256_storeu_ps(e, exp_neg(_mm256_loadu_ps(tail)));
        for (int64_t t = j; t < nk; ++t) {
            s[t] = e[t - j];
            total += e[t - j];
        }
    }
    float es[8];
    _mm256_storeu_ps(es, exp_neg(_mm256_set1_ps(sink - m)));
    return 1.0f / (total + es[0]);
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
    const float* kp[2];
    float dots[4 * 2] = {};
    for (int64_t w = 0; w < n_keys; w += 2) {
        const int kb = n_keys - w >= 2 ? 2 : 1;
        for (int j = 0; j < kb; ++j) {
            kp[j] = keys + (w + j) * head_dim;
        }
        // The two keys' sums in the low lanes of one register, heads added in order; a lane whose
        // dot is not positive gets + 0, which leaves it as it is (acc is never -0).
        __m128 acc = _mm_setzero_ps();
        for (int64_t h = 0; h < n_heads;) {
            const int hb = n_heads - h >= 4 ? 4 : 1;
            if (hb == 4 && kb == 2) {
                dot_tile<4, 2>(q + h * head_dim, head_dim, kp, 1.0f, dots, 2);
            } else {
                for (int hh = 0; hh < hb; ++hh) {
                    for (int j = 0; j < kb; ++j) {
                        dot_tile<1, 1>(q + (h + hh) * head_dim, head_dim, kp + j, 1.0f, dots + hh * 2 + j, 2);
                    }
                }
            }
            for (int hh = 0; hh < hb; ++hh) {
                const __m128 v = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(dots + hh * 2)));
                const __m128 pos = _mm_cmp_ps(v, _mm_setzero_ps(), _CMP_GT_OQ);
                acc = _mm_add_ps(acc, _mm_and_ps(pos, _mm_mul_ps(_mm_set1_ps(weights[h + hh]), v)));
            }
            h += hb;
        }
        if (kb == 2) {
            _mm_store_sd(reinterpret_cast<double*>(scores + w), _mm_castps_pd(acc));
        } else {
            scores[w] = _mm_cvtss_f32(acc);
        }
    }
}

// 8 channels at a time (dim is a multiple of 16 here): the running max over slots, then Σ e·a
// and Σ e.
void compress_pool(const float* const* a, const float* const* b, int64_t n_slots, int64_t dim, float* out) {
    for (int64_t c = 0; c < dim; c += 8) {
        __m256 mx = _mm256_set1_ps(-3.0e38f);
        for (int64_t s = 0; s < n_slots; ++s) {
            mx = _mm256_max_ps(mx, _mm256_loadu_ps(b[s] + c));
        }
        __m256 num = _mm256_setzero_ps(), den = _mm256_setzero_ps();
        for (int64_t s = 0; s < n_slots; ++s) {
            const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(b[s] + c), mx));
            den = _mm256_add_ps(den, e);
            num = _mm256_fmadd_ps(e, _mm256_loadu_ps(a[s] + c), num);
        }
        _mm256_storeu_ps(out + c, _mm256_div_ps(num, den));
    }
}

} // namespace

const attention_kernel k_attention_kernel_avx2 = {"avx2",        avx2_supported, sink_heads<float>,   indexer_scores,
                                                  compress_pool, nullptr,        sink_heads<uint16_t>};

} // namespace cachalot

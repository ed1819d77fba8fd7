// Reference attention kernels; see attention.h.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"

namespace cachalot {

// Cloned per ISA like dot_f32: every loop below either reduces through dot_f32 or updates each
// output element in a fixed sequential order, so all clones give the same bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CACHALOT_ISA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CACHALOT_ISA_CLONES
#endif

CACHALOT_ISA_CLONES
void attention_with_sink(const float* q, const float* const* keys, int64_t nk, int64_t d, float scale, float sink,
                         float* scratch, float* out) {
    float m = sink;
    for (int64_t j = 0; j < nk; ++j) {
        scratch[j] = dot_f32(q, keys[j], d) * scale;
        m = std::max(m, scratch[j]);
    }
    double denom = std::exp(double(sink) - double(m));
    for (int64_t i = 0; i < d; ++i) {
        out[i] = 0.0f;
    }
    for (int64_t j = 0; j < nk; ++j) {
        float p = float(std::exp(double(scratch[j]) - double(m)));
        denom += p;
        const float* k = keys[j];
        for (int64_t i = 0; i < d; ++i) {
            out[i] += p * k[i];
        }
    }
    float inv = float(1.0 / denom);
    for (int64_t i = 0; i < d; ++i) {
        out[i] *= inv;
    }
}

CACHALOT_ISA_CLONES
void attention_with_sink_heads(const float* q, int64_t n_heads, const float* const* keys, int64_t nk, int64_t d,
                               float scale, const float* sinks, float* scratch, float* out) {
    // Pass 1: scores, key-major so each key is loaded once for every head.
    for (int64_t j = 0; j < nk; ++j) {
        for (int64_t h = 0; h < n_heads; ++h) {
            scratch[h * nk + j] = dot_f32(q + h * d, keys[j], d) * scale;
        }
    }
    // Pass 2: per head, the stabiliser and the unnormalised weights (sink in the denominator).
    std::vector<double> denom(static_cast<size_t>(n_heads));
    for (int64_t h = 0; h < n_heads; ++h) {
        float* s = scratch + h * nk;
        float m = sinks[h];
        for (int64_t j = 0; j < nk; ++j) {
            m = std::max(m, s[j]);
        }
        double den = std::exp(double(sinks[h]) - double(m));
        for (int64_t j = 0; j < nk; ++j) {
            s[j] = float(std::exp(double(s[j]) - double(m)));
            den += s[j];
        }
        denom[size_t(h)] = den;
        for (int64_t i = 0; i < d; ++i) {
            out[h * d + i] = 0.0f;
        }
    }
    // Pass 3: weighted sum, key-major again; each output element still sums keys in order.
    for (int64_t j = 0; j < nk; ++j) {
        const float* k = keys[j];
        for (int64_t h = 0; h < n_heads; ++h) {
            const float p = scratch[h * nk + j];
            float* o = out + h * d;
            for (int64_t i = 0; i < d; ++i) {
                o[i] += p * k[i];
            }
        }
    }
    for (int64_t h = 0; h < n_heads; ++h) {
        const float inv = float(1.0 / denom[size_t(h)]);
        for (int64_t i = 0; i < d; ++i) {
            out[h * d + i] *= inv;
        }
    }
}

void attention_with_sink_heads_bf16(const float* q, int64_t n_heads, const uint16_t* const* keys, int64_t nk, int64_t d,
                                    float scale, const float* sinks, float* scratch, float* out) {
    std::vector<float> wide(size_t(nk * d));
    std::vector<const float*> ptrs(static_cast<size_t>(nk));
    for (int64_t j = 0; j < nk; ++j) {
        for (int64_t i = 0; i < d; ++i) {
            wide[size_t(j * d + i)] = bf16_to_f32(keys[j][i]);
        }
        ptrs[size_t(j)] = wide.data() + j * d;
    }
    attention_with_sink_heads(q, n_heads, ptrs.data(), nk, d, scale, sinks, scratch, out);
}

CACHALOT_ISA_CLONES
void indexer_scores(const float* q, const float* weights, int64_t n_heads, int64_t head_dim, const float* keys,
                    int64_t n_keys, float* scores) {
    for (int64_t w = 0; w < n_keys; ++w) {
        const float* k = keys + w * head_dim;
        float s = 0.0f;
        for (int64_t h = 0; h < n_heads; ++h) {
            float v = dot_f32(q + h * head_dim, k, head_dim);
            if (v > 0.0f) {
                s += weights[h] * v;
            }
        }
        scores[w] = s;
    }
}

namespace {

// vdpbf16ps' arithmetic, spelled out: a BF16 input with a zero exponent reads as (signed) zero, and
// a result below the smallest normal float is flushed to (signed) zero.
float bf16_daz(uint16_t v) {
    return (v & 0x7f80u) == 0 ? bits_to_f32(uint32_t(v & 0x8000u) << 16) : bf16_to_f32(v);
}
float ftz(float x) {
    return std::fabs(x) < FLT_MIN ? std::copysign(0.0f, x) : x;
}

} // namespace

void indexer_key_to_lanes(const float* key, int64_t head_dim, int64_t w, uint16_t* lanes) {
    uint16_t* block = lanes + (w / k_index_lanes) * indexer_lane_block_elems(head_dim);
    const int64_t lane = w % k_index_lanes;
    for (int64_t i = 0; i < head_dim; ++i) {
        block[(i / 2) * 2 * k_index_lanes + 2 * lane + i % 2] = f32_to_bf16(key[i]);
    }
}

void indexer_scores_bf16(const float* q, const float* weights, int64_t n_heads, int64_t head_dim,
                         const uint16_t* key_lanes, int64_t n_keys, float* scores) {
    std::vector<uint16_t> qb(static_cast<size_t>(n_heads * head_dim));
    for (size_t i = 0; i < qb.size(); ++i) {
        qb[i] = f32_to_bf16(q[i]);
    }
    for (int64_t w = 0; w < n_keys; ++w) {
        const uint16_t* k =
            key_lanes + (w / k_index_lanes) * indexer_lane_block_elems(head_dim) + 2 * (w % k_index_lanes);
        float s = 0.0f;
        for (int64_t h = 0; h < n_heads; ++h) {
            const uint16_t* qh = qb.data() + h * head_dim;
            float acc = 0.0f;
            for (int64_t j = 0; j < head_dim / 2; ++j) {
                const uint16_t* kj = k + j * 2 * k_index_lanes;
                acc = ftz(acc + ftz(bf16_daz(qh[2 * j + 1]) * bf16_daz(kj[1])));
                acc = ftz(acc + ftz(bf16_daz(qh[2 * j]) * bf16_daz(kj[0])));
            }
            if (acc > 0.0f) {
                s += weights[h] * acc;
            }
        }
        scores[w] = s;
    }
}

} // namespace cachalot

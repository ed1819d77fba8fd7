// The V4 forward pass (spec §2): mHC around every sub-layer, sliding-window / CSA / HCA
// attention with sinks, the compressors and the lightning indexer, MoE with hash or learned
// routing, HCHead and the head; and the MTP block (§2.11). All activations are F32; only the
// matmuls change with the precision. Rows of a batch are grouped per sequence, and each
// sequence's rows are consecutive positions, so chunked prefill and decode are the same code.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <type_traits>

#include "engine/model.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/compress_pool.h"
#include "kernels/dtype.h"
#include "kernels/sinkhorn.h"

namespace cachalot {

namespace {

// Shape legend: N = rows in the batch, n = hc_mult streams, D = hidden, H = heads, d = head_dim,
// dr = rope dims, E = routed experts, K = experts per token, I = expert width.

struct seq_rows {
    int64_t begin = 0, end = 0; // rows [begin, end) of the batch
    int64_t pos0 = 0;           // position of row `begin`
    layer_state* layer = nullptr;
};

struct batch_rows {
    std::vector<seq_rows> seqs;
    std::vector<int64_t> pos;   // [N]
    std::vector<int32_t> token; // [N]
    int64_t size() const { return int64_t(pos.size()); }
};

/// A float buffer that is not zero-filled, for temporaries whose every element is written before
/// it is read (zero-filling them cost ~14 % of prefill time). Freed buffers are kept per thread
/// and reused: a fresh multi-megabyte allocation is a fresh mapping, and faulting its pages in
/// again on every layer cost ~10 % of prefill.
class scratch {
public:
    scratch() = default;
    explicit scratch(int64_t n) {
        if (n > 0) {
            b_ = take(size_t(n));
        }
    }
    ~scratch() {
        if (b_.p) {
            give(b_);
        }
    }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;
    float* data() { return b_.p; }
    const float* data() const { return b_.p; }
    float& operator[](size_t i) { return b_.p[i]; }
    float operator[](size_t i) const { return b_.p[i]; }

private:
    struct block {
        size_t size = 0; // capacity in floats
        float* p = nullptr;
    };
    // Bounded so that one huge prefill does not pin its buffers for the life of the thread.
    static constexpr size_t k_max_blocks = 24;
    static constexpr size_t k_max_floats = size_t(64) << 20; // 256 MiB per thread
    struct cache {
        std::vector<block> blocks;
        size_t floats = 0;
        ~cache() {
            for (auto& b : blocks) {
                delete[] b.p;
            }
        }
    };
    static cache& free_blocks() {
        thread_local cache c;
        return c;
    }
    static block take(size_t n) {
        cache& c = free_blocks();
        size_t best = c.blocks.size();
        for (size_t i = 0; i < c.blocks.size(); ++i) {
            if (c.blocks[i].size >= n && (best == c.blocks.size() || c.blocks[i].size < c.blocks[best].size)) {
                best = i;
            }
        }
        if (best == c.blocks.size()) {
            return {n, new float[n]};
        }
        block b = c.blocks[best];
        c.floats -= b.size;
        c.blocks[best] = c.blocks.back();
        c.blocks.pop_back();
        return b;
    }
    static void give(block b) {
        cache& c = free_blocks();
        if (c.blocks.size() >= k_max_blocks || c.floats + b.size > k_max_floats) {
            delete[] b.p;
            return;
        }
        c.blocks.push_back(b);
        c.floats += b.size;
    }

    block b_;
};

// Batches up to this many rows are decode-like: per-row work beats one small matmul for all.
constexpr int64_t k_decode_rows = 64;

void rmsnorm_rows(const float* x, const float* w, int64_t n_rows, int64_t dim, float eps, float* out) {
    for (int64_t r = 0; r < n_rows; ++r) {
        rmsnorm(x + r * dim, w, dim, eps, out + r * dim);
    }
}

// ---- mHC ---------------------------------------------------------------------------------------

/// HC_pre over all rows: u [N][D], post [N][n], comb [N][n][n] (comb[j][k]: source j → stream k).
void hc_pre(const model_config& cfg, const hc_weights& hw, const float* X, int64_t N, float* u, float* post,
            float* comb, precision prec, thread_pool& pool) {
    const int64_t n = cfg.hc_mult, D = cfg.hidden_size, nD = n * D;
    const int64_t M = (2 + n) * n;
    const double eps = cfg.hc_eps;
    // The mixing logits through the F32 matmul (exact: the same dot_f32 per element). Prefill
    // runs it once for all rows; decode-sized batches a few rows at a time on the thread that owns
    // them, because a 24-row matmul splits its rows two to one across threads and copies x first
    // (~4x slower at 16 rows), and one row at a time would read the 24 x 4D function once per row.
    // Its results do not depend on the token count: same bits.
    weight_view fn;
    fn.type = dtype::f32;
    fn.rows = M;
    fn.cols = nD;
    fn.data = hw.fn.data();
    const bool per_row = N <= k_decode_rows;
    scratch mix(per_row ? 0 : N * M);
    if (!per_row) {
        matmul(fn, X, N, mix.data(), prec, pool);
    }
    const int64_t rows_per_chunk = std::max<int64_t>(1, N / (2 * int64_t(pool.size())));
    pool.parallel_for(N, rows_per_chunk, [&](int64_t r0, int64_t r1) {
        std::vector<float> chunk_mix(per_row ? static_cast<size_t>((r1 - r0) * M) : 0);
        if (per_row) {
            matmul(fn, X + r0 * nD, r1 - r0, chunk_mix.data(), prec, pool);
        }
        std::vector<double> m(static_cast<size_t>(M));
        std::vector<double> C(size_t(n * n));
        for (int64_t r = r0; r < r1; ++r) {
            const float* f = X + r * nD;
            const float* mr = per_row ? chunk_mix.data() + (r - r0) * M : mix.data() + r * M;
            double rho = 1.0 / std::sqrt(sum_squares(f, nD) / double(nD) + cfg.rms_norm_eps);
            for (int64_t j = 0; j < M; ++j) {
                m[size_t(j)] = rho * double(mr[j]);
            }
            float* ur = u + r * D;
            std::fill(ur, ur + D, 0.0f);
            for (int64_t k = 0; k < n; ++k) {
                float pre = float(1.0 / (1.0 + std::exp(-(hw.scale[0] * m[size_t(k)] + hw.base[size_t(k)]))) + eps);
                post[r * n + k] =
                    float(2.0 / (1.0 + std::exp(-(hw.scale[1] * m[size_t(n + k)] + hw.base[size_t(n + k)]))));
                const float* xk = f + k * D;
                for (int64_t i = 0; i < D; ++i) {
                    ur[i] += pre * xk[i];
                }
            }
            for (int64_t i = 0; i < n * n; ++i) {
                C[size_t(i)] = hw.scale[2] * m[size_t(2 * n + i)] + hw.base[size_t(2 * n + i)];
            }
            sinkhorn(C.data(), n, cfg.hc_sinkhorn_iters, eps);
            for (int64_t i = 0; i < n * n; ++i) {
                comb[r * n * n + i] = float(C[size_t(i)]);
            }
        }
    });
}

/// X'[k] = post_k·Y + Σ_j C[j][k]·X[j], in place over X [N][n][D].
void hc_post(const model_config& cfg, const float* Y, const float* post, const float* comb, int64_t N, float* X,
             thread_pool& pool) {
    const int64_t n = cfg.hc_mult, D = cfg.hidden_size;
    pool.parallel_for(N, 1, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            mix_streams(Y + r * D, post + r * n, comb + r * n * n, n, D, X + r * n * D);
        }
    });
}

/// HCHead: y[D] = Σ_k pre_k·X[k] with pre from hc_head_*.
void hc_head(const model_config& cfg, const hc_weights& hw, const float* X, float* y) {
    const int64_t n = cfg.hc_mult, D = cfg.hidden_size, nD = n * D;
    double rho = 1.0 / std::sqrt(sum_squares(X, nD) / double(nD) + cfg.rms_norm_eps);
    std::fill(y, y + D, 0.0f);
    for (int64_t k = 0; k < n; ++k) {
        double mk = rho * double(dot_f32(hw.fn.data() + k * nD, X, nD));
        float pre = float(1.0 / (1.0 + std::exp(-(hw.scale[0] * mk + hw.base[size_t(k)]))) + cfg.hc_eps);
        for (int64_t i = 0; i < D; ++i) {
            y[i] += pre * X[k * D + i];
        }
    }
}

// ---- compressors -------------------------------------------------------------------------------

/// Pools window w of a compressor into a new entry (spec §2.6): softmax-gated sum per channel,
/// RMSNorm, then RoPE at the window's first position.
void emit_entry(compressor_state& cs, const compressor_weights& cw, int64_t w, const rope_table& rt, float eps,
                precision prec) {
    const int64_t dim = cs.dim, r = cs.ratio;
    std::vector<const float*> a_src, b_src; // per slot: pointers to the channel-0 element
    if (cw.overlap) {
        for (int64_t s = 0; s < 4; ++s) {
            if (w > 0) {
                int64_t p = 4 * (w - 1) + s;
                a_src.push_back(cs.a_row(p));
                b_src.push_back(cs.b_row(p));
            }
        }
        for (int64_t s = 0; s < 4; ++s) {
            int64_t p = 4 * w + s;
            a_src.push_back(cs.a_row(p) + dim);
            b_src.push_back(cs.b_row(p) + dim);
        }
    } else {
        for (int64_t i = 0; i < r; ++i) {
            int64_t p = r * w + i;
            a_src.push_back(cs.a_row(p));
            b_src.push_back(cs.b_row(p));
        }
    }
    scratch pooled(dim);
    (prec == precision::fast ? compress_pool_fast : compress_pool)(a_src.data(), b_src.data(), int64_t(a_src.size()),
                                                                   dim, pooled.data());
    scratch entry(dim);
    rmsnorm(pooled.data(), cw.norm.data(), dim, eps, entry.data());
    rt.apply(entry.data() + dim - rt.rope_dims(), w * r);
    cs.append(entry.data());
}

/// Stores the compressor inputs of rows [begin, end) of one sequence and emits every window
/// those rows complete.
void feed_compressor(compressor_state& cs, const compressor_weights& cw, const seq_rows& sq, const float* a,
                     const float* b, const rope_table& rt, float eps, precision prec) {
    const int64_t width = cs.width;
    for (int64_t row = sq.begin; row < sq.end; ++row) {
        int64_t p = sq.pos0 + (row - sq.begin);
        std::memcpy(cs.a_row(p), a + row * width, size_t(width) * sizeof(float));
        std::memcpy(cs.b_row(p), b + row * width, size_t(width) * sizeof(float));
        if ((p + 1) % cs.ratio == 0) {
            emit_entry(cs, cw, p / cs.ratio, rt, eps, prec);
        }
    }
}

/// Every row's compressor inputs into its sequence's state (the `which` compressor of its layer),
/// emitting the windows they complete; sequences in parallel. a = Wkv_c·x, b = Wg_c·x on entry,
/// and b gets the gate's position bias ape[p mod ratio] here.
void feed_compressors(compressor_state layer_state::*which, const compressor_weights& cw, const batch_rows& rows,
                      const float* a, float* b, const rope_table& rt, float eps, precision prec, thread_pool& pool) {
    const int64_t width = cw.wgate.rows;
    for (int64_t r = 0; r < rows.size(); ++r) {
        const float* ape = cw.ape.data() + (rows.pos[size_t(r)] % cw.ratio) * width;
        for (int64_t i = 0; i < width; ++i) {
            b[r * width + i] += ape[i];
        }
    }
    pool.parallel_for(int64_t(rows.seqs.size()), 1, [&](int64_t s0, int64_t s1) {
        for (int64_t i = s0; i < s1; ++i) {
            const seq_rows& sq = rows.seqs[size_t(i)];
            feed_compressor(sq.layer->*which, cw, sq, a, b, rt, eps, prec);
        }
    });
}

/// Indices of the k largest scores, higher score first, ties to the lower index.
void top_k_indices(const float* scores, int64_t n, int64_t k, std::vector<int32_t>& out) {
    out.resize(static_cast<size_t>(n));
    std::iota(out.begin(), out.end(), 0);
    k = std::min(k, n);
    auto better = [&](int32_t x, int32_t y) { return scores[x] > scores[y] || (scores[x] == scores[y] && x < y); };
    std::partial_sort(out.begin(), out.begin() + k, out.end(), better);
    out.resize(static_cast<size_t>(k));
}

// ---- attention ---------------------------------------------------------------------------------

// Where attention finds a sequence's keys and what reads them, by how the sequence stores them
// (sequence_state.h): F32 in `exact` states, read by the reference kernels; BF16 in `fast` ones,
// read by the fast kernels (forward refuses a state made for the other precision).
template <class T>
struct key_store;
template <>
struct key_store<float> {
    static float* window(layer_state& l, int64_t pos, int64_t d) { return l.window_row(pos, d); }
    static const float* entry(const compressor_state& c, int64_t w) { return c.entry(w); }
    static constexpr auto attend = attention_with_sink_heads;
    static constexpr auto index_scores = indexer_scores;
};
template <>
struct key_store<uint16_t> {
    static uint16_t* window(layer_state& l, int64_t pos, int64_t d) { return l.window_row16(pos, d); }
    static const uint16_t* entry(const compressor_state& c, int64_t w) { return c.entry16(w); }
    static constexpr auto attend = attention_with_sink_heads_bf16_fast;
    static constexpr auto index_scores = indexer_scores_fast; // where the keys have no BF16 lanes
};

/// Sink attention of every row over its key set (the window, then every visible compressed entry
/// or the indexer's top-k), keys of type T as the sequences store them; then the rows' own K=V
/// vectors join their windows. kv: the rows' keys [N][d] in F32, q: [N][H][d], iq / iw: the
/// indexer's queries and head weights, angles: [N][dr]; out: [N][H][d], rotated back.
template <class T>
void attend(const model_config& cfg, const attention_weights& aw, const rope_table& rt, batch_rows& rows,
            const float* kv, const float* q, const float* iq, const float* iw, const double* angles, float* out,
            thread_pool& pool) {
    using store = key_store<T>;
    const int64_t N = rows.size(), H = cfg.num_attention_heads, d = cfg.head_dim;
    const int64_t dr = cfg.qk_rope_head_dim, dn = d - dr, W = cfg.sliding_window;
    const int64_t nI = cfg.index_n_heads, dI = cfg.index_head_dim;
    // The rows' keys as stored: rounded to BF16 before any row reads them, so that a key is the same
    // whether it is read in the chunk that made it or from the window later.
    std::vector<T> own;
    const T* kv_t = nullptr;
    if constexpr (std::is_same_v<T, float>) {
        kv_t = kv;
    } else {
        own.resize(size_t(N * d));
        for (int64_t i = 0; i < N * d; ++i) {
            own[size_t(i)] = f32_to_bf16(kv[i]);
        }
        kv_t = own.data();
    }
    // Key sets per row (window, then every visible compressed entry or the indexer's top-k),
    // then sink attention per (row, group of heads). Two passes, so that the second can split a
    // row's heads across threads when the batch has few rows (decode).
    const int64_t ratio = aw.ratio;
    std::vector<std::vector<const T*>> win(rows.seqs.size());
    std::vector<int32_t> row_seq(static_cast<size_t>(N));
    for (size_t si = 0; si < rows.seqs.size(); ++si) {
        const seq_rows& sq = rows.seqs[si];
        const int64_t n_rows = sq.end - sq.begin;
        const int64_t n_prev = std::min(sq.pos0, W - 1);
        win[si].resize(size_t(n_prev + n_rows));
        for (int64_t i = 0; i < n_prev; ++i) {
            win[si][size_t(i)] = store::window(*sq.layer, sq.pos0 - n_prev + i, d);
        }
        for (int64_t t = 0; t < n_rows; ++t) {
            win[si][size_t(n_prev + t)] = kv_t + (sq.begin + t) * d;
            row_seq[size_t(sq.begin + t)] = int32_t(si);
        }
    }
    std::vector<std::vector<const T*>> keys(static_cast<size_t>(N));
    pool.parallel_for(N, 1, [&](int64_t r0, int64_t r1) {
        std::vector<float> scores;
        std::vector<uint32_t> topk_scratch;
        std::vector<int32_t> picked;
        for (int64_t row = r0; row < r1; ++row) {
            const size_t si = size_t(row_seq[size_t(row)]);
            const seq_rows& sq = rows.seqs[si];
            const layer_state& st = *sq.layer;
            const int64_t t = row - sq.begin, p = sq.pos0 + t;
            const int64_t n_prev = int64_t(win[si].size()) - (sq.end - sq.begin);
            auto& ks = keys[size_t(row)];
            const int64_t first = std::max<int64_t>(0, n_prev + t - (W - 1));
            ks.assign(win[si].begin() + first, win[si].begin() + n_prev + t + 1);
            if (ratio <= 0) {
                continue;
            }
            const int64_t visible = (p + 1) / ratio;
            if (!aw.has_indexer || visible <= cfg.index_topk) {
                // No indexer, or it would choose every entry: no scores needed to rank them.
                for (int64_t w = 0; w < visible; ++w) {
                    ks.push_back(store::entry(st.compressor, w));
                }
            } else {
                scores.resize(static_cast<size_t>(visible));
                const float* qr = iq + row * nI * dI;
                const float* wr = iw + row * nI;
                if (st.index_compressor.bf16_lanes) { // `fast` where the CPU has a BF16 dot
                    // The scores only rank entries for top-k: BF16 keys halve the bytes per score
                    // and double the multiply-adds per instruction.
                    indexer_scores_bf16_fast(qr, wr, nI, dI, st.index_compressor.lanes.data(), visible, scores.data());
                } else {
                    store::index_scores(qr, wr, nI, dI, st.index_compressor.entry(0), visible, scores.data());
                }
                top_k_ascending(scores.data(), visible, cfg.index_topk, topk_scratch, picked);
                for (int32_t w : picked) {
                    ks.push_back(store::entry(st.compressor, w));
                }
            }
        }
    });
    const float scale = float(1.0 / std::sqrt(double(d)));
    const int64_t head_group = N >= 2 * pool.size() ? H : std::min<int64_t>(H, 4);
    const int64_t n_groups = (H + head_group - 1) / head_group;
    pool.parallel_for(N * n_groups, 1, [&](int64_t u0, int64_t u1) {
        std::vector<float> probs;
        for (int64_t u = u0; u < u1; ++u) {
            const int64_t row = u / n_groups, h0 = (u % n_groups) * head_group;
            const int64_t nh = std::min(head_group, H - h0);
            const auto& ks = keys[size_t(row)];
            probs.resize(ks.size() * size_t(nh));
            float* o = out + (row * H + h0) * d;
            store::attend(q + (row * H + h0) * d, nh, ks.data(), int64_t(ks.size()), d, scale, aw.sink.data() + h0,
                          probs.data(), o);
            for (int64_t h = 0; h < nh; ++h) {
                rt.rotate(o + h * d + dn, angles + row * dr, /*inverse=*/true);
            }
        }
    });
    for (const seq_rows& sq : rows.seqs) {
        for (int64_t t = 0; t < sq.end - sq.begin; ++t) {
            std::memcpy(store::window(*sq.layer, sq.pos0 + t, d), kv_t + (sq.begin + t) * d, size_t(d) * sizeof(T));
        }
    }
}

void attention(const model_config& cfg, const attention_weights& aw, const rope_table& rt, batch_rows& rows,
               const float* x, float* out, precision prec, thread_pool& pool) {
    const int64_t N = rows.size(), H = cfg.num_attention_heads, d = cfg.head_dim;
    const int64_t dr = cfg.qk_rope_head_dim, dn = d - dr, ql = cfg.q_lora_rank;
    const float eps = float(cfg.rms_norm_eps);

    const int64_t c_width = aw.has_compressor ? aw.compressor.wkv.rows : 0;
    const int64_t i_width = aw.has_indexer ? aw.indexer.compressor.wkv.rows : 0;
    const int64_t nI = cfg.index_n_heads, dI = cfg.index_head_dim;
    scratch cq(N * ql), q(N * H * d), kv(N * d), ca(N * c_width), cb(N * c_width), ia(N * i_width), ib(N * i_width);
    std::vector<float> iq, iw;
    // Every projection of x, then every projection of the query's low-rank state, each as one
    // parallel region (batched decode would otherwise pay a fork-join per small matmul).
    std::vector<matmul_task> from_x = {{aw.wq_a, x, cq.data()}, {aw.wkv, x, kv.data()}};
    std::vector<matmul_task> from_cq = {{aw.wq_b, cq.data(), q.data()}};
    if (aw.has_compressor) {
        from_x.push_back({aw.compressor.wkv, x, ca.data()});
        from_x.push_back({aw.compressor.wgate, x, cb.data()});
    }
    if (aw.has_indexer) {
        const auto& ix = aw.indexer;
        iq.resize(size_t(N * nI * dI));
        iw.resize(size_t(N * nI));
        from_x.push_back({ix.compressor.wkv, x, ia.data()});
        from_x.push_back({ix.compressor.wgate, x, ib.data()});
        from_x.push_back({ix.weights_proj, x, iw.data()});
        from_cq.push_back({ix.wq_b, cq.data(), iq.data()});
    }
    matmul_group(from_x, N, prec, pool);
    rmsnorm_rows(cq.data(), aw.q_norm.data(), N, ql, eps, cq.data());
    matmul_group(from_cq, N, prec, pool);
    // Each row's rotation angles, computed once for its query heads, key, indexer heads and the
    // inverse rotation of its outputs.
    std::vector<double> angles(static_cast<size_t>(N * dr));
    pool.parallel_for(N, 1, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const double* cs = angles.data() + r * dr;
            rt.angles(rows.pos[size_t(r)], angles.data() + r * dr);
            for (int64_t h = 0; h < H; ++h) {
                float* qh = q.data() + (r * H + h) * d;
                rmsnorm(qh, nullptr, d, eps, qh);
                rt.rotate(qh + dn, cs);
            }
            float* k = kv.data() + r * d;
            rmsnorm(k, aw.kv_norm.data(), d, eps, k);
            rt.rotate(k + dn, cs);
        }
    });

    // Compressed entries (and indexer keys) the rows complete, in position order per sequence.
    if (aw.has_compressor) {
        feed_compressors(&layer_state::compressor, aw.compressor, rows, ca.data(), cb.data(), rt, eps, prec, pool);
    }
    if (aw.has_indexer) {
        feed_compressors(&layer_state::index_compressor, aw.indexer.compressor, rows, ia.data(), ib.data(), rt, eps,
                         prec, pool);
        const float w_scale = float(1.0 / std::sqrt(double(nI)) / std::sqrt(double(dI)));
        for (int64_t r = 0; r < N; ++r) {
            for (int64_t h = 0; h < nI; ++h) {
                rt.rotate(iq.data() + (r * nI + h) * dI + dI - dr, angles.data() + r * dr);
                iw[size_t(r * nI + h)] *= w_scale;
            }
        }
    }

    scratch O(N * H * d);
    // States keep their keys for their precision (forward checks): BF16 for fast, F32 for exact.
    if (prec == precision::exact) {
        attend<float>(cfg, aw, rt, rows, kv.data(), q.data(), iq.data(), iw.data(), angles.data(), O.data(), pool);
    } else {
        attend<uint16_t>(cfg, aw, rt, rows, kv.data(), q.data(), iq.data(), iw.data(), angles.data(), O.data(), pool);
    }

    // Grouped low-rank output: z_i = Wo_a[i·R:(i+1)·R]·o_i, then A = Wo_b·concat(z).
    const int64_t g = cfg.o_groups, R = cfg.o_lora_rank, gw = H * d / g;
    scratch og(N * gw), zg(N * R), z(N * g * R);
    for (int64_t i = 0; i < g; ++i) {
        for (int64_t r = 0; r < N; ++r) {
            std::memcpy(og.data() + r * gw, O.data() + r * H * d + i * gw, size_t(gw) * sizeof(float));
        }
        matmul(aw.wo_a.slice_rows(i * R, R), og.data(), N, zg.data(), prec, pool);
        for (int64_t r = 0; r < N; ++r) {
            std::memcpy(z.data() + r * g * R + i * R, zg.data() + r * R, size_t(R) * sizeof(float));
        }
    }
    matmul(aw.wo_b, z.data(), N, out, prec, pool);
}

// ---- MoE ---------------------------------------------------------------------------------------

/// y [m][D] = W2·(silu(min(W1·x, L)) ⊙ clamp(W3·x, −L, L)).
void expert_ffn(const expert_weights& ew, const float* x, int64_t m, float limit, float* y, precision prec,
                thread_pool& pool) {
    const int64_t I = ew.w1.rows;
    scratch h1(m * I), h3(m * I);
    const matmul_task gate_up[] = {{ew.w1, x, h1.data()}, {ew.w3, x, h3.data()}};
    matmul_group(gate_up, m, prec, pool);
    swiglu(h1.data(), h3.data(), m * I, limit, h1.data(), prec);
    matmul(ew.w2, h1.data(), m, y, prec, pool);
}

void moe(const model_config& cfg, const moe_weights& mw, const batch_rows& rows, const float* x, float* out,
         precision prec, thread_pool& pool) {
    const int64_t N = rows.size(), D = cfg.hidden_size, E = cfg.n_routed_experts, K = cfg.num_experts_per_tok;
    const float limit = float(cfg.swiglu_limit);
    scratch logits(N * E);
    matmul(mw.gate, x, N, logits.data(), prec, pool);

    std::vector<int32_t> sel(size_t(N * K));
    std::vector<float> wts(size_t(N * K));
    pool.parallel_for(N, 8, [&](int64_t r0, int64_t r1) {
        std::vector<float> s(static_cast<size_t>(E)), biased(static_cast<size_t>(E));
        std::vector<int32_t> picked;
        for (int64_t r = r0; r < r1; ++r) {
            for (int64_t e = 0; e < E; ++e) {
                double l = logits[size_t(r * E + e)];
                double sp = std::max(l, 0.0) + std::log1p(std::exp(-std::fabs(l)));
                s[size_t(e)] = float(std::sqrt(sp));
            }
            if (!mw.tid2eid.empty()) {
                for (int64_t k = 0; k < K; ++k) {
                    sel[size_t(r * K + k)] = mw.tid2eid[size_t(int64_t(rows.token[size_t(r)]) * K + k)];
                }
            } else {
                for (int64_t e = 0; e < E; ++e) {
                    biased[size_t(e)] = s[size_t(e)] + mw.bias[size_t(e)];
                }
                top_k_indices(biased.data(), E, K, picked);
                std::copy(picked.begin(), picked.end(), sel.begin() + r * K);
            }
            double sum = 0.0;
            for (int64_t k = 0; k < K; ++k) {
                sum += s[size_t(sel[size_t(r * K + k)])];
            }
            for (int64_t k = 0; k < K; ++k) {
                double v = s[size_t(sel[size_t(r * K + k)])];
                if (cfg.norm_topk_prob) {
                    v /= (sum + 1e-20);
                }
                wts[size_t(r * K + k)] = float(v * cfg.routed_scaling_factor);
            }
        }
    });

    // Per expert: gather its rows, run it once for all of them, scatter per (row, slot) so the
    // final sum runs in slot order whatever the batch looks like.
    scratch slot_out(N * K * D);
    std::vector<std::vector<int64_t>> by_expert(static_cast<size_t>(E)); // entries r·K + k
    for (int64_t i = 0; i < N * K; ++i) {
        by_expert[size_t(sel[size_t(i)])].push_back(i);
    }
    std::vector<int64_t> active;
    for (int64_t e = 0; e < E; ++e) {
        if (!by_expert[size_t(e)].empty()) {
            active.push_back(e);
        }
    }
    auto run_experts = [&](int64_t a0, int64_t a1) {
        std::vector<float> xe, ye;
        for (int64_t a = a0; a < a1; ++a) {
            const int64_t e = active[size_t(a)];
            const auto& list = by_expert[size_t(e)];
            const int64_t m = int64_t(list.size());
            xe.resize(size_t(m * D));
            ye.resize(size_t(m * D));
            for (int64_t j = 0; j < m; ++j) {
                std::memcpy(xe.data() + j * D, x + (list[size_t(j)] / K) * D, size_t(D) * sizeof(float));
            }
            expert_ffn(mw.experts[size_t(e)], xe.data(), m, limit, ye.data(), prec, pool);
            for (int64_t j = 0; j < m; ++j) {
                std::memcpy(slot_out.data() + list[size_t(j)] * D, ye.data() + j * D, size_t(D) * sizeof(float));
            }
        }
    };
    // Decode-like batches give each expert a token or two: too little for one matmul to feed
    // every thread, so whole experts go to threads (their matmuls then run inline). Prefill
    // gives each expert many tokens, and the matmuls split their rows across threads instead.
    // Either way every output element is computed the same way, so the results are identical.
    // The shared expert then joins the same region as its first job (the largest, so it starts
    // first): one fork-join per MoE layer instead of four.
    const int64_t n_active = int64_t(active.size());
    auto run_shared = [&] {
        if (mw.has_shared) {
            expert_ffn(mw.shared, x, N, limit, out, prec, pool);
        } else {
            std::fill(out, out + N * D, 0.0f);
        }
    };
    if (n_active > 1 && N * K <= 4 * n_active) {
        // Job 0 is the shared expert, job j > 0 routed expert j - 1.
        pool.parallel_for(
            1 + n_active, 1,
            [&](int64_t j0, int64_t j1) {
                for (int64_t j = j0; j < j1; ++j) {
                    j == 0 ? run_shared() : run_experts(j - 1, j);
                }
            },
            /*max_chunk=*/1);
    } else {
        run_experts(0, n_active);
        run_shared();
    }
    pool.parallel_for(N, 8, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            float* o = out + r * D;
            for (int64_t k = 0; k < K; ++k) {
                const float* y = slot_out.data() + (r * K + k) * D;
                const float w = wts[size_t(r * K + k)];
                for (int64_t i = 0; i < D; ++i) {
                    o[i] += w * y[i];
                }
            }
        }
    });
}

// ---- one block ---------------------------------------------------------------------------------

void run_block(const model_config& cfg, const block_weights& bw, const rope_table& rt, batch_rows& rows, float* X,
               precision prec, thread_pool& pool) {
    const int64_t N = rows.size(), n = cfg.hc_mult, D = cfg.hidden_size;
    const float eps = float(cfg.rms_norm_eps);
    scratch u(N * D), x(N * D), y(N * D), post(N * n), comb(N * n * n);

    hc_pre(cfg, bw.hc_attn, X, N, u.data(), post.data(), comb.data(), prec, pool);
    rmsnorm_rows(u.data(), bw.attn_norm.data(), N, D, eps, x.data());
    attention(cfg, bw.attn, rt, rows, x.data(), y.data(), prec, pool);
    hc_post(cfg, y.data(), post.data(), comb.data(), N, X, pool);

    hc_pre(cfg, bw.hc_ffn, X, N, u.data(), post.data(), comb.data(), prec, pool);
    rmsnorm_rows(u.data(), bw.ffn_norm.data(), N, D, eps, x.data());
    moe(cfg, bw.ffn, rows, x.data(), y.data(), prec, pool);
    hc_post(cfg, y.data(), post.data(), comb.data(), N, X, pool);
}

/// dest[i] [V] = head · RMSNorm(HCHead(X_which[i]); norm): one matmul for the rows of every
/// sequence in the batch, so batched decode streams the head once per step, not once per sequence.
void head_logits(const model_config& cfg, const hc_weights& hw, const std::vector<float>& norm, const weight_view& head,
                 const float* X, const std::vector<int64_t>& which, const std::vector<float*>& dest, precision prec,
                 thread_pool& pool) {
    const int64_t D = cfg.hidden_size, nD = cfg.hc_mult * D, V = head.rows;
    const int64_t m = int64_t(which.size());
    if (m == 0) {
        return;
    }
    scratch y(m * D);
    pool.parallel_for(m, 4, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            float* yi = y.data() + i * D;
            hc_head(cfg, hw, X + which[size_t(i)] * nD, yi);
            rmsnorm(yi, norm.data(), D, float(cfg.rms_norm_eps), yi);
        }
    });
    bool contiguous = true;
    for (int64_t i = 1; i < m; ++i) {
        contiguous = contiguous && dest[size_t(i)] == dest[0] + i * V;
    }
    if (contiguous) {
        matmul(head, y.data(), m, dest[0], prec, pool);
        return;
    }
    scratch out(m * V);
    matmul(head, y.data(), m, out.data(), prec, pool);
    pool.parallel_for(m, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            std::memcpy(dest[size_t(i)], out.data() + i * V, size_t(V) * sizeof(float));
        }
    });
}

/// One batch may not hold the same sequence twice: its rows would claim the same positions, and
/// the per-sequence work that runs in parallel would write one state from two threads.
template <class Item>
status check_distinct(std::span<Item> items) {
    std::vector<const sequence_state*> seen;
    for (const auto& it : items) {
        seen.push_back(it.state);
    }
    std::sort(seen.begin(), seen.end());
    if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) {
        return make_error(errc::invalid_argument, "forward: the same sequence appears twice in one batch");
    }
    return ok_status();
}

const char* precision_name(precision p) {
    return p == precision::fast ? "fast" : "exact";
}

status check_state(const model_config& cfg, const sequence_state* st, bool mtp, precision prec) {
    if (!st) {
        return make_error(errc::invalid_argument, "forward: a batch item has no sequence state");
    }
    size_t want = size_t(mtp ? cfg.num_nextn_predict_layers : cfg.num_hidden_layers);
    if ((mtp ? st->mtp_layers.size() : st->layers.size()) != want) {
        return make_error(errc::invalid_argument, "forward: sequence state was made for a different model");
    }
    if (st->keys_for != prec) {
        return make_error(errc::invalid_argument,
                          std::string("forward: sequence state was made for the ") + precision_name(st->keys_for) +
                              " precision (its keys are stored for it), not " + precision_name(prec));
    }
    return ok_status();
}

} // namespace

status model::forward(std::span<forward_item> items, precision prec) const {
    const auto& cfg = config_;
    const int64_t n = cfg.hc_mult, D = cfg.hidden_size, V = cfg.vocab_size, nD = n * D;
    batch_rows rows;
    CACHALOT_TRY(check_distinct(items));
    for (auto& it : items) {
        CACHALOT_TRY(check_state(cfg, it.state, false, prec));
        int64_t p0 = it.state->n_past;
        if (p0 + int64_t(it.tokens.size()) > cfg.max_position_embeddings) {
            return make_error(errc::invalid_argument, "sequence of " + std::to_string(p0 + int64_t(it.tokens.size())) +
                                                          " tokens exceeds the model's context of " +
                                                          std::to_string(cfg.max_position_embeddings));
        }
        for (size_t i = 0; i < it.tokens.size(); ++i) {
            int32_t t = it.tokens[i];
            if (t < 0 || t >= V) {
                return make_error(errc::invalid_argument, "token id " + std::to_string(t) +
                                                              " is outside the vocabulary [0, " + std::to_string(V) +
                                                              ")");
            }
            rows.pos.push_back(p0 + int64_t(i));
            rows.token.push_back(t);
        }
    }
    const int64_t N = rows.size();
    {
        int64_t b = 0;
        for (auto& it : items) {
            int64_t m = int64_t(it.tokens.size());
            if (m > 0) {
                rows.seqs.push_back({b, b + m, it.state->n_past, nullptr});
            }
            b += m;
        }
    }
    thread_pool& pool = thread_pool::global();

    scratch X(N * nD);
    for (int64_t r = 0; r < N; ++r) {
        float* xr = X.data() + r * nD;
        dequant_row(weights_.embed, rows.token[size_t(r)], xr);
        for (int64_t k = 1; k < n; ++k) {
            std::memcpy(xr + k * D, xr, size_t(D) * sizeof(float));
        }
    }
    for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
        size_t si = 0;
        for (auto& it : items) {
            if (!it.tokens.empty()) {
                rows.seqs[si++].layer = &it.state->layers[size_t(l)];
            }
        }
        run_block(cfg, weights_.layers[size_t(l)], rope_[size_t(l)], rows, X.data(), prec, pool);
    }

    int64_t b = 0;
    std::vector<int64_t> which;
    std::vector<float*> dest;
    for (auto& it : items) {
        int64_t m = int64_t(it.tokens.size());
        if (m == 0) {
            continue;
        }
        if (it.streams) {
            std::memcpy(it.streams, X.data() + b * nD, size_t(m * nD) * sizeof(float));
        }
        std::memcpy(it.state->last_streams.data(), X.data() + (b + m - 1) * nD, size_t(nD) * sizeof(float));
        if (it.logits) {
            const int64_t first = it.all_logits ? 0 : m - 1;
            for (int64_t i = first; i < m; ++i) {
                which.push_back(b + i);
                dest.push_back(it.logits + (i - first) * V);
            }
        }
        it.state->n_past += m;
        b += m;
    }
    head_logits(cfg, weights_.hc_head, weights_.norm, weights_.head, X.data(), which, dest, prec, pool);
    return ok_status();
}

status model::forward_mtp(std::span<mtp_item> items, precision prec) const {
    const auto& cfg = config_;
    if (weights_.mtp.empty()) {
        return make_error(errc::unsupported,
                          "this checkpoint has no MTP block (num_nextn_predict_layers = 0 or not loaded)");
    }
    const int64_t n = cfg.hc_mult, D = cfg.hidden_size, V = cfg.vocab_size, nD = n * D;
    const float eps = float(cfg.rms_norm_eps);
    const mtp_weights& mw = weights_.mtp[0];
    batch_rows rows;
    CACHALOT_TRY(check_distinct(items));
    for (auto& it : items) {
        CACHALOT_TRY(check_state(cfg, it.state, true, prec));
        if (it.state->mtp_n_past + int64_t(it.next_tokens.size()) > it.state->n_past) {
            return make_error(errc::invalid_argument, "forward_mtp: the MTP block cannot run ahead of the trunk");
        }
        for (size_t i = 0; i < it.next_tokens.size(); ++i) {
            int32_t t = it.next_tokens[i];
            if (t < 0 || t >= V) {
                return make_error(errc::invalid_argument,
                                  "token id " + std::to_string(t) + " is outside the vocabulary");
            }
            rows.pos.push_back(it.state->mtp_n_past + int64_t(i));
            rows.token.push_back(t);
        }
    }
    const int64_t N = rows.size();
    int64_t b = 0;
    for (auto& it : items) {
        int64_t m = int64_t(it.next_tokens.size());
        if (m > 0) {
            rows.seqs.push_back({b, b + m, it.state->mtp_n_past, &it.state->mtp_layers[0]});
        }
        b += m;
    }
    thread_pool& pool = thread_pool::global();

    // X'[k] = e_proj·RMSNorm(embed[t_next]; enorm) + h_proj·RMSNorm(X[k]; hnorm).
    std::vector<float> emb(size_t(N * D)), e(size_t(N * D)), hs(size_t(N * nD)), h(size_t(N * nD));
    for (int64_t r = 0; r < N; ++r) {
        dequant_row(weights_.embed, rows.token[size_t(r)], emb.data() + r * D);
        rmsnorm(emb.data() + r * D, mw.enorm.data(), D, eps, emb.data() + r * D);
    }
    matmul(mw.e_proj, emb.data(), N, e.data(), prec, pool);
    b = 0;
    for (auto& it : items) {
        int64_t m = int64_t(it.next_tokens.size());
        for (int64_t i = 0; i < m; ++i) {
            for (int64_t k = 0; k < n; ++k) {
                rmsnorm(it.streams + i * nD + k * D, mw.hnorm.data(), D, eps, hs.data() + (b + i) * nD + k * D);
            }
        }
        b += m;
    }
    matmul(mw.h_proj, hs.data(), N * n, h.data(), prec, pool);
    for (int64_t r = 0; r < N; ++r) {
        for (int64_t k = 0; k < n; ++k) {
            float* hk = h.data() + r * nD + k * D;
            for (int64_t i = 0; i < D; ++i) {
                hk[i] += e[size_t(r * D + i)];
            }
        }
    }
    run_block(cfg, mw.block, rope_[size_t(cfg.num_hidden_layers)], rows, h.data(), prec, pool);

    b = 0;
    std::vector<int64_t> which;
    std::vector<float*> dest;
    for (auto& it : items) {
        int64_t m = int64_t(it.next_tokens.size());
        if (m == 0) {
            continue;
        }
        if (it.logits) {
            for (int64_t i = 0; i < m; ++i) {
                which.push_back(b + i);
                dest.push_back(it.logits + i * V);
            }
        }
        it.state->mtp_n_past += m;
        b += m;
    }
    head_logits(cfg, mw.hc_head, mw.norm, weights_.head, h.data(), which, dest, prec, pool);
    return ok_status();
}

} // namespace cachalot

// The `fast` attention kernels against the reference: random queries and keys of V4-like and odd
// shapes (heads not a multiple of 4, key counts not a multiple of 4 or 16, one key), scattered key
// pointers, large and small logits. The fast kernels only reorder F32 sums, fuse multiply-adds and
// use a polynomial exp (~1 ulp), so every output must agree to a few F32 ulps of its scale.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/compress_pool.h"
#include "kernels/dtype.h"

using namespace cachalot;

namespace {

struct attention_case {
    int64_t heads, nk, d;
    float spread; // scale of q and k entries: large values give sharp softmaxes
};

std::vector<float> random_vector(size_t n, float spread, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, spread);
    std::vector<float> v(n);
    for (auto& x : v) {
        x = dist(rng);
    }
    return v;
}

const char* const k_attention_backends[] = {"avx512", "avx2"};

// Σ_h |w_h| Σ_c |q_hc k_ic|: the scale of indexer score i's rounding errors.
double score_magnitude(const std::vector<float>& q, const std::vector<float>& w, const std::vector<float>& keys,
                       int64_t heads, int64_t dI, int64_t i) {
    double mag = 0.0;
    for (int64_t h = 0; h < heads; ++h) {
        double a = 0.0;
        for (int64_t c = 0; c < dI; ++c) {
            a += std::fabs(double(q[size_t(h * dI + c)]) * keys[size_t(i * dI + c)]);
        }
        mag += std::fabs(w[size_t(h)]) * a;
    }
    return mag;
}

// A pool of keys rounded to BF16 and the same keys widened back to F32; key j is pool row row(j).
struct bf16_key_set {
    std::vector<uint16_t> narrow;
    std::vector<float> wide;
    std::vector<const uint16_t*> keys16;
    std::vector<const float*> keys;

    template <class Row>
    bf16_key_set(const std::vector<float>& pool, int64_t nk, int64_t d, Row row)
        : narrow(pool.size()), wide(pool.size()) {
        for (size_t i = 0; i < pool.size(); ++i) {
            narrow[i] = f32_to_bf16(pool[i]);
            wide[i] = bf16_to_f32(narrow[i]);
        }
        for (int64_t j = 0; j < nk; ++j) {
            keys16.push_back(narrow.data() + row(j) * d);
            keys.push_back(wide.data() + row(j) * d);
        }
    }
};

bool attention_backend_runs(const char* name) {
    float q[16] = {}, k[16] = {}, out[16], scratch[1], sink = 0.0f;
    const float* keys[1] = {k};
    return attention_with_sink_heads_on(name, q, 1, keys, 1, 16, 1.0f, &sink, scratch, out).ok();
}

} // namespace

TEST_CASE("fast sink attention matches the reference for every head and key count") {
    for (const char* backend : k_attention_backends) {
        if (!attention_backend_runs(backend)) {
            MESSAGE("attention backend " << backend << " does not run on this machine; skipped");
            continue;
        }
        CAPTURE(backend);
        const attention_case cases[] = {{8, 200, 512, 1.0f},  {8, 1, 512, 1.0f}, {5, 37, 64, 1.0f}, {1, 130, 16, 2.0f},
                                        {16, 129, 128, 0.3f}, {3, 4, 48, 4.0f},  {8, 17, 512, 3.0f}};
        std::mt19937 rng(7);
        for (const auto& c : cases) {
            CAPTURE(c.heads);
            CAPTURE(c.nk);
            CAPTURE(c.d);
            auto q = random_vector(size_t(c.heads * c.d), c.spread, rng);
            // Keys live in a shuffled pool so that the kernel must follow the pointers.
            auto pool = random_vector(size_t((c.nk + 3) * c.d), c.spread, rng);
            std::vector<const float*> keys(static_cast<size_t>(c.nk));
            for (int64_t j = 0; j < c.nk; ++j) {
                keys[size_t(j)] = pool.data() + ((j * 7 + 3) % (c.nk + 3)) * c.d;
            }
            auto sinks = random_vector(size_t(c.heads), 1.0f, rng);
            const float scale = 1.0f / std::sqrt(float(c.d));
            std::vector<float> ref(size_t(c.heads * c.d)), fast(ref.size(), NAN), s1(size_t(c.heads * c.nk)),
                s2(s1.size());
            attention_with_sink_heads(q.data(), c.heads, keys.data(), c.nk, c.d, scale, sinks.data(), s1.data(),
                                      ref.data());
            REQUIRE(attention_with_sink_heads_on(backend, q.data(), c.heads, keys.data(), c.nk, c.d, scale,
                                                 sinks.data(), s2.data(), fast.data())
                        .ok());
            // Outputs are convex combinations of keys: bound the error by the largest key entry.
            float kmax = 0.0f;
            for (float v : pool) {
                kmax = std::max(kmax, std::fabs(v));
            }
            float worst = 0.0f;
            for (size_t i = 0; i < ref.size(); ++i) {
                REQUIRE(std::isfinite(fast[i]));
                worst = std::max(worst, std::fabs(fast[i] - ref[i]));
            }
            CHECK(worst <= 2e-5f * kmax);
        }
    }
}

TEST_CASE("sink attention over BF16 keys is bitwise the same attention over the keys widened to F32") {
    // The `fast` path stores keys in BF16 and widens them as it loads them; nothing else may change,
    // so every backend's BF16 entry must equal its own F32 entry on the widened keys, bit for bit.
    const char* const backends[] = {"reference", "avx512", "avx2"};
    const attention_case cases[] = {{8, 200, 512, 1.0f}, {8, 1, 512, 1.0f}, {5, 37, 64, 1.0f},
                                    {1, 130, 16, 2.0f},  {4, 9, 128, 3.0f}, {8, 0, 64, 1.0f}};
    std::mt19937 rng(11);
    for (const char* backend : backends) {
        if (!attention_backend_runs(backend)) {
            MESSAGE("attention backend " << backend << " does not run on this machine; skipped");
            continue;
        }
        CAPTURE(backend);
        for (const auto& c : cases) {
            CAPTURE(c.heads);
            CAPTURE(c.nk);
            CAPTURE(c.d);
            auto q = random_vector(size_t(c.heads * c.d), c.spread, rng);
            const bf16_key_set ks(random_vector(size_t((c.nk + 3) * c.d), c.spread, rng), c.nk, c.d,
                                  [&](int64_t j) { return (j * 5 + 2) % (c.nk + 3); });
            const auto& keys = ks.keys;
            const auto& keys16 = ks.keys16;
            auto sinks = random_vector(size_t(c.heads), 1.0f, rng);
            const float scale = 1.0f / std::sqrt(float(c.d));
            std::vector<float> want(size_t(c.heads * c.d), NAN), got(want.size(), NAN),
                s1(size_t(c.heads * std::max<int64_t>(1, c.nk))), s2(s1.size());
            REQUIRE(attention_with_sink_heads_on(backend, q.data(), c.heads, keys.data(), c.nk, c.d, scale,
                                                 sinks.data(), s1.data(), want.data())
                        .ok());
            REQUIRE(attention_with_sink_heads_bf16_on(backend, q.data(), c.heads, keys16.data(), c.nk, c.d, scale,
                                                      sinks.data(), s2.data(), got.data())
                        .ok());
            CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
        }
    }
    // The default entry points run one of the above.
    const int64_t heads = 4, nk = 20, d = 64;
    auto q = random_vector(size_t(heads * d), 1.0f, rng);
    const bf16_key_set ks(random_vector(size_t(nk * d), 1.0f, rng), nk, d, [](int64_t j) { return j; });
    const auto& keys = ks.keys;
    const auto& keys16 = ks.keys16;
    const float sinks[heads] = {0.5f, -1.0f, 0.0f, 2.0f};
    std::vector<float> want(size_t(heads * d)), got(want.size()), s1(size_t(heads * nk)), s2(s1.size());
    attention_with_sink_heads_fast(q.data(), heads, keys.data(), nk, d, 0.125f, sinks, s1.data(), want.data());
    attention_with_sink_heads_bf16_fast(q.data(), heads, keys16.data(), nk, d, 0.125f, sinks, s2.data(), got.data());
    CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
    attention_with_sink_heads(q.data(), heads, keys.data(), nk, d, 0.125f, sinks, s1.data(), want.data());
    attention_with_sink_heads_bf16(q.data(), heads, keys16.data(), nk, d, 0.125f, sinks, s2.data(), got.data());
    CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
}

TEST_CASE("fast indexer scores match the reference") {
    for (const char* backend : k_attention_backends) {
        if (!attention_backend_runs(backend)) {
            continue;
        }
        CAPTURE(backend);
        std::mt19937 rng(11);
        for (int64_t heads : {8, 4, 3, 1}) {
            for (int64_t n_keys : {1, 4, 7, 130}) {
                const int64_t dI = 128;
                auto q = random_vector(size_t(heads * dI), 1.0f, rng);
                auto w = random_vector(size_t(heads), 1.0f, rng);
                auto keys = random_vector(size_t(n_keys * dI), 1.0f, rng);
                std::vector<float> ref(static_cast<size_t>(n_keys)), fast(ref.size(), NAN);
                indexer_scores(q.data(), w.data(), heads, dI, keys.data(), n_keys, ref.data());
                REQUIRE(
                    indexer_scores_on(backend, q.data(), w.data(), heads, dI, keys.data(), n_keys, fast.data()).ok());
                // Each term's dot has |error| <= ~dI ulps of Σ|q k|; bound by that sum over heads.
                for (int64_t i = 0; i < n_keys; ++i) {
                    CHECK(std::fabs(fast[size_t(i)] - ref[size_t(i)]) <=
                          1e-5 * score_magnitude(q, w, keys, heads, dI, i));
                }
            }
        }
    }
}

namespace {

// Keys [n_keys][dI] in the lanes layout, through indexer_key_to_lanes.
std::vector<uint16_t> to_lanes(const std::vector<float>& keys, int64_t n_keys, int64_t dI) {
    std::vector<uint16_t> lanes(size_t((n_keys + k_index_lanes - 1) / k_index_lanes * indexer_lane_block_elems(dI)));
    for (int64_t w = 0; w < n_keys; ++w) {
        indexer_key_to_lanes(keys.data() + w * dI, dI, w, lanes.data());
    }
    return lanes;
}

} // namespace

TEST_CASE("indexer keys in the lanes layout: element i of key w at [w/16][i/2][w%16][i%2], rounded to BF16") {
    std::mt19937 rng(5);
    const int64_t dI = 48, n_keys = 37;
    auto keys = random_vector(size_t(n_keys * dI), 1.0f, rng);
    auto lanes = to_lanes(keys, n_keys, dI);
    for (int64_t w = 0; w < n_keys; ++w) {
        for (int64_t i = 0; i < dI; ++i) {
            const uint16_t got = lanes[size_t((w / 16) * 16 * dI + (i / 2) * 32 + (w % 16) * 2 + i % 2)];
            CHECK(got == f32_to_bf16(keys[size_t(w * dI + i)]));
        }
    }
}

TEST_CASE("BF16 indexer scores: every backend bit-identical to the reference, and close to F32") {
    const char* const backends[] = {"avx512", "avx2"};
    std::mt19937 rng(13);
    for (int64_t heads : {8, 16, 12, 3, 1}) {
        for (int64_t n_keys : {1, 15, 16, 17, 33, 200}) {
            for (int64_t dI : {128, 64, 16}) {
                CAPTURE(heads);
                CAPTURE(n_keys);
                CAPTURE(dI);
                auto q = random_vector(size_t(heads * dI), 1.0f, rng);
                auto w = random_vector(size_t(heads), 1.0f, rng);
                auto keys = random_vector(size_t(n_keys * dI), 1.0f, rng);
                // Some tiny entries: BF16 inputs and products below the normal range are flushed
                // (vdpbf16ps' DAZ/FTZ), which the reference must follow.
                for (size_t i = 0; i < keys.size(); i += 7) {
                    keys[i] *= 1e-38f;
                }
                for (size_t i = 0; i < q.size(); i += 11) {
                    q[i] *= 1e-30f;
                }
                auto lanes = to_lanes(keys, n_keys, dI);
                std::vector<float> ref(static_cast<size_t>(n_keys)), f32(ref.size());
                indexer_scores_bf16(q.data(), w.data(), heads, dI, lanes.data(), n_keys, ref.data());
                indexer_scores(q.data(), w.data(), heads, dI, keys.data(), n_keys, f32.data());
                for (int64_t i = 0; i < n_keys; ++i) {
                    // BF16 rounds q and k to 8 significant bits each: each product within ~2^-8
                    // of itself, so each score within ~2^-8 of Σ_h |w_h| Σ |q k|.
                    CHECK(std::fabs(ref[size_t(i)] - f32[size_t(i)]) <=
                          1e-2 * score_magnitude(q, w, keys, heads, dI, i));
                }
                for (const char* backend : backends) {
                    std::vector<float> got(ref.size(), NAN);
                    auto st = indexer_scores_bf16_on(backend, q.data(), w.data(), heads, dI, lanes.data(), n_keys,
                                                     got.data());
                    if (std::string(backend) == "avx512" && indexer_scores_bf16_native()) {
                        REQUIRE(st.ok()); // the kernel the fast path uses here must be the one tested
                    }
                    if (!st.ok()) {
                        continue; // not built, not this CPU, or no BF16 variant: said so in st
                    }
                    CAPTURE(backend);
                    CHECK(std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)) == 0);
                }
                std::vector<float> fast(ref.size(), NAN);
                indexer_scores_bf16_fast(q.data(), w.data(), heads, dI, lanes.data(), n_keys, fast.data());
                CHECK(std::memcmp(fast.data(), ref.data(), ref.size() * sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE("BF16 indexer scores pick nearly the same top-k entries as F32") {
    std::mt19937 rng(17);
    const int64_t heads = 8, dI = 128, n_keys = 4096, k = 512;
    auto q = random_vector(size_t(heads * dI), 1.0f, rng);
    auto w = random_vector(size_t(heads), 1.0f, rng);
    auto keys = random_vector(size_t(n_keys * dI), 1.0f, rng);
    auto lanes = to_lanes(keys, n_keys, dI);
    std::vector<float> f32(static_cast<size_t>(n_keys)), bf(f32.size());
    std::vector<uint32_t> scratch;
    indexer_scores(q.data(), w.data(), heads, dI, keys.data(), n_keys, f32.data());
    indexer_scores_bf16_fast(q.data(), w.data(), heads, dI, lanes.data(), n_keys, bf.data());
    std::vector<int32_t> a, b;
    top_k_ascending(f32.data(), n_keys, k, scratch, a);
    top_k_ascending(bf.data(), n_keys, k, scratch, b);
    std::vector<int32_t> both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    MESSAGE("BF16 top-" << k << " of " << n_keys << " shares " << both.size() << " entries with F32");
    CHECK(double(both.size()) >= 0.97 * double(k));
}

TEST_CASE("attention backends that cannot run say why") {
    float q[24] = {}, k[24] = {}, out[24], scratch[1], sink = 0.0f;
    const float* keys[1] = {k};
    auto r = attention_with_sink_heads_on("neon", q, 1, keys, 1, 16, 1.0f, &sink, scratch, out);
    REQUIRE(!r.ok());
    CHECK(r.err().code == errc::invalid_argument);
    if (attention_backend_runs("avx2")) {
        auto odd = attention_with_sink_heads_on("avx2", q, 1, keys, 1, 24, 1.0f, &sink, scratch, out);
        REQUIRE(!odd.ok());
        CHECK(odd.err().message.find("multiples of 16") != std::string::npos);
    }
    CHECK(attention_with_sink_heads_on("reference", q, 1, keys, 1, 24, 1.0f, &sink, scratch, out).ok());
}

TEST_CASE("fast sink attention with no keys gives zeros (the sink takes all weight)") {
    // Whichever variant this machine picks.
    std::vector<float> q(64, 1.0f), out(64, NAN), scratch(1);
    const float sink = 0.5f;
    attention_with_sink_heads_fast(q.data(), 1, nullptr, 0, 64, 0.125f, &sink, scratch.data(), out.data());
    for (float v : out) {
        CHECK(v == 0.0f);
    }
}

TEST_CASE("top_k_ascending picks the same set as a full sort, ties by lower index, in index order") {
    std::mt19937 rng(3);
    std::vector<uint32_t> scratch;
    std::vector<int32_t> got;
    auto check = [&](const std::vector<float>& s, int64_t k) {
        const int64_t n = int64_t(s.size());
        std::vector<int32_t> want(static_cast<size_t>(n));
        std::iota(want.begin(), want.end(), 0);
        std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return s[a] > s[b]; });
        want.resize(static_cast<size_t>(std::min(n, k)));
        std::sort(want.begin(), want.end());
        top_k_ascending(s.data(), n, k, scratch, got);
        CAPTURE(n);
        CAPTURE(k);
        CHECK(got == want);
    };
    for (int64_t n : {1, 5, 64, 65, 1000, 4097, 40000}) {
        for (int64_t k : {1, 3, 64, 512, 5000}) {
            // Few distinct values, so that ties straddle the cut.
            std::uniform_int_distribution<int> few(0, n > 100 ? 40 : 4);
            std::vector<float> s(static_cast<size_t>(n));
            for (auto& v : s) {
                v = float(few(rng)) * 0.25f - 3.0f;
            }
            check(s, k);
            // Spread values of both signs (the selection runs over several radix digits), with
            // +0 and -0 mixed in: they are one value, ties by index.
            std::normal_distribution<float> spread(0.0f, 100.0f);
            for (size_t i = 0; i < s.size(); ++i) {
                s[i] = i % 9 == 0 ? (i % 2 ? -0.0f : 0.0f) : spread(rng);
            }
            check(s, k);
            // Values that share their top bits: only the last digits tell them apart.
            for (size_t i = 0; i < s.size(); ++i) {
                s[i] = 1.0f + float(rng() % 1024) * 1e-7f;
            }
            check(s, k);
        }
    }
}

TEST_CASE("fast compressor pooling matches the reference on every backend") {
    std::mt19937 rng(5);
    for (const char* backend : k_attention_backends) {
        if (!attention_backend_runs(backend)) {
            continue;
        }
        CAPTURE(backend);
        for (int64_t n_slots : {1, 4, 8, 128}) {
            for (int64_t dim : {16, 128, 512}) {
                CAPTURE(n_slots);
                CAPTURE(dim);
                // Gates spread wide enough that the softmax is sharp in some channels.
                auto a = random_vector(size_t(n_slots * dim), 1.0f, rng);
                auto b = random_vector(size_t(n_slots * dim), 6.0f, rng);
                std::vector<const float*> pa, pb;
                for (int64_t s = 0; s < n_slots; ++s) {
                    pa.push_back(a.data() + s * dim);
                    pb.push_back(b.data() + s * dim);
                }
                std::vector<float> ref(static_cast<size_t>(dim)), fast(ref.size(), NAN);
                compress_pool(pa.data(), pb.data(), n_slots, dim, ref.data());
                REQUIRE(compress_pool_on(backend, pa.data(), pb.data(), n_slots, dim, fast.data()).ok());
                float amax = 0.0f;
                for (float v : a) {
                    amax = std::max(amax, std::fabs(v));
                }
                for (size_t c = 0; c < ref.size(); ++c) {
                    CHECK(std::fabs(fast[c] - ref[c]) <= 1e-5f * amax);
                }
            }
        }
    }
}

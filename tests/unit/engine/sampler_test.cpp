// Tests of engine/sampler: parameter validation, the generator's fixed output, each processing
// step on handmade logits, a full-sort reference for random rows, penalties arithmetic, logprobs
// against a direct log-softmax, seeded reproducibility and state hand-off.
#include "engine/sampler.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace cachalot;

namespace {

sampler make_sampler(const sampling_params& p, std::vector<token_id> prompt = {}) {
    auto s = sampler::create(p, prompt);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.err().message));
    return std::move(s).value();
}

std::vector<float> probs_of(sampler& s, const std::vector<float>& logits) {
    auto p = s.probabilities(logits);
    REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.err().message));
    return *p;
}

std::vector<double> log_softmax(const std::vector<float>& l) {
    const double m = *std::max_element(l.begin(), l.end());
    double sum = 0.0;
    for (float x : l) {
        sum += std::exp(x - m);
    }
    std::vector<double> out(l.size());
    for (std::size_t i = 0; i < l.size(); ++i) {
        out[i] = l[i] - m - std::log(sum);
    }
    return out;
}

std::vector<float> random_logits(std::size_t n, unsigned seed, float scale = 3.0f) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> out(n);
    for (auto& x : out) {
        x = dist(gen);
    }
    return out;
}

// The truncation steps written the slow, obvious way: full sorts, no penalties.
std::vector<double> reference_probs(const std::vector<float>& l, const sampling_params& p) {
    const std::size_t n = l.size();
    const float m = *std::max_element(l.begin(), l.end());
    std::vector<float> w(n);
    std::vector<bool> keep(n);
    for (std::size_t i = 0; i < n; ++i) {
        w[i] = std::exp((l[i] - m) / p.temperature);
        keep[i] = w[i] > 0.0f;
    }
    if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < n) {
        std::vector<float> sorted = l;
        std::sort(sorted.begin(), sorted.end(), std::greater<float>());
        for (std::size_t i = 0; i < n; ++i) {
            keep[i] = keep[i] && l[i] >= sorted[p.top_k - 1];
        }
    }
    if (p.top_p < 1.0f) {
        std::vector<std::size_t> order;
        double total = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            if (keep[i]) {
                order.push_back(i);
                total += w[i];
            }
        }
        std::sort(order.begin(), order.end(),
                  [&](std::size_t a, std::size_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); });
        double before = 0.0;
        for (std::size_t i : order) {
            if (before >= static_cast<double>(p.top_p) * total) {
                keep[i] = false;
            }
            before += w[i];
        }
    }
    if (p.min_p > 0.0f) {
        float mx = 0.0f;
        for (std::size_t i = 0; i < n; ++i) {
            if (keep[i]) {
                mx = std::max(mx, w[i]);
            }
        }
        for (std::size_t i = 0; i < n; ++i) {
            keep[i] = keep[i] && w[i] >= p.min_p * mx;
        }
    }
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        total += keep[i] ? w[i] : 0.0;
    }
    std::vector<double> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = keep[i] ? w[i] / total : 0.0;
    }
    return out;
}

std::vector<float> logits_from_probs(const std::vector<double>& probs) {
    std::vector<float> out;
    for (double p : probs) {
        out.push_back(static_cast<float>(std::log(p)));
    }
    return out;
}

void check_invalid(sampling_params p, const std::string& field) {
    auto st = p.validate();
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().code == errc::invalid_argument);
    CHECK_MESSAGE(st.err().message.find(field) != std::string::npos, st.err().message);
    CHECK_FALSE(sampler::create(p, {}).ok());
}

} // namespace

TEST_CASE("sampling params accept the OpenAI defaults and range ends") {
    sampling_params p;
    CHECK(p.validate().ok());
    CHECK(p.temperature == 1.0f);
    CHECK(p.top_p == 1.0f);
    CHECK(p.top_k == 0);
    CHECK(p.min_p == 0.0f);
    CHECK(p.repetition_penalty == 1.0f);
    p.temperature = 2.0f;
    p.top_k = -1;
    p.min_p = 1.0f;
    p.presence_penalty = -2.0f;
    p.frequency_penalty = 2.0f;
    p.logprobs = true;
    p.top_logprobs = 20;
    p.max_tokens = 1;
    CHECK(p.validate().ok());
    p.temperature = 0.0f;
    CHECK(p.validate().ok());
    CHECK(p.is_greedy());
}

TEST_CASE("sampling params validation names the field that is out of range") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    sampling_params p;
    SUBCASE("temperature") {
        p.temperature = 2.5f;
        check_invalid(p, "temperature");
        p.temperature = -0.1f;
        check_invalid(p, "temperature");
        p.temperature = nan;
        check_invalid(p, "temperature");
    }
    SUBCASE("top_p") {
        p.top_p = 0.0f;
        check_invalid(p, "top_p");
        p.top_p = 1.5f;
        check_invalid(p, "top_p");
    }
    SUBCASE("top_k") {
        p.top_k = -2;
        check_invalid(p, "top_k");
    }
    SUBCASE("min_p") {
        p.min_p = 1.5f;
        check_invalid(p, "min_p");
        p.min_p = -0.5f;
        check_invalid(p, "min_p");
    }
    SUBCASE("penalties") {
        p.presence_penalty = 2.5f;
        check_invalid(p, "presence_penalty");
        p.presence_penalty = 0.0f;
        p.frequency_penalty = -3.0f;
        check_invalid(p, "frequency_penalty");
        p.frequency_penalty = 0.0f;
        p.repetition_penalty = 0.0f;
        check_invalid(p, "repetition_penalty");
        p.repetition_penalty = nan;
        check_invalid(p, "repetition_penalty");
    }
    SUBCASE("logprobs") {
        p.logprobs = true;
        p.top_logprobs = 21;
        check_invalid(p, "top_logprobs");
        p.logprobs = false;
        p.top_logprobs = 3;
        check_invalid(p, "top_logprobs");
    }
    SUBCASE("stops and max_tokens") {
        p.stop = {"ok", ""};
        check_invalid(p, "stop[1]");
        p.stop = {};
        p.stop_token_ids = {-4};
        check_invalid(p, "stop_token_ids");
        p.stop_token_ids = {};
        p.max_tokens = 0;
        check_invalid(p, "max_tokens");
    }
}

TEST_CASE("sampler generator reproduces the published xoshiro256** and splitmix64 outputs") {
    sampler_rng r(std::array<std::uint64_t, 4>{1, 2, 3, 4});
    CHECK(r.next_u64() == 11520ULL);
    CHECK(r.next_u64() == 0ULL);
    CHECK(r.next_u64() == 1509978240ULL);
    CHECK(r.next_u64() == 1215971899390074240ULL);
    // The first splitmix64 output for seed 0 is a well-known constant.
    CHECK(sampler_rng(0).state()[0] == 0xe220a8397b1dcdafULL);
    sampler_rng u(7);
    for (int i = 0; i < 10000; ++i) {
        const double x = u.next_double();
        REQUIRE(x >= 0.0);
        REQUIRE(x < 1.0);
    }
}

TEST_CASE("greedy sampling picks the largest logit, the lower id on ties, and draws nothing") {
    sampling_params p;
    p.temperature = 0.0f;
    p.seed = 3;
    auto s = make_sampler(p);
    const auto before = s.state().rng;
    CHECK(s.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 2.0f})->token == 1);
    CHECK(s.sample(std::vector<float>{5.0f, 2.0f, 5.0f})->token == 0);
    CHECK(s.sample(std::vector<float>{-std::numeric_limits<float>::infinity(), -3.0f})->token == 1);
    CHECK(s.state().rng == before);
    const auto probs = probs_of(s, {0.1f, 2.0f, -1.0f, 2.0f});
    CHECK(probs == std::vector<float>{0.0f, 1.0f, 0.0f, 0.0f});
}

TEST_CASE("a seeded draw is the generator's uniform scaled onto the distribution") {
    // Equal logits: the token is floor(u * V) for the seed's own uniform sequence, which pins
    // the sampled tokens independently of the sampler's internals.
    sampling_params p;
    p.seed = 12345;
    auto s = make_sampler(p);
    sampler_rng ref(12345);
    const std::vector<float> flat(8, 0.5f);
    for (int i = 0; i < 200; ++i) {
        const auto expected = static_cast<token_id>(std::floor(ref.next_double() * 8));
        REQUIRE(s.sample(flat)->token == expected);
    }
}

TEST_CASE("the same seed gives the same tokens and different seeds differ") {
    sampling_params p;
    p.seed = 99;
    p.top_p = 0.95f;
    p.temperature = 0.8f;
    std::vector<std::vector<float>> rows;
    for (unsigned i = 0; i < 64; ++i) {
        rows.push_back(random_logits(1000, i, 1.0f));
    }
    auto run = [&](std::uint64_t seed) {
        sampling_params q = p;
        q.seed = seed;
        auto s = make_sampler(q);
        std::vector<token_id> out;
        for (const auto& r : rows) {
            out.push_back(s.sample(r)->token);
            s.accept(out.back());
        }
        return out;
    };
    CHECK(run(99) == run(99));
    CHECK(run(99) != run(100));
    // Unseeded samplers draw their own seeds.
    sampling_params unseeded = p;
    unseeded.seed.reset();
    CHECK(make_sampler(unseeded).state().rng != make_sampler(unseeded).state().rng);
}

TEST_CASE("temperature scales the logits before the softmax") {
    const std::vector<float> logits{0.0f, 1.0f};
    for (float t : {0.25f, 0.5f, 1.0f, 2.0f}) {
        sampling_params p;
        p.temperature = t;
        p.seed = 5;
        auto s = make_sampler(p);
        const auto probs = probs_of(s, logits);
        const double expected = 1.0 / (1.0 + std::exp(-1.0 / t));
        CHECK(probs[1] == doctest::Approx(expected).epsilon(1e-6));
        CHECK(probs[0] + probs[1] == doctest::Approx(1.0).epsilon(1e-6));
        int ones = 0;
        const int n = 20000;
        for (int i = 0; i < n; ++i) {
            ones += s.sample(logits)->token;
        }
        CHECK(std::abs(static_cast<double>(ones) / n - expected) < 0.015);
    }
}

TEST_CASE("top-k keeps the k largest logits and every tie at the boundary") {
    sampling_params p;
    p.seed = 1;
    p.top_k = 2;
    auto s = make_sampler(p);
    const std::vector<float> logits{1.0f, 5.0f, 3.0f, 4.0f, 2.0f};
    const auto probs = probs_of(s, logits);
    const double z = std::exp(5.0) + std::exp(4.0);
    CHECK(probs[1] == doctest::Approx(std::exp(5.0) / z));
    CHECK(probs[3] == doctest::Approx(std::exp(4.0) / z));
    CHECK(probs[0] == 0.0f);
    CHECK(probs[2] == 0.0f);
    CHECK(probs[4] == 0.0f);
    for (int i = 0; i < 200; ++i) {
        const token_id t = s.sample(logits)->token;
        REQUIRE((t == 1 || t == 3));
    }

    const auto ties = probs_of(s, {3.0f, 1.0f, 3.0f, 3.0f});
    CHECK(ties[0] == doctest::Approx(1.0 / 3));
    CHECK(ties[1] == 0.0f);
    CHECK(ties[3] == doctest::Approx(1.0 / 3));

    for (std::int32_t off : {0, -1, 5, 50}) {
        sampling_params q = p;
        q.top_k = off;
        auto all = make_sampler(q);
        const auto pr = probs_of(all, logits);
        CHECK(std::count(pr.begin(), pr.end(), 0.0f) == 0);
    }
}

TEST_CASE("top-p keeps the smallest most-probable set reaching the mass") {
    const auto logits = logits_from_probs({0.15, 0.5, 0.05, 0.3});
    auto kept = [&](float top_p) {
        sampling_params p;
        p.seed = 2;
        p.top_p = top_p;
        auto s = make_sampler(p);
        return probs_of(s, logits);
    };
    auto one = kept(0.4f);
    CHECK(one[1] == doctest::Approx(1.0));
    auto two = kept(0.7f);
    CHECK(two[1] == doctest::Approx(0.5 / 0.8));
    CHECK(two[3] == doctest::Approx(0.3 / 0.8));
    CHECK(two[0] == 0.0f);
    CHECK(two[2] == 0.0f);
    auto three = kept(0.85f);
    CHECK(three[0] == doctest::Approx(0.15 / 0.95));
    CHECK(three[2] == 0.0f);
    auto all = kept(1.0f);
    CHECK(all[2] == doctest::Approx(0.05).epsilon(1e-5));

    // Exactly representable masses: with four equal tokens and top_p 0.5 the first two (lower
    // ids first on ties) already reach the mass, so the third is dropped.
    sampling_params p;
    p.seed = 2;
    p.top_p = 0.5f;
    auto s = make_sampler(p);
    CHECK(probs_of(s, {0.0f, 0.0f, 0.0f, 0.0f}) == std::vector<float>{0.5f, 0.5f, 0.0f, 0.0f});
    // The same on a set large enough for the bucketed selection.
    const auto flat = probs_of(s, std::vector<float>(4096, 0.0f));
    CHECK(std::count(flat.begin(), flat.begin() + 2048, 1.0f / 2048) == 2048);
    CHECK(std::count(flat.begin() + 2048, flat.end(), 0.0f) == 2048);
}

TEST_CASE("min-p drops tokens below a fraction of the most probable one") {
    const auto logits = logits_from_probs({0.15, 0.5, 0.05, 0.3});
    sampling_params p;
    p.seed = 2;
    p.min_p = 0.2f; // threshold 0.1
    auto s = make_sampler(p);
    auto probs = probs_of(s, logits);
    CHECK(probs[2] == 0.0f);
    CHECK(probs[1] == doctest::Approx(0.5 / 0.95));
    p.min_p = 0.5f; // threshold 0.25
    auto s2 = make_sampler(p);
    probs = probs_of(s2, logits);
    CHECK(probs[0] == 0.0f);
    CHECK(probs[1] == doctest::Approx(0.5 / 0.8));
    CHECK(probs[3] == doctest::Approx(0.3 / 0.8));
}

TEST_CASE("sampler truncation matches a full-sort reference on large random rows") {
    struct cfg {
        float t;
        std::int32_t k;
        float top_p;
        float min_p;
    };
    const std::vector<cfg> cfgs{{1.0f, 0, 0.9f, 0.0f},     {0.7f, 0, 0.999f, 0.0f},     {1.3f, 50, 0.8f, 0.0f},
                                {1.0f, 1000, 1.0f, 0.05f}, {0.5f, 20000, 0.95f, 0.01f}, {2.0f, 0, 0.5f, 0.0f},
                                {1.0f, 1, 1.0f, 0.0f}};
    unsigned seed = 10;
    for (const auto& c : cfgs) {
        sampling_params p;
        p.seed = 4;
        p.temperature = c.t;
        p.top_k = c.k;
        p.top_p = c.top_p;
        p.min_p = c.min_p;
        auto s = make_sampler(p);
        const auto logits = random_logits(50000, seed++, 2.0f);
        const auto got = probs_of(s, logits);
        const auto want = reference_probs(logits, p);
        std::size_t n_kept_got = 0;
        std::size_t n_kept_want = 0;
        double max_err = 0.0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            n_kept_got += got[i] > 0.0f;
            n_kept_want += want[i] > 0.0;
            max_err = std::max(max_err, std::abs(got[i] - want[i]));
        }
        CAPTURE(c.t);
        CAPTURE(c.k);
        CAPTURE(c.top_p);
        CHECK(n_kept_got == n_kept_want);
        CHECK(max_err < 1e-6);
        const token_id t = s.sample(logits)->token;
        CHECK(want[t] > 0.0);
    }
}

TEST_CASE("repetition, frequency and presence penalties follow the documented arithmetic") {
    sampling_params p;
    p.seed = 8;
    p.repetition_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.logprobs = true;
    p.top_logprobs = 5;
    auto s = make_sampler(p, {1, 2, 1});
    s.accept(2);
    s.accept(3);
    s.accept(3);
    const std::vector<float> logits{1.0f, 2.0f, -1.0f, 0.5f, 4.0f};
    // 0: untouched; 1: prompt only -> 2/2; 2: prompt + output x1 -> -1*2 - 0.25 - 0.5;
    // 3: output x2 -> 0.5/2 - 0.5 - 0.5; 4: untouched.
    const std::vector<float> penalised{1.0f, 1.0f, -2.75f, -0.75f, 4.0f};
    const auto want = log_softmax(penalised);
    auto r = s.score(logits, 3);
    REQUIRE(r.ok());
    CHECK(r->logprob == doctest::Approx(want[3]).epsilon(1e-6));
    REQUIRE(r->top_logprobs.size() == 5);
    for (const auto& [t, lp] : r->top_logprobs) {
        CHECK(lp == doctest::Approx(want[t]).epsilon(1e-6));
    }
    // Ties (tokens 0 and 1 at 1.0) come lower id first.
    CHECK(r->top_logprobs[0].first == 4);
    CHECK(r->top_logprobs[1].first == 0);
    CHECK(r->top_logprobs[2].first == 1);
    CHECK(r->top_logprobs[3].first == 3);
    CHECK(r->top_logprobs[4].first == 2);

    SUBCASE("presence and frequency ignore the prompt") {
        sampling_params q;
        q.presence_penalty = 1.0f;
        q.frequency_penalty = 1.0f;
        q.logprobs = true;
        auto s2 = make_sampler(q, {0, 1, 2});
        auto before = s2.score(logits, 0);
        s2.accept(4);
        auto after = s2.score(logits, 0);
        const auto want2 = log_softmax({1.0f, 2.0f, -1.0f, 0.5f, 2.0f});
        CHECK(before->logprob == doctest::Approx(log_softmax(logits)[0]).epsilon(1e-6));
        CHECK(after->logprob == doctest::Approx(want2[0]).epsilon(1e-6));
    }
    SUBCASE("negative penalties encourage repeats") {
        sampling_params q;
        q.presence_penalty = -2.0f;
        q.temperature = 0.0f;
        auto s3 = make_sampler(q);
        CHECK(s3.sample(logits)->token == 4);
        s3.accept(1);
        CHECK(s3.sample(logits)->token == 1); // 2 + 2 ties 4; the lower id wins
    }
}

TEST_CASE("sampled logprobs are the log-softmax before temperature and truncation") {
    sampling_params p;
    p.seed = 21;
    p.temperature = 0.6f;
    p.top_k = 10;
    p.logprobs = true;
    p.top_logprobs = 7;
    auto s = make_sampler(p);
    const auto logits = random_logits(1000, 77);
    const auto want = log_softmax(logits);
    std::vector<token_id> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](token_id a, token_id b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (int i = 0; i < 20; ++i) {
        auto r = s.sample(logits);
        REQUIRE(r.ok());
        CHECK(r->logprob == doctest::Approx(want[r->token]).epsilon(1e-5));
        REQUIRE(r->top_logprobs.size() == 7);
        for (std::size_t j = 0; j < 7; ++j) {
            CHECK(r->top_logprobs[j].first == order[j]);
            CHECK(r->top_logprobs[j].second == doctest::Approx(want[order[j]]).epsilon(1e-5));
        }
    }
    p.logprobs = false;
    p.top_logprobs = 0;
    auto quiet = make_sampler(p);
    CHECK(quiet.sample(logits)->top_logprobs.empty());
}

TEST_CASE("sampler rejects bad logits rows and never samples -inf tokens") {
    const float inf = std::numeric_limits<float>::infinity();
    sampling_params p;
    p.seed = 1;
    auto s = make_sampler(p);
    CHECK_FALSE(s.sample(std::vector<float>{}).ok());
    auto nan_row = s.sample(std::vector<float>{0.0f, std::nanf(""), 1.0f});
    REQUIRE_FALSE(nan_row.ok());
    CHECK(nan_row.err().message.find("token 1") != std::string::npos);
    CHECK_FALSE(s.sample(std::vector<float>{0.0f, inf}).ok());
    CHECK_FALSE(s.sample(std::vector<float>{-inf, -inf}).ok());
    CHECK_FALSE(s.score(std::vector<float>{0.0f, 1.0f}, 2).ok());
    for (int i = 0; i < 500; ++i) {
        const token_id t = s.sample(std::vector<float>{-inf, 0.0f, -inf, 0.0f})->token;
        REQUIRE((t == 1 || t == 3));
    }
}

TEST_CASE("sampler state survives serialisation and continues the sequence identically") {
    sampling_params p;
    p.seed = 2024;
    p.temperature = 0.9f;
    p.repetition_penalty = 1.3f;
    p.frequency_penalty = 0.4f;
    auto a = make_sampler(p, {5, 6, 7, 5});
    std::vector<std::vector<float>> rows;
    for (unsigned i = 0; i < 30; ++i) {
        rows.push_back(random_logits(300, 500 + i, 1.0f));
    }
    for (int i = 0; i < 10; ++i) {
        a.accept(a.sample(rows[i])->token);
    }
    const std::string bytes = a.state().serialize();
    auto parsed = sampler_state::deserialize(bytes);
    REQUIRE(parsed.ok());
    CHECK(*parsed == a.state());
    auto b = sampler::restore(p, *parsed);
    REQUIRE(b.ok());
    for (int i = 10; i < 30; ++i) {
        const token_id ta = a.sample(rows[i])->token;
        const token_id tb = b->sample(rows[i])->token;
        REQUIRE(ta == tb);
        a.accept(ta);
        b->accept(tb);
    }
    CHECK(a.state() == b->state());
    CHECK(b->n_output_tokens() == 30);

    SUBCASE("corrupt byte strings are refused") {
        CHECK_FALSE(sampler_state::deserialize("").ok());
        CHECK_FALSE(sampler_state::deserialize(bytes.substr(0, bytes.size() - 1)).ok());
        CHECK_FALSE(sampler_state::deserialize(bytes + "x").ok());
        std::string bad_magic = bytes;
        bad_magic[0] = 'X';
        CHECK(sampler_state::deserialize(bad_magic).err().message.find("magic") != std::string::npos);
        sampler_state s = a.state();
        s.n_output_tokens += 1;
        CHECK_FALSE(sampler_state::deserialize(s.serialize()).ok());
        CHECK_FALSE(sampler::restore(p, s).ok());
    }
}

TEST_CASE("sampler handles a full-size vocabulary row") {
    sampling_params p;
    p.seed = 31;
    p.top_p = 0.9f;
    p.logprobs = true;
    p.top_logprobs = 20;
    auto s = make_sampler(p);
    const auto logits = random_logits(129280, 3, 1.5f);
    for (int i = 0; i < 5; ++i) {
        auto r = s.sample(logits);
        REQUIRE(r.ok());
        CHECK(r->token >= 0);
        CHECK(r->token < 129280);
        CHECK(r->top_logprobs.size() == 20);
        s.accept(r->token);
    }
}

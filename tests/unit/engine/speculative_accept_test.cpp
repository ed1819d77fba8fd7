// Tests of engine/speculative_accept: greedy chains, shape errors, stop tokens and caps, and the
// statistical guarantee that accepted-plus-resampled tokens follow the target distribution for an
// arbitrary draft distribution and for a greedy (one-hot) draft.
#include "engine/speculative_accept.h"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace cachalot;

namespace {

sampler make_sampler(const sampling_params& p) {
    auto s = sampler::create(p, {});
    REQUIRE(s.ok());
    return std::move(s).value();
}

std::vector<float> logits_from_probs(const std::vector<double>& probs) {
    std::vector<float> out;
    for (double p : probs) {
        out.push_back(p > 0 ? static_cast<float>(std::log(p)) : -INFINITY);
    }
    return out;
}

// Draws from probs with an independent generator (the "draft model").
token_id draw(sampler_rng& rng, const std::vector<double>& probs) {
    const double u = rng.next_double();
    double cum = 0.0;
    for (std::size_t i = 0; i < probs.size(); ++i) {
        cum += probs[i];
        if (u < cum) {
            return static_cast<token_id>(i);
        }
    }
    return static_cast<token_id>(probs.size() - 1);
}

double max_abs_error(const std::vector<int>& counts, int n, const std::vector<double>& want) {
    double err = 0.0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        err = std::max(err, std::abs(static_cast<double>(counts[i]) / n - want[i]));
    }
    return err;
}

} // namespace

TEST_CASE("greedy speculative acceptance keeps matching drafts and corrects the first mismatch") {
    sampling_params p;
    p.temperature = 0.0f;
    // Rows (V = 4): argmax 2, 1, 3, 0.
    const std::vector<float> rows{0, 0, 9, 0, 0, 9, 0, 0, 0, 0, 0, 9, 9, 0, 0, 0};
    SUBCASE("all drafts match: bonus token from the last row") {
        auto s = make_sampler(p);
        auto r = accept_draft(s, rows, 4, std::vector<token_id>{2, 1, 3}, {});
        REQUIRE(r.ok());
        CHECK(r->tokens == std::vector<token_id>{2, 1, 3, 0});
        CHECK(r->n_accepted_drafts == 3);
        CHECK(s.n_output_tokens() == 4);
    }
    SUBCASE("mismatch in the middle") {
        auto s = make_sampler(p);
        auto r = accept_draft(s, rows, 4, std::vector<token_id>{2, 0, 3}, {});
        REQUIRE(r.ok());
        CHECK(r->tokens == std::vector<token_id>{2, 1});
        CHECK(r->n_accepted_drafts == 1);
    }
    SUBCASE("empty draft is a plain decode step") {
        auto s = make_sampler(p);
        auto r = accept_draft(s, std::span<const float>(rows).subspan(0, 4), 4, {}, {});
        REQUIRE(r.ok());
        CHECK(r->tokens == std::vector<token_id>{2});
    }
    SUBCASE("stop token and EOS end the chain; max_new_tokens caps it") {
        sampling_params q = p;
        q.stop_token_ids = {1};
        auto s = make_sampler(q);
        auto r = accept_draft(s, rows, 4, std::vector<token_id>{2, 1, 3}, {});
        CHECK(r->tokens == std::vector<token_id>{2, 1});
        CHECK(r->hit_stop_token);
        auto s2 = make_sampler(p);
        speculative_options eos;
        eos.eos_token_id = 3;
        r = accept_draft(s2, rows, 4, std::vector<token_id>{2, 1, 3}, {}, eos);
        CHECK(r->tokens == std::vector<token_id>{2, 1, 3});
        CHECK(r->hit_stop_token);
        q.stop_token_ids = {};
        q.ignore_eos = true;
        auto s3 = make_sampler(q);
        r = accept_draft(s3, rows, 4, std::vector<token_id>{2, 1, 3}, {}, eos);
        CHECK(r->tokens.size() == 4);
        auto s4 = make_sampler(p);
        speculative_options cap;
        cap.max_new_tokens = 2;
        r = accept_draft(s4, rows, 4, std::vector<token_id>{2, 1, 3}, {}, cap);
        CHECK(r->tokens == std::vector<token_id>{2, 1});
        CHECK_FALSE(r->hit_stop_token);
    }
    SUBCASE("logprobs are reported for every emitted token") {
        sampling_params q = p;
        q.logprobs = true;
        q.top_logprobs = 2;
        auto s = make_sampler(q);
        auto r = accept_draft(s, rows, 4, std::vector<token_id>{2, 0, 3}, {});
        REQUIRE(r->samples.size() == 2);
        CHECK(r->samples[1].token == 1);
        CHECK(r->samples[1].logprob == doctest::Approx(9 - std::log(std::exp(9.0) + 3)));
        CHECK(r->samples[1].top_logprobs.size() == 2);
    }
}

TEST_CASE("speculative acceptance rejects mismatched shapes and bad drafts") {
    sampling_params p;
    p.seed = 1;
    auto s = make_sampler(p);
    const std::vector<float> rows(12, 0.0f);
    CHECK_FALSE(accept_draft(s, rows, 4, std::vector<token_id>{1}, {}).ok());
    CHECK_FALSE(accept_draft(s, rows, 4, std::vector<token_id>{1, 9}, {}).ok());
    CHECK_FALSE(accept_draft(s, rows, 4, std::vector<token_id>{1, 2}, std::vector<float>(4, 0.25f)).ok());
    std::vector<float> q(8, 0.25f);
    q[3] = -1.0f;
    CHECK_FALSE(accept_draft(s, rows, 4, std::vector<token_id>{1, 2}, q).ok());
    CHECK(s.n_output_tokens() == 0);
}

TEST_CASE("speculative sampling reproduces the target distribution for an arbitrary draft") {
    const std::vector<double> target0{0.1, 0.4, 0.05, 0.25, 0.2};
    const std::vector<double> target1{0.3, 0.1, 0.2, 0.1, 0.3};
    const std::vector<double> draft0{0.3, 0.1, 0.3, 0.2, 0.1};
    std::vector<float> rows = logits_from_probs(target0);
    const auto row1 = logits_from_probs(target1);
    rows.insert(rows.end(), row1.begin(), row1.end());
    std::vector<float> q(draft0.begin(), draft0.end());

    sampling_params p;
    p.seed = 77;
    auto s = make_sampler(p);
    sampler_rng draft_rng(4242);
    const int n = 200000;
    std::vector<int> first(5, 0);
    std::vector<int> bonus(5, 0);
    int n_bonus = 0;
    int n_accepted = 0;
    for (int i = 0; i < n; ++i) {
        const token_id d = draw(draft_rng, draft0);
        auto r = accept_draft(s, rows, 5, std::vector<token_id>{d}, q);
        REQUIRE(r.ok());
        ++first[r->tokens[0]];
        if (r->n_accepted_drafts == 1) {
            ++n_accepted;
            REQUIRE(r->tokens.size() == 2);
            ++bonus[r->tokens[1]];
            ++n_bonus;
        } else {
            REQUIRE(r->tokens.size() == 1);
        }
    }
    CHECK(max_abs_error(first, n, target0) < 0.01);
    CHECK(max_abs_error(bonus, n_bonus, target1) < 0.01);
    // Acceptance rate is sum_x min(p(x), q(x)).
    double rate = 0.0;
    for (std::size_t i = 0; i < 5; ++i) {
        rate += std::min(target0[i], draft0[i]);
    }
    CHECK(std::abs(static_cast<double>(n_accepted) / n - rate) < 0.01);
}

TEST_CASE("speculative sampling reproduces the target distribution for a greedy draft") {
    const std::vector<double> target{0.1, 0.4, 0.05, 0.25, 0.2};
    const std::vector<float> rows0 = logits_from_probs(target);
    sampling_params p;
    p.seed = 5;
    auto s = make_sampler(p);
    for (token_id d : {1, 2}) {
        std::vector<float> rows = rows0;
        rows.insert(rows.end(), rows0.begin(), rows0.end());
        const int n = 200000;
        std::vector<int> first(5, 0);
        int n_accepted = 0;
        for (int i = 0; i < n; ++i) {
            auto r = accept_draft(s, rows, 5, std::vector<token_id>{d}, {});
            REQUIRE(r.ok());
            ++first[r->tokens[0]];
            n_accepted += static_cast<int>(r->n_accepted_drafts);
        }
        CAPTURE(d);
        CHECK(max_abs_error(first, n, target) < 0.01);
        CHECK(std::abs(static_cast<double>(n_accepted) / n - target[d]) < 0.01);
    }
}

TEST_CASE("speculative sampling keeps truncation and longer chains exact") {
    // top-k 3 truncates the target; the first emitted token must follow the truncated
    // distribution, and the second (after an accepted first draft) the second row's.
    const std::vector<double> t0{0.1, 0.4, 0.05, 0.25, 0.2};
    const std::vector<double> t1{0.2, 0.2, 0.3, 0.1, 0.2};
    std::vector<float> rows = logits_from_probs(t0);
    for (const auto& row : {t1, t0}) {
        const auto l = logits_from_probs(row);
        rows.insert(rows.end(), l.begin(), l.end());
    }
    sampling_params p;
    p.seed = 9;
    p.top_k = 3;
    auto s = make_sampler(p);
    const std::vector<double> want0{0.0, 0.4 / 0.85, 0.0, 0.25 / 0.85, 0.2 / 0.85};
    const int n = 200000;
    std::vector<int> first(5, 0);
    std::vector<int> second(5, 0);
    int n_second = 0;
    const std::vector<float> q{0.2f, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
    sampler_rng draft_rng(1);
    const std::vector<double> uniform(5, 0.2);
    for (int i = 0; i < n; ++i) {
        const std::vector<token_id> draft{draw(draft_rng, uniform), draw(draft_rng, uniform)};
        auto r = accept_draft(s, rows, 5, draft, q);
        REQUIRE(r.ok());
        ++first[r->tokens[0]];
        if (r->n_accepted_drafts >= 1) {
            ++second[r->tokens[1]];
            ++n_second;
        }
    }
    CHECK(max_abs_error(first, n, want0) < 0.01);
    // Row 1 under top-k 3 keeps 2 (0.3) and the three-way tie at 0.2 (HF/vLLM keep ties).
    const std::vector<double> want1{0.2 / 0.9, 0.2 / 0.9, 0.3 / 0.9, 0.0, 0.2 / 0.9};
    CHECK(max_abs_error(second, n_second, want1) < 0.01);
}

// The generation loop: greedy output is identical with and without MTP speculative decoding
// (through accepted and rejected drafts alike), seeded sampling reproduces, and stop strings,
// stop ids and max_tokens end generation with the right reason.
#include <doctest/doctest.h>

#include <map>
#include <utility>

#include "engine/generator.h"
#include "tests/support/golden.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_model.h"

using namespace cachalot;
using namespace cachalot::test;

namespace {

struct tiny {
    const model* m;
    tokenizer tok;
};

const tiny& tiny_model_and_tokenizer() {
    static tiny t = [] {
        auto tok = tokenizer::load(tiny_model_dir() + "/tokenizer.json");
        REQUIRE(tok.ok());
        return tiny{&tiny_model(), std::move(*tok)};
    }();
    return t;
}

struct run_result {
    std::string text;
    generation_stats stats;
};

run_result run(const generate_options& g, std::span<const int32_t> prompt) {
    const auto& t = tiny_model_and_tokenizer();
    run_result r;
    auto s = generate(*t.m, t.tok, prompt, g, [&](std::string_view piece) {
        r.text += piece;
        return true;
    });
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.err().message));
    r.stats = *s;
    return r;
}

std::vector<int32_t> prompt_ids() {
    auto ids = read_token_json(shared_dir() + "/fixtures/golden/tiny-v4-long.tokens.json");
    return std::vector<int32_t>(ids.begin(), ids.begin() + 140); // past the 128 window
}

} // namespace

TEST_CASE("greedy generation is identical with and without MTP, through accepted and rejected drafts") {
    auto prompt = prompt_ids();
    for (precision p : {precision::exact, precision::fast}) {
        generate_options g;
        g.prec = p;
        g.sampling.temperature = 0;
        g.sampling.max_tokens = 40;
        g.sampling.ignore_eos = true;
        g.prefill_chunk = 64;
        auto plain = run(g, prompt);
        REQUIRE(plain.stats.tokens.size() == 40);

        // Drafts right at some positions and wrong at others, so both paths of the verifier run.
        std::map<int64_t, int32_t> truth;
        for (size_t i = 0; i < plain.stats.tokens.size(); ++i) {
            truth[int64_t(prompt.size() + i)] = plain.stats.tokens[i];
        }
        g.use_mtp = true;
        g.draft_policy = [&](int64_t pos, std::span<const float>) {
            auto it = truth.find(pos);
            int32_t right = it == truth.end() ? 0 : it->second;
            return pos % 3 == 0 ? (right + 1) % 1024 : right;
        };
        auto spec = run(g, prompt);
        CHECK(spec.stats.tokens == plain.stats.tokens);
        CHECK(spec.text == plain.text);
        CHECK(spec.stats.n_accepted > 0);
        CHECK(spec.stats.n_accepted < spec.stats.n_drafted);
        CHECK(spec.stats.n_trunk_steps < plain.stats.n_trunk_steps);

        // The model's own MTP drafts (a random model: mostly rejected) change nothing either.
        g.draft_policy = nullptr;
        auto own = run(g, prompt);
        CHECK(own.stats.tokens == plain.stats.tokens);
    }
}

TEST_CASE("seeded sampling reproduces, with and without MTP drafting") {
    auto prompt = prompt_ids();
    generate_options g;
    g.sampling.temperature = 0.9f;
    g.sampling.top_p = 0.95f;
    g.sampling.seed = 1234;
    g.sampling.max_tokens = 24;
    g.sampling.ignore_eos = true;
    auto a = run(g, prompt), b = run(g, prompt);
    CHECK(a.stats.tokens == b.stats.tokens);
    g.sampling.seed = 99;
    auto c = run(g, prompt);
    CHECK(c.stats.tokens != a.stats.tokens);
    g.use_mtp = true;
    auto d = run(g, prompt), e = run(g, prompt);
    CHECK(d.stats.tokens == e.stats.tokens);
    CHECK(d.stats.n_drafted > 0);
}

TEST_CASE("generation stops at max_tokens, at a stop id and at a stop string") {
    auto prompt = prompt_ids();
    generate_options g;
    g.sampling.temperature = 0;
    g.sampling.max_tokens = 12;
    g.sampling.ignore_eos = true;
    auto full = run(g, prompt);
    CHECK(full.stats.finish == finish_reason::length);
    CHECK(full.stats.n_generated_tokens == 12);

    g.sampling.stop_token_ids = {full.stats.tokens[5]};
    auto by_id = run(g, prompt);
    CHECK(by_id.stats.finish == finish_reason::stop);
    CHECK(by_id.stats.tokens.size() <= 6);

    REQUIRE(full.text.size() > 8);
    g.sampling.stop_token_ids.clear();
    g.sampling.stop = {full.text.substr(full.text.size() / 2, 3)};
    auto by_text = run(g, prompt);
    CHECK(by_text.stats.finish == finish_reason::stop);
    CHECK(by_text.text.size() < full.text.size());
    CHECK(full.text.rfind(by_text.text, 0) == 0);
}

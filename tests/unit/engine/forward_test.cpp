// The V4 forward pass against the shared golden logits (independent implementations), in every
// feeding mode, for the trunk and the MTP head; plus the properties serving relies on: batch
// invariance, exact rollback, and clear failures on bad input.
#include <doctest/doctest.h>

#include <cstdio>
#include <utility>

#include "engine/logits_runner.h"
#include "engine/model.h"
#include "kernels/attention.h"
#include "kernels/dtype.h"
#include "tests/support/golden.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_model.h"

using namespace cachalot;
using namespace cachalot::test;

namespace {

struct golden_case {
    const char* name;
    std::string tokens, logits;
};

std::vector<golden_case> golden_cases(bool mtp) {
    std::string g = shared_dir() + "/fixtures/golden/";
    std::vector<golden_case> v;
    for (const char* f : {"tiny-v4", "tiny-v4-long"}) {
        v.push_back({f, g + f + ".tokens.json", g + f + (mtp ? ".mtp.logits.f32" : ".logits.f32")});
    }
    return v;
}

void check_exact(logits_head head) {
    const model& m = tiny_model();
    const int64_t V = m.config().vocab_size;
    for (const auto& gc : golden_cases(head == logits_head::mtp)) {
        auto ids = read_token_json(gc.tokens);
        auto golden = read_f32_file(gc.logits);
        const int64_t n = int64_t(ids.size());
        for (int64_t chunk : {n, int64_t(1), int64_t(7), int64_t(64)}) {
            CAPTURE(gc.name);
            CAPTURE(chunk);
            auto out = compute_logits(m, ids, chunk, head, precision::exact);
            REQUIRE_MESSAGE(out.ok(), (out.ok() ? "" : out.err().message));
            auto c = compare_logits(golden, *out, V);
            INFO(c.report);
            CHECK(c.all_finite);
            CHECK(c.rel_max_diff <= 1e-4);
            CHECK(c.top1_agreement == 1.0);
        }
    }
}

} // namespace

TEST_CASE("exact trunk logits match the goldens in prefill, incremental and chunked modes") {
    check_exact(logits_head::main);
}

TEST_CASE("exact MTP logits match the MTP goldens in prefill, incremental and chunked modes") {
    check_exact(logits_head::mtp);
}

TEST_CASE("fast precision agrees with the goldens on top-1 for at least 95 percent of positions") {
    const model& m = tiny_model();
    for (bool mtp : {false, true}) {
        for (const auto& gc : golden_cases(mtp)) {
            auto ids = read_token_json(gc.tokens);
            auto out = compute_logits(m, ids, 64, mtp ? logits_head::mtp : logits_head::main, precision::fast);
            REQUIRE(out.ok());
            auto c = compare_logits(read_f32_file(gc.logits), *out, m.config().vocab_size);
            std::printf("fast %s%s: %s", gc.name, mtp ? " (mtp)" : "", c.report.c_str());
            CHECK(c.all_finite);
            CHECK(c.top1_agreement >= 0.95);
        }
    }
}

TEST_CASE("a batch of sequences gives each the logits it gets alone, in both precisions") {
    const model& m = tiny_model();
    for (precision prec : {precision::exact, precision::fast}) {
        CAPTURE(int(prec));
        const int64_t V = m.config().vocab_size;
        auto ids = read_token_json(shared_dir() + "/fixtures/golden/tiny-v4-long.tokens.json");
        std::vector<int32_t> a(ids.begin(), ids.begin() + 150), b(ids.begin() + 40, ids.begin() + 97);
        auto alone_a = compute_logits(m, a, 150, logits_head::main, prec);
        auto alone_b = compute_logits(m, b, 57, logits_head::main, prec);
        REQUIRE(alone_a.ok());
        REQUIRE(alone_b.ok());

        // Prefill both together, then decode both together one token at a time.
        sequence_state sa = m.new_sequence(prec), sb = m.new_sequence(prec);
        std::vector<float> la(size_t(150 * V)), lb(size_t(57 * V));
        forward_item items[2];
        items[0] = {&sa, std::span<const int32_t>(a.data(), 140), true, la.data(), nullptr};
        items[1] = {&sb, std::span<const int32_t>(b.data(), 50), true, lb.data(), nullptr};
        REQUIRE(m.forward(items, prec).ok());
        for (int step = 0; step < 10; ++step) {
            int n_items = 0;
            forward_item step_items[2];
            step_items[n_items++] = {&sa, std::span<const int32_t>(a.data() + 140 + step, 1), false,
                                     la.data() + (140 + step) * V, nullptr};
            if (step < 7) {
                step_items[n_items++] = {&sb, std::span<const int32_t>(b.data() + 50 + step, 1), false,
                                         lb.data() + (50 + step) * V, nullptr};
            }
            REQUIRE(m.forward(std::span<forward_item>(step_items, size_t(n_items)), prec).ok());
        }
        CHECK(compare_logits(*alone_a, la, V).max_abs_diff == 0.0);
        CHECK(compare_logits(*alone_b, lb, V).max_abs_diff == 0.0);
    }
}

TEST_CASE("rolling a sequence back and feeding other tokens equals a fresh run") {
    const model& m = tiny_model();
    const int64_t V = m.config().vocab_size;
    auto ids = read_token_json(shared_dir() + "/fixtures/golden/tiny-v4-long.tokens.json");
    // Positions 252..259 cross an HCA window boundary (256) and several CSA windows; in `fast`,
    // the indexer's BF16 key lanes are rolled back and rewritten with the compressed entries.
    std::vector<int32_t> seq(ids.begin(), ids.begin() + 260);
    for (precision prec : {precision::exact, precision::fast}) {
        CAPTURE(prec == precision::fast);
        auto straight = compute_logits(m, seq, 260, logits_head::main, prec);
        REQUIRE(straight.ok());

        sequence_state st = m.new_sequence(prec);
        forward_item item{&st, std::span<const int32_t>(seq.data(), 252), false, nullptr, nullptr};
        REQUIRE(m.forward(std::span<forward_item>(&item, 1), prec).ok());
        std::vector<int32_t> wrong = {5, 6, 7, 8, 9, 10};
        item = {&st, std::span<const int32_t>(wrong), false, nullptr, nullptr};
        REQUIRE(m.forward(std::span<forward_item>(&item, 1), prec).ok());
        st.truncate(252);
        CHECK(st.n_past == 252);
        std::vector<float> tail(size_t(8 * V));
        item = {&st, std::span<const int32_t>(seq.data() + 252, 8), true, tail.data(), nullptr};
        REQUIRE(m.forward(std::span<forward_item>(&item, 1), prec).ok());
        std::vector<float> expect(straight->begin() + 252 * V, straight->end());
        CHECK(compare_logits(expect, tail, V).max_abs_diff == 0.0);
    }
}

TEST_CASE("forward rejects token ids outside the vocabulary and leaves the state unchanged") {
    const model& m = tiny_model();
    sequence_state st = m.new_sequence(precision::exact);
    std::vector<int32_t> bad = {3, int32_t(m.config().vocab_size)};
    forward_item item{&st, std::span<const int32_t>(bad), false, nullptr, nullptr};
    auto s = m.forward(std::span<forward_item>(&item, 1), precision::exact);
    REQUIRE_FALSE(s.ok());
    CHECK(s.err().message.find("outside the vocabulary") != std::string::npos);
    CHECK(st.n_past == 0);
}

TEST_CASE("forward rejects a batch that holds the same sequence twice, touching nothing") {
    const model& m = tiny_model();
    sequence_state st = m.new_sequence(precision::fast);
    std::vector<int32_t> a = {3, 4}, b = {5};
    forward_item items[2] = {{&st, std::span<const int32_t>(a), false, nullptr, nullptr},
                             {&st, std::span<const int32_t>(b), false, nullptr, nullptr}};
    auto s = m.forward(std::span<forward_item>(items, 2), precision::fast);
    REQUIRE_FALSE(s.ok());
    CHECK(s.err().message.find("twice") != std::string::npos);
    CHECK(st.n_past == 0);
}

TEST_CASE("a sequence keeps its keys for its precision: BF16 for fast, F32 for exact, and refuses the other") {
    const model& m = tiny_model();
    auto ids = read_token_json(shared_dir() + "/fixtures/golden/tiny-v4-long.tokens.json");
    std::vector<int32_t> seq(ids.begin(), ids.begin() + 200);
    sequence_state fast = m.new_sequence(precision::fast), exact = m.new_sequence(precision::exact);
    for (auto [st, prec] : {std::pair{&fast, precision::fast}, std::pair{&exact, precision::exact}}) {
        forward_item item{st, std::span<const int32_t>(seq), false, nullptr, nullptr};
        REQUIRE(m.forward(std::span<forward_item>(&item, 1), prec).ok());
    }
    int64_t fast_entries = 0;
    for (size_t l = 0; l < fast.layers.size(); ++l) {
        const layer_state &f = fast.layers[l], &e = exact.layers[l];
        CHECK(f.window.empty());
        CHECK(e.window16.empty());
        CHECK(f.window16.size() == e.window.size());
        CHECK(f.compressor.entries.empty());
        CHECK(e.compressor.entries16.empty());
        CHECK(f.compressor.n_entries() == e.compressor.n_entries());
        CHECK(e.index_compressor.lanes.empty()); // only `fast` scores in BF16
        CHECK(e.index_compressor.entries.size() == size_t(e.index_compressor.n_entries() * e.index_compressor.dim));
        if (f.index_compressor.n_entries() > 0) {
            // Indexer keys in one form: BF16 lanes where the CPU has a BF16 dot, else F32.
            CHECK(f.index_compressor.lanes.empty() != indexer_scores_bf16_native());
            CHECK(f.index_compressor.entries.empty() == indexer_scores_bf16_native());
        }
        fast_entries += f.compressor.n_entries();
        // The same entries, in BF16 (fast and exact differ in rounding only: a few percent RMS).
        double diff = 0.0, norm = 0.0;
        for (int64_t w = 0; w < f.compressor.n_entries(); ++w) {
            for (int64_t i = 0; i < f.compressor.dim; ++i) {
                const double fe = bf16_to_f32(f.compressor.entry16(w)[i]), ee = e.compressor.entry(w)[i];
                diff += (fe - ee) * (fe - ee);
                norm += ee * ee;
            }
        }
        CHECK(diff <= 0.05 * 0.05 * norm);
    }
    CHECK(fast_entries > 0);
    CHECK(fast.size_bytes() < exact.size_bytes());

    // Each refuses the other precision and is left as it was.
    std::vector<int32_t> more = {3, 4};
    for (auto [st, other] : {std::pair{&fast, precision::exact}, std::pair{&exact, precision::fast}}) {
        forward_item item{st, std::span<const int32_t>(more), false, nullptr, nullptr};
        auto s = m.forward(std::span<forward_item>(&item, 1), other);
        REQUIRE_FALSE(s.ok());
        CHECK(s.err().message.find("made for the") != std::string::npos);
        CHECK(st->n_past == 200);
    }
}

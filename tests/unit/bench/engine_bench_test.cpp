// The engine benchmark behind `cachalot bench` (bench/engine_bench.h): test names, the counts a
// run reports, min <= median <= max, progress lines, and the refusals. No timing is asserted.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "bench/engine_bench.h"
#include "tests/support/tiny_model.h"

using namespace cachalot;
using namespace cachalot::test;

TEST_CASE("bench test names: ppN, tgN, tgNxS, and refusals that name the test") {
    auto pp = bench::parse_bench_test("pp512");
    REQUIRE(pp.ok());
    CHECK(pp->prefill);
    CHECK(pp->n_tokens == 512);
    CHECK(pp->n_seqs == 1);
    auto tg = bench::parse_bench_test("tg128x16");
    REQUIRE(tg.ok());
    CHECK_FALSE(tg->prefill);
    CHECK(tg->n_tokens == 128);
    CHECK(tg->n_seqs == 16);
    for (const char* bad :
         {"pp", "tg", "pp512x2", "tg0", "tg4x0", "xx12", "pp-1", "pp1048577", "tg1x1025", "pp99999999999999999999"}) {
        CAPTURE(bad);
        auto r = bench::parse_bench_test(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.err().message.find(bad) != std::string::npos);
    }
    CHECK(bench::parse_bench_test("pp1048576").ok());
    CHECK(bench::parse_bench_test("tg1x1024").ok());
    const auto defaults = bench::default_bench_tests();
    CHECK(defaults ==
          std::vector<std::string>{"pp512", "pp2048", "tg128", "tg128x4", "tg128x16", "tg128x64", "pp8192", "pp32768"});
}

TEST_CASE("a bench run reports every repetition, counts all sequences, and says how far a long one has come") {
    bench::bench_options o;
    o.reps = 3;
    o.prefill_chunk = 8; // several forward steps per prefill repetition
    o.progress_every_s = 0.0;
    for (const char* name : {"pp40", "tg6x3"}) {
        CAPTURE(name);
        auto t = bench::parse_bench_test(name);
        REQUIRE(t.ok());
        std::vector<std::string> lines;
        auto r = bench::run_bench_test(tiny_model(), *t, o, [&](const std::string& l) { lines.push_back(l); });
        REQUIRE(r.ok());
        REQUIRE(r->tokens_per_s.size() == 3);
        CHECK(0 < r->min());
        CHECK(r->min() <= r->median());
        CHECK(r->median() <= r->max());
        int per_rep = 0, within = 0;
        for (const auto& l : lines) {
            per_rep += l.find(" tok/s (") != std::string::npos;
            within += l.find(" tokens, ") != std::string::npos && l.find("so far") != std::string::npos;
        }
        CHECK(per_rep == 3);
        CHECK(within > 0); // pp40: 40/ and tg6x3: 18 tokens in all
        const std::string total = std::string(name) == "pp40" ? "/40 tokens" : "/18 tokens";
        for (const auto& l : lines) {
            if (l.find("so far") != std::string::npos) {
                CHECK(l.find(total) != std::string::npos);
            }
        }
    }
}

TEST_CASE("a bench test longer than the model's context is refused before it runs") {
    bench::bench_test t{"pp2000000", true, 2000000, 1};
    auto r = bench::run_bench_test(tiny_model(), t, bench::bench_options{}, nullptr);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().message.find("pp2000000 needs 2000000 positions") != std::string::npos);
}

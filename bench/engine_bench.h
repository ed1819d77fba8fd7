// The engine benchmark behind `cachalot bench`: llama-bench-style tests on a loaded model —
// ppN (prefill N tokens in one sequence), tgN (decode N tokens one at a time from an empty
// context), tgNxS (S sequences decoding N tokens together, weights streamed once per step) —
// with min/median/max over repetitions and the process's peak RSS. Inputs are seeded random
// token ids, so runs are repeatable; no sampling is timed (as in llama-bench).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model.h"

namespace cachalot::bench {

struct bench_test {
    std::string name; // "pp512", "tg128", "tg128x16"
    bool prefill = false;
    int64_t n_tokens = 0; // per sequence
    int64_t n_seqs = 1;
};

/// Limits of parse_bench_test: a V4 context, and a batch far past any the engine serves.
constexpr int64_t k_max_bench_tokens = int64_t(1) << 20;
constexpr int64_t k_max_bench_seqs = 1024;

/// Parses "pp512", "tg128", "tg128x16"; errors name the bad test.
[[nodiscard]] result<bench_test> parse_bench_test(const std::string& name);
/// The default list: every test but pp131072.
std::vector<std::string> default_bench_tests();

struct bench_result {
    bench_test test;
    std::vector<double> tokens_per_s; // one per repetition, all sequences together
    double min() const;
    double median() const;
    double max() const;
};

struct bench_options {
    int64_t reps = 5;
    int64_t prefill_chunk = 2048; // tokens per forward step in ppN
    precision prec = precision::fast;
    uint64_t seed = 42;
    double progress_every_s = 10.0; // seconds between progress lines inside a repetition
};

/// Runs one test `reps` times; `progress` gets a line per repetition, and one every
/// progress_every_s inside a long repetition (for stderr).
[[nodiscard]] result<bench_result> run_bench_test(const model& m, const bench_test& t, const bench_options& o,
                                                  const std::function<void(const std::string&)>& progress);

/// Peak resident set size of this process so far, in bytes.
int64_t peak_rss_bytes();

} // namespace cachalot::bench

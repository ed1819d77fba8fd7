// See engine_bench.h.
#include "bench/engine_bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <regex>

namespace cachalot::bench {

result<bench_test> parse_bench_test(const std::string& name) {
    static const std::regex re("^(pp|tg)([0-9]+)(?:x([0-9]+))?$");
    std::smatch m;
    if (!std::regex_match(name, m, re)) {
        return make_error(errc::invalid_argument,
                          "unknown test '" + name + "': expected ppN (prefill), tgN (decode) or tgNxS (S sequences)");
    }
    // Counts past these are typos, not benchmarks: refuse them before anything is allocated.
    auto count = [](const std::string& digits, int64_t limit) -> int64_t {
        return digits.size() > 9 ? limit + 1 : std::stoll(digits);
    };
    bench_test t;
    t.name = name;
    t.prefill = m[1] == "pp";
    t.n_tokens = count(m[2], k_max_bench_tokens);
    t.n_seqs = m[3].matched ? count(m[3], k_max_bench_seqs) : 1;
    if (t.n_tokens <= 0 || t.n_seqs <= 0 || (t.prefill && m[3].matched)) {
        return make_error(errc::invalid_argument, "test '" + name + "': counts must be positive; ppN takes no xS");
    }
    if (t.n_tokens > k_max_bench_tokens || t.n_seqs > k_max_bench_seqs) {
        return make_error(errc::invalid_argument, "test '" + name + "': at most " + std::to_string(k_max_bench_tokens) +
                                                      " tokens and " + std::to_string(k_max_bench_seqs) +
                                                      " sequences per test");
    }
    return t;
}

std::vector<std::string> default_bench_tests() {
    return {"pp512", "pp2048", "tg128", "tg128x4", "tg128x16", "tg128x64", "pp8192", "pp32768"};
}

static double pick(std::vector<double> v, int which) {
    std::sort(v.begin(), v.end());
    if (v.empty()) {
        return 0;
    }
    if (which < 0) {
        return v.front();
    }
    if (which > 0) {
        return v.back();
    }
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double bench_result::min() const {
    return pick(tokens_per_s, -1);
}
double bench_result::median() const {
    return pick(tokens_per_s, 0);
}
double bench_result::max() const {
    return pick(tokens_per_s, 1);
}

int64_t peak_rss_bytes() {
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    return int64_t(ru.ru_maxrss) * 1024;
}

namespace {

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t& seed) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        t = int32_t((seed >> 33) % uint64_t(vocab));
    }
    return v;
}

} // namespace

result<bench_result> run_bench_test(const model& m, const bench_test& t, const bench_options& o,
                                    const std::function<void(const std::string&)>& progress) {
    const int64_t V = m.config().vocab_size;
    if (t.n_tokens > m.config().max_position_embeddings) {
        return make_error(errc::invalid_argument, t.name + " needs " + std::to_string(t.n_tokens) +
                                                      " positions; the model's context is " +
                                                      std::to_string(m.config().max_position_embeddings));
    }
    bench_result r;
    r.test = t;
    uint64_t seed = o.seed;
    std::vector<float> logits(static_cast<size_t>(V * t.n_seqs));
    for (int64_t rep = 0; rep < o.reps; ++rep) {
        std::vector<sequence_state> states;
        for (int64_t s = 0; s < t.n_seqs; ++s) {
            states.push_back(m.new_sequence(o.prec));
        }
        std::vector<std::vector<int32_t>> toks;
        for (int64_t s = 0; s < t.n_seqs; ++s) {
            toks.push_back(random_tokens(t.n_tokens, V, seed));
        }
        auto t0 = std::chrono::steady_clock::now();
        auto last_line = t0;
        const int64_t total = t.n_tokens * t.n_seqs;
        // A long prompt runs for minutes: say how far it has come now and then.
        auto tick = [&](int64_t done) {
            auto now = std::chrono::steady_clock::now();
            if (!progress || done >= total ||
                std::chrono::duration<double>(now - last_line).count() < o.progress_every_s) {
                return;
            }
            last_line = now;
            char line[160];
            std::snprintf(line, sizeof line, "%s rep %lld/%lld: %lld/%lld tokens, %.2f tok/s so far", t.name.c_str(),
                          (long long)(rep + 1), (long long)o.reps, (long long)done, (long long)total,
                          double(done) / std::chrono::duration<double>(now - t0).count());
            progress(line);
        };
        if (t.prefill) {
            const auto& ids = toks[0];
            for (int64_t p0 = 0; p0 < t.n_tokens; p0 += o.prefill_chunk) {
                int64_t c = std::min(o.prefill_chunk, t.n_tokens - p0);
                bool last = p0 + c == t.n_tokens;
                forward_item item{&states[0], std::span<const int32_t>(ids.data() + p0, size_t(c)), false,
                                  last ? logits.data() : nullptr, nullptr};
                CACHALOT_TRY(m.forward(std::span<forward_item>(&item, 1), o.prec));
                tick(p0 + c);
            }
        } else {
            std::vector<forward_item> items(static_cast<size_t>(t.n_seqs));
            for (int64_t step = 0; step < t.n_tokens; ++step) {
                for (int64_t s = 0; s < t.n_seqs; ++s) {
                    items[size_t(s)] =
                        forward_item{&states[size_t(s)], std::span<const int32_t>(toks[size_t(s)].data() + step, 1),
                                     false, logits.data() + s * V, nullptr};
                }
                CACHALOT_TRY(m.forward(items, o.prec));
                tick((step + 1) * t.n_seqs);
            }
        }
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double tps = double(total) / sec;
        r.tokens_per_s.push_back(tps);
        if (progress) {
            char line[160];
            std::snprintf(line, sizeof line, "%s rep %lld/%lld: %.2f tok/s (%.3f s)", t.name.c_str(),
                          (long long)(rep + 1), (long long)o.reps, tps, sec);
            progress(line);
        }
    }
    return r;
}

} // namespace cachalot::bench

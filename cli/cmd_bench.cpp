// `cachalot bench`: llama-bench-style throughput of the engine on a model (see
// bench/engine_bench.h). Progress goes to stderr; the table, or with --json exactly the object
// of DESIGN.md §10, goes to stdout.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/engine_bench.h"
#include "cli/commands.h"
#include "engine/json.h"
#include "kernels/attention.h"

namespace cachalot::cli {

namespace {

struct bench_cli_options {
    std::string model_dir;
    int threads = 0;
    int64_t reps = 5;
    std::string tests;
    bool json = false;
    std::string precision_name = "fast";
};

int run_bench(const bench_cli_options& o) {
    auto fail = [](const std::string& msg) {
        std::fprintf(stderr, "cachalot bench: %s\n", msg.c_str());
        return 1;
    };
    std::vector<bench::bench_test> tests;
    std::vector<std::string> names;
    if (o.tests.empty()) {
        names = bench::default_bench_tests();
    } else {
        std::stringstream ss(o.tests);
        std::string item;
        while (std::getline(ss, item, ',')) {
            if (!item.empty()) {
                names.push_back(item);
            }
        }
    }
    for (const auto& n : names) {
        auto t = bench::parse_bench_test(n);
        if (!t) {
            return fail(t.err().message);
        }
        tests.push_back(*t);
    }
    if (tests.empty()) {
        return fail("--tests names no test");
    }
    if (o.reps <= 0) {
        return fail("--reps must be positive");
    }
    bench::bench_options bo;
    bo.reps = o.reps;
    if (o.precision_name == "exact") {
        bo.prec = precision::exact;
    } else if (o.precision_name != "fast") {
        return fail("--precision " + o.precision_name + ": expected exact or fast");
    }
    int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    thread_pool::set_global_threads(threads);
    load_options lo;
    lo.with_mtp = false;
    lo.pack_for_fast = bo.prec == precision::fast;
    auto m = model::load(o.model_dir, lo);
    if (!m) {
        return fail(m.err().message);
    }
    std::fprintf(stderr, "cachalot bench: %s, %d threads, %s matmul and %s attention kernels, %lld reps\n",
                 o.model_dir.c_str(), threads, std::string(cpu_backend_name()).c_str(),
                 std::string(attention_backend_name()).c_str(), (long long)o.reps);
    // Warm-up: page the weights in and size the pool before anything is timed.
    {
        bench::bench_options warm = bo;
        warm.reps = 1;
        auto w = bench::run_bench_test(**m, bench::bench_test{"warmup", true, 16, 1}, warm, nullptr);
        if (!w) {
            return fail(w.err().message);
        }
    }
    std::vector<bench::bench_result> results;
    for (const auto& t : tests) {
        auto r = bench::run_bench_test(**m, t, bo,
                                       [](const std::string& line) { std::fprintf(stderr, "  %s\n", line.c_str()); });
        if (!r) {
            return fail(r.err().message);
        }
        results.push_back(*r);
    }
    const int64_t rss = bench::peak_rss_bytes();
    std::string model_name = o.model_dir;
    while (model_name.size() > 1 && model_name.back() == '/') {
        model_name.pop_back();
    }
    if (auto slash = model_name.find_last_of('/'); slash != std::string::npos) {
        model_name = model_name.substr(slash + 1);
    }
    if (o.json) {
        std::string quoted_name;
        append_json_string(quoted_name, model_name);
        std::printf("{\"model\": %s, \"threads\": %d, \"peak_rss_bytes\": %lld, \"results\": [", quoted_name.c_str(),
                    threads, (long long)rss);
        for (size_t i = 0; i < results.size(); ++i) {
            const auto& r = results[i];
            std::printf("%s{\"test\": \"%s\", \"n_seqs\": %lld, \"n_tokens\": %lld, \"tokens_per_s\": {\"min\": %.3f, "
                        "\"median\": %.3f, \"max\": %.3f}}",
                        i ? ", " : "", r.test.name.c_str(), (long long)r.test.n_seqs,
                        (long long)(r.test.n_tokens * r.test.n_seqs), r.min(), r.median(), r.max());
        }
        std::printf("]}\n");
    } else {
        std::printf("| model | threads | test | seqs | tokens | tok/s min | tok/s median | tok/s max |\n");
        std::printf("|---|---|---|---|---|---|---|---|\n");
        for (const auto& r : results) {
            std::printf("| %s | %d | %s | %lld | %lld | %.2f | %.2f | %.2f |\n", model_name.c_str(), threads,
                        r.test.name.c_str(), (long long)r.test.n_seqs, (long long)(r.test.n_tokens * r.test.n_seqs),
                        r.min(), r.median(), r.max());
        }
        std::printf("\npeak RSS: %.1f MiB\n", double(rss) / (1024.0 * 1024.0));
    }
    return 0;
}

} // namespace

void add_bench_command(CLI::App& root, command_list& out) {
    auto o = std::make_shared<bench_cli_options>();
    auto* app = root.add_subcommand("bench", "Benchmark prompt processing and decoding (llama-bench style)");
    app->add_option("--model", o->model_dir, "Checkpoint directory")->required();
    app->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
    app->add_option("--reps", o->reps, "Repetitions per test")->capture_default_str();
    app->add_option("--tests", o->tests,
                    "Comma-separated: ppN, tgN, tgNxS (default pp512,pp2048,tg128,tg128x4,tg128x16,tg128x64,"
                    "pp8192,pp32768; pp131072 on request)");
    app->add_flag("--json", o->json, "Print one JSON object (DESIGN.md §10) instead of a table");
    app->add_option("--precision", o->precision_name, "fast (default) | exact")->capture_default_str();
    out.push_back({app, [o] { return run_bench(*o); }});
}

} // namespace cachalot::cli

// `cachalot logits`: runs a token sequence through the model and writes raw little-endian
// float32 logits [rows][vocab] (the format of the shared golden files). The mode decides how
// the sequence is fed (one prefill, token by token, or chunks of N) so that every path of the
// engine can be checked against the same golden; `--head mtp` writes the MTP block's logits.
#include <CLI/CLI.hpp>
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/logits_runner.h"

namespace cachalot::cli {

namespace {

struct logits_options {
    std::string model_dir;
    std::string tokens_path;
    std::string out_path;
    std::string mode = "prefill";
    std::string precision_name = "exact";
    std::string head = "main";
    int threads = 0;
};

result<std::vector<int32_t>> read_token_file(const std::string& path) {
    simdjson::dom::parser parser;
    simdjson::padded_string text;
    if (auto e = simdjson::padded_string::load(path).get(text)) {
        return make_error(errc::not_found, "cannot read " + path + ": " + simdjson::error_message(e));
    }
    simdjson::dom::array arr;
    if (auto e = parser.parse(text).get_array().get(arr)) {
        return make_error(errc::bad_format, path + ": expected a JSON array of token ids (" +
                                                std::string(simdjson::error_message(e)) + ")");
    }
    std::vector<int32_t> ids;
    for (auto v : arr) {
        int64_t id;
        if (v.get_int64().get(id) || id < 0 || id > INT32_MAX) {
            return make_error(errc::bad_format, path + ": element " + std::to_string(ids.size()) +
                                                    " is not a non-negative integer token id");
        }
        ids.push_back(int32_t(id));
    }
    if (ids.empty()) {
        return make_error(errc::bad_format, path + ": the token array is empty");
    }
    return ids;
}

result<int64_t> chunk_size_for(const std::string& mode, int64_t n_tokens) {
    if (mode == "prefill") {
        return n_tokens;
    }
    if (mode == "incremental") {
        return int64_t(1);
    }
    if (mode.rfind("chunk:", 0) == 0) {
        try {
            size_t used = 0;
            long long n = std::stoll(mode.substr(6), &used);
            if (used == mode.size() - 6 && n > 0) {
                return int64_t(n);
            }
        } catch (const std::exception&) {
        }
        return make_error(errc::invalid_argument, "--mode " + mode + ": N in chunk:N must be a positive integer");
    }
    if (mode == "disagg") {
        return make_error(errc::unsupported,
                          "--mode disagg is not built yet: it needs the prefill/decode actors and the UCX hand-off");
    }
    return make_error(errc::invalid_argument, "--mode " + mode + ": expected prefill, incremental or chunk:N");
}

int run_logits(const logits_options& o) {
    auto fail = [](const std::string& msg) {
        std::fprintf(stderr, "cachalot logits: %s\n", msg.c_str());
        return 1;
    };
    precision prec;
    if (o.precision_name == "exact") {
        prec = precision::exact;
    } else if (o.precision_name == "fast") {
        prec = precision::fast;
    } else {
        return fail("--precision " + o.precision_name + ": expected exact or fast");
    }
    const bool mtp = o.head == "mtp";
    if (!mtp && o.head != "main") {
        return fail("--head " + o.head + ": expected main or mtp");
    }
    auto ids = read_token_file(o.tokens_path);
    if (!ids) {
        return fail(ids.err().message);
    }
    const int64_t n = int64_t(ids->size());
    auto chunk = chunk_size_for(o.mode, n);
    if (!chunk) {
        return fail(chunk.err().message);
    }
    if (mtp && n < 2) {
        return fail("--head mtp needs at least 2 tokens (row i predicts token i+2)");
    }
    thread_pool::set_global_threads(o.threads);
    auto t0 = std::chrono::steady_clock::now();
    load_options lo;
    lo.with_mtp = mtp;
    lo.pack_for_fast = prec == precision::fast;
    auto m = model::load(o.model_dir, lo);
    if (!m) {
        return fail(m.err().message);
    }
    const model& mdl = **m;
    const int64_t V = mdl.config().vocab_size;
    if (mtp && !mdl.has_mtp()) {
        return fail(o.model_dir + " has no MTP block (num_nextn_predict_layers = 0)");
    }
    auto t1 = std::chrono::steady_clock::now();

    auto logits = compute_logits(mdl, *ids, *chunk, mtp ? logits_head::mtp : logits_head::main, prec);
    if (!logits) {
        return fail(logits.err().message);
    }
    const std::vector<float>& out = *logits;
    auto t2 = std::chrono::steady_clock::now();

    std::ofstream f(o.out_path, std::ios::binary | std::ios::trunc);
    if (!f) {
        return fail("cannot write " + o.out_path);
    }
    f.write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size() * sizeof(float)));
    if (!f) {
        return fail("write to " + o.out_path + " failed");
    }
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::fprintf(stderr, "cachalot logits: %lld rows x %lld to %s (load %.0f ms, %s %s %s: %.0f ms)\n",
                 (long long)(out.size() / size_t(V)), (long long)V, o.out_path.c_str(), ms(t0, t1), o.mode.c_str(),
                 o.precision_name.c_str(), o.head.c_str(), ms(t1, t2));
    return 0;
}

} // namespace

void add_logits_command(CLI::App& root, command_list& out) {
    auto opts = std::make_shared<logits_options>();
    auto* app = root.add_subcommand("logits", "Write the logits of a token sequence as raw float32 [rows][vocab]");
    app->add_option("--model", opts->model_dir, "Checkpoint directory (Hugging Face layout)")->required();
    app->add_option("--tokens", opts->tokens_path, "JSON array of token ids")->required();
    app->add_option("--out", opts->out_path, "Output file: little-endian float32, row i = logits after ids[0..i]")
        ->required();
    app->add_option("--mode", opts->mode, "prefill | incremental | chunk:N (| disagg, with the actors)")
        ->capture_default_str();
    app->add_option("--precision", opts->precision_name, "exact (F32, exact weights) | fast (serving default)")
        ->capture_default_str();
    app->add_option("--head", opts->head, "main | mtp (MTP block: n-1 rows, row i predicts token i+2)")
        ->capture_default_str();
    app->add_option("--threads", opts->threads, "Worker threads (0 = all cores)")->capture_default_str();
    out.push_back({app, [opts] { return run_logits(*opts); }});
}

} // namespace cachalot::cli

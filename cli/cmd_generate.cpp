// `cachalot generate`: tokenizes a prompt (BOS first, added tokens matched as Hugging Face
// does), generates with the given sampling flags and streams the text to stdout as it becomes
// final. Statistics (tokens/s, MTP acceptance rate, finish reason) go to stderr.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/generator.h"

namespace cachalot::cli {

namespace {

struct generate_cli_options {
    std::string model_dir;
    std::string prompt;
    std::string precision_name = "fast";
    bool mtp = false;
    bool no_bos = false;
    int threads = 0;
    float temperature = 1.0f;
    int top_k = 0;
    float top_p = 1.0f;
    float min_p = 0.0f;
    int64_t seed = -1;
    float presence_penalty = 0, frequency_penalty = 0, repetition_penalty = 1;
    std::vector<std::string> stop;
    std::vector<int> stop_ids;
    int64_t max_tokens = 128;
    bool ignore_eos = false;
};

int run_generate(const generate_cli_options& o) {
    auto fail = [](const std::string& msg) {
        std::fprintf(stderr, "cachalot generate: %s\n", msg.c_str());
        return 1;
    };
    generate_options g;
    if (o.precision_name == "exact") {
        g.prec = precision::exact;
    } else if (o.precision_name != "fast") {
        return fail("--precision " + o.precision_name + ": expected exact or fast");
    }
    g.use_mtp = o.mtp;
    auto& sp = g.sampling;
    sp.temperature = o.temperature;
    sp.top_k = o.top_k;
    sp.top_p = o.top_p;
    sp.min_p = o.min_p;
    if (o.seed >= 0) {
        sp.seed = uint64_t(o.seed);
    }
    sp.presence_penalty = o.presence_penalty;
    sp.frequency_penalty = o.frequency_penalty;
    sp.repetition_penalty = o.repetition_penalty;
    sp.stop = o.stop;
    sp.stop_token_ids.assign(o.stop_ids.begin(), o.stop_ids.end());
    sp.max_tokens = o.max_tokens;
    sp.ignore_eos = o.ignore_eos;
    if (auto s = sp.validate(); !s) {
        return fail(s.err().message);
    }
    thread_pool::set_global_threads(o.threads);
    auto tok = tokenizer::load(o.model_dir + "/tokenizer.json");
    if (!tok) {
        return fail(tok.err().message);
    }
    load_options lo;
    lo.with_mtp = o.mtp;
    lo.pack_for_fast = g.prec == precision::fast;
    auto m = model::load(o.model_dir, lo);
    if (!m) {
        return fail(m.err().message);
    }
    std::vector<int32_t> ids;
    if (!o.no_bos) {
        ids.push_back(tok->bos_id().value_or(int32_t((*m)->config().bos_token_id)));
    }
    auto text_ids = tok->encode(o.prompt, true);
    ids.insert(ids.end(), text_ids.begin(), text_ids.end());

    auto stats = generate(**m, *tok, ids, g, [](std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
    });
    std::fputc('\n', stdout);
    if (!stats) {
        return fail(stats.err().message);
    }
    double tps = stats->decode_seconds > 0 ? double(stats->n_generated_tokens) / stats->decode_seconds : 0.0;
    std::fprintf(stderr, "cachalot generate: %lld prompt tokens (%.1f tok/s), %lld generated (%.1f tok/s), finish=%s",
                 (long long)stats->n_prompt_tokens,
                 stats->prefill_seconds > 0 ? double(stats->n_prompt_tokens) / stats->prefill_seconds : 0.0,
                 (long long)stats->n_generated_tokens, tps, stats->finish == finish_reason::stop ? "stop" : "length");
    if (o.mtp) {
        std::fprintf(stderr, ", MTP acceptance %.1f%% (%lld/%lld drafts, %lld trunk steps)",
                     100.0 * stats->acceptance_rate(), (long long)stats->n_accepted, (long long)stats->n_drafted,
                     (long long)stats->n_trunk_steps);
    }
    std::fprintf(stderr, "\n");
    return 0;
}

} // namespace

void add_generate_command(CLI::App& root, command_list& out) {
    auto o = std::make_shared<generate_cli_options>();
    auto* app = root.add_subcommand("generate", "Generate text from a prompt, streamed to stdout");
    app->add_option("--model", o->model_dir, "Checkpoint directory")->required();
    app->add_option("--prompt", o->prompt, "Prompt text (tokenized with added tokens matched, BOS first)")->required();
    app->add_option("--max-tokens", o->max_tokens, "Most tokens to generate")->capture_default_str();
    app->add_option("--temperature", o->temperature, "0 = greedy")->capture_default_str();
    app->add_option("--top-k", o->top_k, "0 = off")->capture_default_str();
    app->add_option("--top-p", o->top_p, "1 = off")->capture_default_str();
    app->add_option("--min-p", o->min_p, "0 = off")->capture_default_str();
    app->add_option("--seed", o->seed, "Seed for reproducible sampling (-1 = random)")->capture_default_str();
    app->add_option("--presence-penalty", o->presence_penalty)->capture_default_str();
    app->add_option("--frequency-penalty", o->frequency_penalty)->capture_default_str();
    app->add_option("--repetition-penalty", o->repetition_penalty)->capture_default_str();
    app->add_option("--stop", o->stop, "Stop string (repeatable)");
    app->add_option("--stop-id", o->stop_ids, "Stop token id (repeatable)");
    app->add_flag("--ignore-eos", o->ignore_eos, "Keep generating after EOS");
    app->add_flag("--mtp", o->mtp, "Speculative decoding with the MTP block");
    app->add_flag("--no-bos", o->no_bos, "Do not prepend BOS");
    app->add_option("--precision", o->precision_name, "exact | fast")->capture_default_str();
    app->add_option("--threads", o->threads, "Worker threads (0 = all cores)")->capture_default_str();
    out.push_back({app, [o] { return run_generate(*o); }});
}

} // namespace cachalot::cli

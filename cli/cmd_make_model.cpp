// `cachalot make-model`: writes a random-weight DeepSeek-V4 checkpoint (config, tokenizer and
// model.safetensors in the Hugging Face layout) from a named preset, for tests, demos and
// benchmarks with no download. Progress and errors go to stderr; stdout stays empty. The weights
// are random: the model loads and runs but says nothing meaningful.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "engine/checkpoint_writer.h"

namespace cachalot::cli {

namespace {

struct make_model_args {
    std::string preset = "demo";
    std::string out_dir;
    uint64_t seed = 0;
    bool force = false;
};

int run_make_model(const make_model_args& a) {
    make_model_options opts;
    opts.preset = a.preset;
    opts.out_dir = a.out_dir;
    opts.seed = a.seed;
    opts.force = a.force;
    opts.progress = [](std::string_view line) {
        std::fprintf(stderr, "make-model: %.*s\n", int(line.size()), line.data());
    };
    status st = make_random_checkpoint(opts);
    if (!st.ok()) {
        std::fprintf(stderr, "cachalot make-model: error: %s\n", st.err().message.c_str());
        return 1;
    }
    return 0;
}

} // namespace

void add_make_model_command(CLI::App& root, command_list& out) {
    auto args = std::make_shared<make_model_args>();
    auto* app = root.add_subcommand("make-model", "Write a tiny random-weight DeepSeek-V4 checkpoint");
    std::string presets;
    for (auto n : v4_preset_names()) {
        presets += (presets.empty() ? "" : ", ") + std::string(n);
    }
    app->add_option("--preset", args->preset, "Model shape preset: " + presets + " (demo = the tiny-v4 fixture shapes)")
        ->capture_default_str();
    app->add_option("--out", args->out_dir, "Output directory (created if missing)")->required();
    app->add_option("--seed", args->seed, "Random seed; the same seed writes byte-identical files")
        ->capture_default_str();
    app->add_flag("--force", args->force, "Replace a checkpoint already in the output directory");
    out.push_back({app, [args] { return run_make_model(*args); }});
}

} // namespace cachalot::cli

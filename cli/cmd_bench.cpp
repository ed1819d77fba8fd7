// `cachalot bench`: Benchmark prompt processing and decoding (llama-bench style).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace cachalot::cli {

void add_bench_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("bench", "Benchmark prompt processing and decoding (llama-bench style)");
    app->allow_extras();
    out.push_back({app, [] { return not_built("bench", "the benchmark is not built yet"); }});
}

} // namespace cachalot::cli

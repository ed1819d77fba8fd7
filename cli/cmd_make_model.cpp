// `cachalot make-model`: Write a tiny random-weight DeepSeek-V4 checkpoint.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace cachalot::cli {

void add_make_model_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("make-model", "Write a tiny random-weight DeepSeek-V4 checkpoint");
    app->allow_extras();
    out.push_back({app, [] { return not_built("make-model", "the checkpoint writer is not built yet"); }});
}

} // namespace cachalot::cli

// `cachalot logits`: Write the logits of a token sequence as raw float32.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace cachalot::cli {

void add_logits_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("logits", "Write the logits of a token sequence as raw float32");
    app->allow_extras();
    out.push_back({app, [] { return not_built("logits", "the forward pass is not built yet"); }});
}

} // namespace cachalot::cli

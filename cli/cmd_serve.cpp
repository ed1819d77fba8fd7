// `cachalot serve`: Serve the OpenAI-compatible API with every role in one process.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace cachalot::cli {

void add_serve_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("serve", "Serve the OpenAI-compatible API with every role in one process");
    app->allow_extras();
    out.push_back({app, [] { return not_built("serve", "the gateway is not built yet"); }});
}

} // namespace cachalot::cli

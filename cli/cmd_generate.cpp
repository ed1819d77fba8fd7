// `cachalot generate`: Generate text from a prompt, streamed to stdout.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace cachalot::cli {

void add_generate_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("generate", "Generate text from a prompt, streamed to stdout");
    app->allow_extras();
    out.push_back({app, [] { return not_built("generate", "the generation loop is not built yet"); }});
}

} // namespace cachalot::cli

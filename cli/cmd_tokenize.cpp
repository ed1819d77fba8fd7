// `cachalot tokenize`: Tokenize texts with a model's tokenizer (JSON array in, JSON array of id arrays out).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace cachalot::cli {

void add_tokenize_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("tokenize", "Tokenize texts with a model's tokenizer (JSON array in, JSON array of id arrays out)");
    app->allow_extras();
    out.push_back({app, [] { return not_built("tokenize", "the tokenizer is not built yet"); }});
}

} // namespace cachalot::cli

// `cachalot chat-encode`: Render an OpenAI chat request into the DeepSeek-V4 prompt.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace cachalot::cli {

void add_chat_encode_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("chat-encode", "Render an OpenAI chat request into the DeepSeek-V4 prompt");
    app->allow_extras();
    out.push_back({app, [] { return not_built("chat-encode", "the chat encoding is not built yet"); }});
}

} // namespace cachalot::cli

// The subcommands of the `cachalot` executable. Each lives in its own cmd_<name>.cpp, registers
// its flags on the root app, and returns a runner; main() parses once and runs the one chosen.
// Machine-readable output goes to stdout alone; progress, logs and errors go to stderr.
#pragma once

#include <functional>
#include <vector>

namespace CLI {
class App;
}

namespace cachalot::cli {

struct command {
    CLI::App* app = nullptr;
    std::function<int()> run; // exit code
};

using command_list = std::vector<command>;

void add_serve_command(CLI::App& root, command_list& out);
void add_node_command(CLI::App& root, command_list& out);
void add_generate_command(CLI::App& root, command_list& out);
void add_logits_command(CLI::App& root, command_list& out);
void add_tokenize_command(CLI::App& root, command_list& out);
void add_chat_encode_command(CLI::App& root, command_list& out);
void add_bench_command(CLI::App& root, command_list& out);
void add_batch_command(CLI::App& root, command_list& out);
void add_make_model_command(CLI::App& root, command_list& out);
void add_version_command(CLI::App& root, command_list& out);

/// For commands whose capability is not built yet: says so on stderr and returns non-zero.
int not_built(const char* name, const char* what);

} // namespace cachalot::cli

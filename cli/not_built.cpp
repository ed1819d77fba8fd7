// Subcommands whose capability has not been built yet. They exist so that `--help` shows the
// whole command surface, and they fail loudly instead of printing anything that looks real.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"

namespace cachalot::cli {

int not_built(const char* name, const char* what) {
    std::fprintf(stderr, "cachalot %s: not built yet: %s\n", name, what);
    return 2;
}

void add_node_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("node", "Run one role (prefill, decode, expert-host, engram, gateway) in this process");
    app->allow_extras();
    out.push_back({app, [] {
                       return not_built("node", "per-role processes come with the actors and UCX transport; "
                                                "use `cachalot serve` to run every role in one process");
                   }});
}

void add_batch_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("batch", "Run a JSONL file of requests as a durable batch job");
    app->allow_extras();
    out.push_back({app, [] { return not_built("batch", "the batch runner comes with the gateway's /v1/batches API"); }});
}

} // namespace cachalot::cli

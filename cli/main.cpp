// Entry point of `cachalot`: parses the command line once and runs the chosen subcommand.
// Exceptions stop here: every failure becomes a message on stderr and a non-zero exit code.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/commands.h"

int main(int argc, char** argv) {
    CLI::App app{"Cachalot: a disaggregated serving system for DeepSeek-V4-class models", "cachalot"};
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show help for every subcommand");

    cachalot::cli::command_list commands;
    cachalot::cli::add_serve_command(app, commands);
    cachalot::cli::add_node_command(app, commands);
    cachalot::cli::add_generate_command(app, commands);
    cachalot::cli::add_logits_command(app, commands);
    cachalot::cli::add_tokenize_command(app, commands);
    cachalot::cli::add_chat_encode_command(app, commands);
    cachalot::cli::add_bench_command(app, commands);
    cachalot::cli::add_batch_command(app, commands);
    cachalot::cli::add_make_model_command(app, commands);
    cachalot::cli::add_version_command(app, commands);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        for (auto& c : commands) {
            if (c.app->parsed()) {
                return c.run();
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cachalot: error: %s\n", e.what());
        return 1;
    }
    return 1;
}

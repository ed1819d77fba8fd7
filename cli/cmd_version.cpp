// `cachalot version`: the version, the CPU kernel backend and whether CUDA kernels were built.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "kernels/attention.h"
#include "kernels/ops.h"

#ifndef CACHALOT_VERSION
#define CACHALOT_VERSION "unknown"
#endif

namespace cachalot::cli {

void add_version_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("version", "Print the version and build features");
    out.push_back({app, [] {
                       std::printf("cachalot %s\n", CACHALOT_VERSION);
                       std::printf("cpu kernels: matmul %.*s, attention %.*s\n", int(cpu_backend_name().size()),
                                   cpu_backend_name().data(), int(attention_backend_name().size()),
                                   attention_backend_name().data());
#ifdef CACHALOT_WITH_CUDA
                       std::printf("cuda kernels: built\n");
#else
                       std::printf("cuda kernels: not built\n");
#endif
                       return 0;
                   }});
}

} // namespace cachalot::cli

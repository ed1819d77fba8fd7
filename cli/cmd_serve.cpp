// `cachalot serve`: every role in one process behind the OpenAI-compatible HTTP API. This file
// resolves the options (flags over --config YAML over defaults), the data directory, the model
// (the embedded demo checkpoint is generated once under <data-dir>/models/cachalot-demo when no
// --model is given) and the API keys, loads the checkpoint and its tokenizer before listening (a
// load failure exits 1 with the loader's message), then runs the gateway until SIGINT/SIGTERM.
// It prints a load line and a listening line to stderr; nothing goes to stdout. The HTTP work
// lives in gateway/.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "engine/checkpoint_writer.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "gateway/auth.h"
#include "gateway/gateway.h"
#include "gateway/serve_config.h"
#include "gateway/tokenize_routes.h"

namespace cachalot::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* demo_model_name = "cachalot-demo";

struct serve_flags {
    std::string model;
    std::string host;
    int port = 8000;
    std::string data_dir;
    std::string served_model_name;
    std::string api_keys_file;
    std::string config;
    int threads = 0;
    int64_t max_body_bytes = 0;

    CLI::Option* model_opt = nullptr;
    CLI::Option* host_opt = nullptr;
    CLI::Option* port_opt = nullptr;
    CLI::Option* data_dir_opt = nullptr;
    CLI::Option* name_opt = nullptr;
    CLI::Option* keys_opt = nullptr;
    CLI::Option* threads_opt = nullptr;
    CLI::Option* body_opt = nullptr;
};

// $XDG_DATA_HOME/cachalot, else ~/.local/share/cachalot (DESIGN.md §10).
result<std::string> default_data_dir() {
    if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && xdg[0] != '\0') {
        return (fs::path(xdg) / "cachalot").string();
    }
    if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
        return (fs::path(home) / ".local" / "share" / "cachalot").string();
    }
    return make_error(errc::invalid_argument, "neither XDG_DATA_HOME nor HOME is set; pass --data-dir");
}

// The demo checkpoint is generated once and reused: make_random_checkpoint writes config.json
// last, so its presence means a complete checkpoint.
status ensure_demo_model(const std::string& dir) {
    if (fs::exists(fs::path(dir) / "config.json")) {
        return ok_status();
    }
    std::fprintf(stderr, "cachalot: creating the demo model in %s (once)\n", dir.c_str());
    make_model_options opts;
    opts.preset = "demo";
    opts.out_dir = dir;
    opts.seed = 0;
    opts.force = true; // a directory without config.json is a leftover of an interrupted run
    return make_random_checkpoint(opts);
}

template <class T, class U>
T pick(const CLI::Option* flag, const T& flag_value, const std::optional<U>& file_value, const T& fallback) {
    if (flag != nullptr && flag->count() > 0) {
        return flag_value;
    }
    if (file_value) {
        return T(*file_value);
    }
    return fallback;
}

int fail(const std::string& message) {
    std::fprintf(stderr, "cachalot serve: error: %s\n", message.c_str());
    return 1;
}

int run_serve(const serve_flags& flags) {
    gateway::serve_file_config file;
    if (!flags.config.empty()) {
        auto loaded = gateway::load_serve_config(flags.config);
        if (!loaded) {
            return fail(loaded.err().message);
        }
        file = std::move(*loaded);
    }

    std::string data_dir = pick<std::string>(flags.data_dir_opt, flags.data_dir, file.data_dir, "");
    if (data_dir.empty()) {
        auto d = default_data_dir();
        if (!d) {
            return fail(d.err().message);
        }
        data_dir = *d;
    }
    std::error_code ec;
    fs::create_directories(data_dir, ec);
    if (ec || !fs::is_directory(data_dir)) {
        return fail("cannot create the data directory " + data_dir + (ec ? ": " + ec.message() : std::string()));
    }

    std::string model_dir = pick<std::string>(flags.model_opt, flags.model, file.model, "");
    std::string served_name = pick<std::string>(flags.name_opt, flags.served_model_name, file.served_model_name, "");
    if (model_dir.empty()) {
        model_dir = (fs::path(data_dir) / "models" / demo_model_name).string();
        if (auto st = ensure_demo_model(model_dir); !st) {
            return fail("cannot create the demo model in " + model_dir + ": " + st.err().message);
        }
        if (served_name.empty()) {
            served_name = demo_model_name;
        }
    }

    gateway::gateway_options options;
    options.http.host = pick<std::string>(flags.host_opt, flags.host, file.host, "127.0.0.1");
    const int64_t port = pick<int64_t>(flags.port_opt, flags.port, file.port, 8000);
    if (port < 0 || port > 65535) {
        return fail("--port must be between 0 and 65535, got " + std::to_string(port));
    }
    options.http.port = uint16_t(port);
    const int64_t threads = pick<int64_t>(flags.threads_opt, flags.threads, file.threads,
                                          std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 4));
    if (threads < 1 || threads > 1024) {
        return fail("--threads must be between 1 and 1024, got " + std::to_string(threads));
    }
    options.http.n_threads = int(threads);
    const int64_t body = pick<int64_t>(flags.body_opt, flags.max_body_bytes, file.max_body_bytes, int64_t(32) << 20);
    if (body < 1) {
        return fail("--max-body-bytes must be positive, got " + std::to_string(body));
    }
    options.http.max_body_bytes = uint64_t(body);

    const std::string keys_file = pick<std::string>(flags.keys_opt, flags.api_keys_file, file.api_keys_file, "");
    if (!keys_file.empty()) {
        auto keys = gateway::read_api_keys_file(keys_file);
        if (!keys) {
            return fail(keys.err().message);
        }
        options.api_keys = std::move(*keys);
    }
    if (const char* env = std::getenv("CACHALOT_API_KEYS"); env != nullptr) {
        auto keys = gateway::parse_api_keys_env(env);
        if (!keys) {
            return fail(keys.err().message);
        }
        for (auto& k : *keys) {
            options.api_keys.push_back(std::move(k));
        }
    }

    // Cheap checks above fail fast; loading a large checkpoint comes last.
    // The loader validates config and weights and names the field or tensor that is wrong; the
    // probe then only derives the served id (it cannot fail on a config the loader accepted).
    const auto load_start = std::chrono::steady_clock::now();
    auto engine_model = cachalot::model::load(model_dir);
    if (!engine_model) {
        return fail("cannot load the model in " + model_dir + ": " + engine_model.err().message);
    }
    auto tok = tokenizer::load((fs::path(model_dir) / "tokenizer.json").string());
    if (!tok) {
        return fail("cannot load the tokenizer of " + model_dir + ": " + tok.err().message);
    }
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

    auto info = gateway::probe_model_dir(model_dir, served_name);
    if (!info) {
        return fail(info.err().message);
    }
    const model_config& config = (*engine_model)->config();
    auto model = std::make_shared<gateway::model_state>();
    model->info = std::move(*info);
    model->info.max_model_len = config.max_position_embeddings;
    model->created_unix =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::fprintf(stderr, "cachalot: loaded %s from %s in %.2f s: layers=%lld hidden=%lld vocab=%lld context=%lld\n",
                 model->info.id.c_str(), model_dir.c_str(), load_s, static_cast<long long>(config.num_hidden_layers),
                 static_cast<long long>(config.hidden_size), static_cast<long long>(config.vocab_size),
                 static_cast<long long>(config.max_position_embeddings));
    model->ready = true;

    options.model = model;
    // A prompt gets the checkpoint's BOS when the tokenizer_config.json beside it names none.
    std::optional<int32_t> bos_id = tok->bos_id();
    if (!bos_id && config.bos_token_id >= 0 && config.bos_token_id < tok->size()) {
        bos_id = static_cast<int32_t>(config.bos_token_id);
    }
    options.add_routes = [model, tokens = *tok, bos_id](gateway::router& routes,
                                                        const std::shared_ptr<gateway::gateway_metrics>&) {
        gateway::add_tokenize_routes(routes, model, tokens, bos_id);
    };
    const std::string name = model->info.id;
    options.on_listening = [name](const std::string& host, uint16_t bound_port) {
        const bool v6 = host.find(':') != std::string::npos;
        std::fprintf(stderr, "cachalot: serving %s on http://%s%s%s:%u\n", name.c_str(), v6 ? "[" : "", host.c_str(),
                     v6 ? "]" : "", unsigned(bound_port));
        std::fflush(stderr);
    };
    if (auto st = gateway::run_gateway(std::move(options)); !st) {
        return fail(st.err().message);
    }
    std::fprintf(stderr, "cachalot: server stopped\n");
    return 0;
}

} // namespace

void add_serve_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("serve", "Serve the OpenAI-compatible API with every role in one process");
    auto flags = std::make_shared<serve_flags>();
    flags->model_opt = app->add_option("--model", flags->model,
                                       "Model directory (default: the embedded demo model, generated on first use)");
    flags->host_opt = app->add_option("--host", flags->host, "Address to listen on (default 127.0.0.1)");
    flags->port_opt = app->add_option("--port", flags->port, "Port to listen on; 0 picks a free one (default 8000)");
    flags->data_dir_opt = app->add_option("--data-dir", flags->data_dir,
                                          "Where serve keeps its files (default $XDG_DATA_HOME/cachalot, else "
                                          "~/.local/share/cachalot)");
    flags->name_opt = app->add_option("--served-model-name", flags->served_model_name,
                                      "Model id clients use (default: the model directory's name)");
    flags->keys_opt = app->add_option("--api-keys-file", flags->api_keys_file,
                                      "API keys, one a line, optionally followed by rpm=N tpm=N");
    app->add_option("--config", flags->config, "YAML config file; command-line flags override it");
    flags->threads_opt = app->add_option("--threads", flags->threads, "HTTP I/O threads");
    flags->body_opt = app->add_option("--max-body-bytes", flags->max_body_bytes,
                                      "Largest request body accepted (default 33554432; 413 above)");
    out.push_back({app, [flags] { return run_serve(*flags); }});
}

} // namespace cachalot::cli

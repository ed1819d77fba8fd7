// `cachalot chat-encode --model DIR --request REQ.json [--ids]`: renders an OpenAI chat request
// (or a dsv4-prompts.json case) into the DeepSeek-V4 prompt. Without --ids it prints the prompt
// string exactly, with no newline added, so `cachalot chat-encode ... > p.txt` holds the bytes the
// model sees; with --ids it prints the token ids as one compact JSON array and a newline. Ids
// follow spec §4.2: added tokens are matched only in the encoder's own markup, user-supplied text
// is encoded with matching off, and the one BOS comes from the template. `--request -` reads
// stdin. It does not run the model; --model is needed only for --ids.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/chat_encoding.h"
#include "engine/json.h"
#include "engine/tokenizer.h"

namespace cachalot::cli {

namespace {

struct chat_encode_options {
    std::string model_dir;
    std::string request_path;
    bool ids = false;
};

int fail(const std::string& message) {
    std::fprintf(stderr, "cachalot chat-encode: %s\n", message.c_str());
    return 1;
}

bool read_all(const std::string& path, std::string& out) {
    if (path == "-") {
        out.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        return !std::cin.bad();
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

int run_chat_encode(const chat_encode_options& opt) {
    std::string text;
    if (!read_all(opt.request_path, text)) {
        return fail("cannot read request file " + opt.request_path);
    }
    auto body = parse_json(text);
    if (!body) {
        return fail(opt.request_path + ": " + body.err().message);
    }
    auto req = chat_request_from_json(*body);
    if (!req) {
        return fail(opt.request_path + ": " + req.err().message);
    }
    auto segments = render_segments(*req);
    if (!segments) {
        return fail(opt.request_path + ": " + segments.err().message);
    }

    if (!opt.ids) {
        std::string prompt;
        for (const auto& s : *segments) {
            prompt += s.text;
        }
        std::fwrite(prompt.data(), 1, prompt.size(), stdout);
        return std::fflush(stdout) == 0 ? 0 : 1;
    }

    if (opt.model_dir.empty()) {
        return fail("--ids needs --model DIR (the tokenizer.json lives there)");
    }
    auto tok = tokenizer::load(opt.model_dir);
    if (!tok) {
        return fail(tok.err().message);
    }
    auto ids = encode_prompt_segments(*segments, *tok, added_token_strings(*tok));
    if (!ids) {
        return fail(ids.err().message);
    }
    std::string out = "[";
    for (size_t i = 0; i < ids->size(); ++i) {
        if (i != 0) {
            out += ',';
        }
        out += std::to_string((*ids)[i]);
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
}

} // namespace

void add_chat_encode_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand("chat-encode", "Render an OpenAI chat request into the DeepSeek-V4 prompt");
    auto opt = std::make_shared<chat_encode_options>();
    app->add_option("--model", opt->model_dir, "Model directory (its tokenizer.json is used for --ids)");
    app->add_option("--request", opt->request_path, "Chat request JSON file (OpenAI body; - for stdin)")->required();
    app->add_flag("--ids", opt->ids, "Print the token ids as a JSON array instead of the prompt string");
    out.push_back({app, [opt] { return run_chat_encode(*opt); }});
}

} // namespace cachalot::cli

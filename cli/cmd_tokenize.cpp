// `cachalot tokenize --model DIR --texts TEXTS.json`: reads a JSON array of strings and prints one
// compact JSON array of id arrays, one per text, as Hugging Face `encode(text,
// add_special_tokens=False)` gives them (added tokens matched, no BOS). It does not render chat
// messages (that is `chat-encode`) and never adds special tokens of its own.
#include <CLI/CLI.hpp>
#include <simdjson.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/tokenizer.h"

namespace cachalot::cli {

namespace {

struct tokenize_options {
    std::string model_dir;
    std::string texts_path;
};

int run_tokenize(const tokenize_options& opt) {
    auto tok = tokenizer::load(opt.model_dir);
    if (!tok) {
        std::fprintf(stderr, "cachalot tokenize: %s\n", tok.err().message.c_str());
        return 1;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.load(opt.texts_path).get(doc); err != simdjson::SUCCESS) {
        std::fprintf(stderr, "cachalot tokenize: cannot read %s as JSON: %s\n", opt.texts_path.c_str(),
                     simdjson::error_message(err));
        return 1;
    }
    simdjson::dom::array texts;
    if (doc.get_array().get(texts) != simdjson::SUCCESS) {
        std::fprintf(stderr, "cachalot tokenize: %s: expected a JSON array of strings\n", opt.texts_path.c_str());
        return 1;
    }
    // Validate every element before printing anything, so a failure leaves stdout empty.
    std::vector<std::string_view> inputs;
    size_t index = 0;
    for (simdjson::dom::element e : texts) {
        std::string_view s;
        if (e.get_string().get(s) != simdjson::SUCCESS) {
            std::fprintf(stderr, "cachalot tokenize: %s: element %zu is not a string\n", opt.texts_path.c_str(), index);
            return 1;
        }
        inputs.push_back(s);
        ++index;
    }
    std::string out = "[";
    for (size_t i = 0; i < inputs.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        out += '[';
        std::vector<int32_t> ids = tok->encode(inputs[i], true);
        for (size_t k = 0; k < ids.size(); ++k) {
            if (k > 0) {
                out += ',';
            }
            out += std::to_string(ids[k]);
        }
        out += ']';
    }
    out += "]\n";
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
        std::fprintf(stderr, "cachalot tokenize: writing to stdout failed\n");
        return 1;
    }
    return 0;
}

} // namespace

void add_tokenize_command(CLI::App& root, command_list& out) {
    auto* app = root.add_subcommand(
        "tokenize", "Tokenize texts with a model's tokenizer (JSON array in, JSON array of id arrays out)");
    auto opt = std::make_shared<tokenize_options>();
    app->add_option("--model", opt->model_dir, "Model directory holding tokenizer.json (or the file itself)")
        ->required();
    app->add_option("--texts", opt->texts_path, "JSON file with an array of strings")->required();
    out.push_back({app, [opt] { return run_tokenize(*opt); }});
}

} // namespace cachalot::cli

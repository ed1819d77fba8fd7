// Loading of serve_file_config (see serve_config.h) with yaml-cpp. yaml-cpp reports problems by
// throwing; every throw is caught here and becomes an error naming the file and, where there is
// one, the key and the line. Integers are parsed from the scalar's text by hand, because yaml-cpp
// would accept "8000.0"-like or boolean spellings in some versions.
#include "gateway/serve_config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace cachalot::gateway {
namespace {

std::string at(std::string_view source, const YAML::Node& node) {
    const auto mark = node.Mark();
    if (mark.is_null()) {
        return std::string(source);
    }
    return std::string(source) + ":" + std::to_string(mark.line + 1);
}

result<std::string> read_string(const YAML::Node& value, std::string_view key, std::string_view source) {
    if (!value.IsScalar() || value.Tag() == "tag:yaml.org,2002:null" || value.Scalar().empty()) {
        return make_error(errc::invalid_argument,
                          at(source, value) + ": key `" + std::string(key) + "` must be a non-empty string");
    }
    return value.Scalar();
}

result<int64_t> read_int(const YAML::Node& value, std::string_view key, std::string_view source, int64_t lo,
                         int64_t hi) {
    auto bad = [&](const std::string& why) {
        return make_error(errc::invalid_argument, at(source, value) + ": key `" + std::string(key) + "` " + why);
    };
    if (!value.IsScalar()) {
        return bad("must be an integer");
    }
    const std::string& text = value.Scalar();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) {
        return bad("must be an integer, got `" + text + "`");
    }
    if (v < lo || v > hi) {
        return bad("must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + text);
    }
    return v;
}

} // namespace

result<serve_file_config> parse_serve_config(std::string_view text, std::string_view source) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        return make_error(errc::bad_format, std::string(source) + ": not valid YAML: " + e.what());
    }
    serve_file_config cfg;
    if (!root || root.IsNull()) {
        return cfg;
    }
    if (!root.IsMap()) {
        return make_error(errc::bad_format, std::string(source) + ": the top level must be a mapping of key: value");
    }
    try {
        for (const auto& kv : root) {
            if (!kv.first.IsScalar()) {
                return make_error(errc::invalid_argument, at(source, kv.first) + ": keys must be plain names");
            }
            const std::string key = kv.first.Scalar();
            const YAML::Node& value = kv.second;
            auto string_field = [&](std::optional<std::string>& field) -> status {
                auto v = read_string(value, key, source);
                if (!v) {
                    return std::move(v).take_error();
                }
                field = std::move(*v);
                return ok_status();
            };
            auto int_field = [&](std::optional<int64_t>& field, int64_t lo, int64_t hi) -> status {
                auto v = read_int(value, key, source, lo, hi);
                if (!v) {
                    return std::move(v).take_error();
                }
                field = *v;
                return ok_status();
            };
            if (key == "host") {
                CACHALOT_TRY(string_field(cfg.host));
            } else if (key == "port") {
                CACHALOT_TRY(int_field(cfg.port, 0, 65535));
            } else if (key == "data_dir") {
                CACHALOT_TRY(string_field(cfg.data_dir));
            } else if (key == "model") {
                CACHALOT_TRY(string_field(cfg.model));
            } else if (key == "served_model_name") {
                CACHALOT_TRY(string_field(cfg.served_model_name));
            } else if (key == "api_keys_file") {
                CACHALOT_TRY(string_field(cfg.api_keys_file));
            } else if (key == "threads") {
                CACHALOT_TRY(int_field(cfg.threads, 1, 1024));
            } else if (key == "max_body_bytes") {
                CACHALOT_TRY(int_field(cfg.max_body_bytes, 1, int64_t(1) << 40));
            } else {
                return make_error(errc::invalid_argument,
                                  at(source, kv.first) + ": unknown key `" + key +
                                      "` (known: host, port, data_dir, model, served_model_name, api_keys_file, "
                                      "threads, max_body_bytes)");
            }
        }
    } catch (const YAML::Exception& e) {
        return make_error(errc::bad_format, std::string(source) + ": " + e.what());
    }
    return cfg;
}

result<serve_file_config> load_serve_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error(errc::io_error, "cannot read the config file " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse_serve_config(text.str(), path);
}

} // namespace cachalot::gateway

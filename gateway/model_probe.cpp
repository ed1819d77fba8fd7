// The stand-in model probe (see model_info.h): parses config.json with simdjson's DOM API, which
// validates the whole document up front, so a truncated or doubled file fails here and not later.
#include <simdjson.h>

#include <filesystem>

#include "gateway/model_info.h"

namespace cachalot::gateway {

result<model_info> probe_model_dir(const std::string& dir, const std::string& served_name) {
    namespace fs = std::filesystem;
    const fs::path config_path = fs::path(dir) / "config.json";
    const std::string where = config_path.string();
    std::error_code fs_ec;
    if (!fs::is_directory(dir, fs_ec)) {
        return make_error(errc::not_found, "the model directory " + dir + " does not exist");
    }
    if (!fs::is_regular_file(config_path, fs_ec)) {
        return make_error(errc::not_found, "the model directory " + dir + " has no config.json");
    }

    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (auto ec = parser.load(where).get(root); ec) {
        return make_error(errc::bad_format, where + " is not valid JSON: " + simdjson::error_message(ec));
    }
    std::string_view model_type;
    if (root["model_type"].get(model_type) != simdjson::SUCCESS) {
        return make_error(errc::bad_format, where + " has no string field model_type");
    }
    if (model_type != "deepseek_v4") {
        return make_error(errc::unsupported,
                          where + ": model_type is \"" + std::string(model_type) + "\", expected \"deepseek_v4\"");
    }
    int64_t max_len = 0;
    auto field = root["max_position_embeddings"];
    if (field.get(max_len) != simdjson::SUCCESS) {
        uint64_t big = 0;
        if (field.get(big) == simdjson::SUCCESS) {
            return make_error(errc::bad_format, where + ": max_position_embeddings is out of range");
        }
        return make_error(errc::bad_format, where + " has no integer field max_position_embeddings");
    }
    if (max_len <= 0) {
        return make_error(errc::bad_format, where + ": max_position_embeddings must be positive, got " +
                                                std::to_string(max_len));
    }

    model_info info;
    info.dir = dir;
    info.max_model_len = max_len;
    if (!served_name.empty()) {
        info.id = served_name;
    } else {
        fs::path p(dir);
        if (!p.has_filename()) {
            p = p.parent_path(); // "models/demo/" names "demo"
        }
        info.id = fs::weakly_canonical(p, fs_ec).filename().string();
        if (fs_ec || info.id.empty()) {
            info.id = p.filename().string();
        }
    }
    if (info.id.empty()) {
        return make_error(errc::invalid_argument, "cannot derive a model name from " + dir +
                                                      "; pass --served-model-name");
    }
    return info;
}

} // namespace cachalot::gateway

// The YAML configuration of `cachalot serve` (--config FILE.yaml), validated on load: every key
// must be known and of the right type, or loading fails naming the key. Fields left out stay
// empty so that the command line can tell "not set" from a value and override only what it sets.
// It does not read the environment or apply defaults; cli/cmd_serve.cpp does both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernels/result.h"

namespace cachalot::gateway {

struct serve_file_config {
    std::optional<std::string> host;
    std::optional<int64_t> port; // 0..65535
    std::optional<std::string> data_dir;
    std::optional<std::string> model;
    std::optional<std::string> served_model_name;
    std::optional<std::string> api_keys_file;
    std::optional<int64_t> threads;        // 1..1024
    std::optional<int64_t> max_body_bytes; // > 0
};

/// Parses YAML text; `source` names the file in messages. An empty document is an empty config.
[[nodiscard]] result<serve_file_config> parse_serve_config(std::string_view text, std::string_view source);

/// Reads and parses a YAML file.
[[nodiscard]] result<serve_file_config> load_serve_config(const std::string& path);

} // namespace cachalot::gateway

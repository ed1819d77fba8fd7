// What the gateway knows about the model it serves, and the stand-in probe that fills it in until
// the engine's loader is wired to the gateway: a model directory is "loaded" when its config.json
// is readable, has model_type deepseek_v4, and gives max_position_embeddings (the context length).
// The probe reads no weights; swapping it for the real loader changes only who fills model_info.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "kernels/result.h"

namespace cachalot::gateway {

struct model_info {
    std::string id;            // the served model name: what clients put in "model"
    int64_t max_model_len = 0; // tokens
    std::string dir;           // the checkpoint directory
};

/// The served model and whether it is ready; shared by the routes and whoever loads the model.
struct model_state {
    model_info info;
    int64_t created_unix = 0; // reported as "created" in /v1/models
    std::atomic<bool> ready{false};
};

/// Reads `dir`/config.json. `served_name` empty → the directory's last path component.
/// Fails, naming the file and the field, when the file is missing, not JSON, not a deepseek_v4
/// config, or lacks a positive max_position_embeddings.
[[nodiscard]] result<model_info> probe_model_dir(const std::string& dir, const std::string& served_name);

} // namespace cachalot::gateway

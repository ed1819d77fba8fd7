// The gateway's service routes that need no model computation: /health, /ready, /v1/models,
// /v1/models/{id} and /metrics. The generation routes (/v1/chat/completions, /v1/completions,
// /tokenize, ...) register themselves on the same router from their own files.
#pragma once

#include <memory>

#include "gateway/model_info.h"
#include "gateway/router.h"

namespace cachalot::gateway {

class gateway_metrics;

/// Adds the routes above. /health, /ready and /metrics answer without an API key.
void add_service_routes(router& routes, std::shared_ptr<const model_state> model,
                        std::shared_ptr<gateway_metrics> metrics);

/// The OpenAI model object for `model` (one element of /v1/models' data).
std::string model_object_json(const model_state& model);

} // namespace cachalot::gateway

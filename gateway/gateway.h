// The gateway assembled: keys, metrics, the service routes and the HTTP server, run until
// SIGINT/SIGTERM. This is what `cachalot serve` calls once it has resolved its options and the
// model; it parses no command line and reads no environment. Other route families join through
// `add_routes`, which sees the same router and metrics before the server starts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/auth.h"
#include "gateway/http_server.h"
#include "gateway/model_info.h"
#include "gateway/router.h"
#include "kernels/result.h"

namespace cachalot::gateway {

class gateway_metrics;

struct gateway_options {
    http_server_options http;
    std::vector<api_key_entry> api_keys; // empty: every request is accepted
    std::shared_ptr<model_state> model;  // required
    /// Registers further routes (chat, completions, ...) before the server starts.
    std::function<void(router&, const std::shared_ptr<gateway_metrics>&)> add_routes;
    /// Called once the server listens, with the address actually bound.
    std::function<void(const std::string& host, uint16_t port)> on_listening;
};

/// True when `host` is a loopback address or name (127.0.0.0/8, ::1, localhost).
[[nodiscard]] bool is_loopback_host(const std::string& host);

/// Serves until SIGINT or SIGTERM, then drains in-flight responses and returns ok. Fails before
/// serving when the address cannot be bound or the keys are inconsistent.
[[nodiscard]] status run_gateway(gateway_options options);

} // namespace cachalot::gateway

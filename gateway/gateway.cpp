// run_gateway (see gateway.h): wires keys, metrics and routes into a dispatcher and runs the
// HTTP server with signal handling until it has shut down gracefully.
#include "gateway/gateway.h"

#include <cstdio>

#include "gateway/api_routes.h"
#include "gateway/metrics.h"

namespace cachalot::gateway {

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

status run_gateway(gateway_options options) {
    if (!options.model) {
        return make_error(errc::invalid_argument, "run_gateway needs a model");
    }
    auto keys = std::make_shared<api_key_store>();
    CACHALOT_TRY(keys->add(std::move(options.api_keys)));
    if (!keys->enabled() && !is_loopback_host(options.http.host)) {
        std::fprintf(stderr,
                     "cachalot: warning: no API keys are configured and the server listens on %s, beyond loopback: "
                     "anyone who can reach it can use it (set --api-keys-file or CACHALOT_API_KEYS)\n",
                     options.http.host.c_str());
    }

    auto metrics = std::make_shared<gateway_metrics>();
    auto routes = std::make_shared<router>();
    add_service_routes(*routes, options.model, metrics);
    if (options.add_routes) {
        options.add_routes(*routes, metrics);
    }
    auto dispatch = std::make_shared<const dispatcher>(routes, keys, metrics);

    options.http.handle_signals = true;
    auto server = http_server::start(options.http, dispatch, metrics);
    if (!server) {
        return std::move(server).take_error();
    }
    if (options.on_listening) {
        options.on_listening((*server)->host(), (*server)->port());
    }
    (*server)->wait();
    return ok_status();
}

} // namespace cachalot::gateway

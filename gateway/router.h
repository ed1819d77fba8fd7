// The route table: (method, path pattern) → handler, and the dispatcher that every request passes
// through after the server has parsed it: route lookup (404, 405 with Allow), auth and rate limits
// (401, 429), the handler call (an exception becomes a 500), and request metrics. Patterns are
// literal segments plus `{name}` captures that match one non-empty segment. It knows nothing about
// sockets; tests drive it with a recording response_writer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http_types.h"

namespace cachalot::gateway {

class api_key_store;
class gateway_metrics;

struct route_options {
    /// False for /health, /ready and /metrics: they answer without a key.
    bool requires_auth = true;
};

class router {
public:
    /// Adds a route. A later route with the same method and pattern replaces the earlier one.
    void add(std::string method, std::string pattern, request_handler handler, route_options options = {});

    enum class match_kind { found, not_found, method_not_allowed };
    struct match_result {
        match_kind kind = match_kind::not_found;
        const request_handler* handler = nullptr; // valid while the router lives
        route_options options;
        std::string pattern;                                       // the matched route, for metrics
        std::vector<std::pair<std::string, std::string>> params;   // captured {name} segments
        std::vector<std::string> allowed;                          // methods, for 405's Allow header
    };

    /// Looks `path` up (no query). HEAD is not implied by GET.
    [[nodiscard]] match_result match(std::string_view method, std::string_view path) const;

private:
    struct route {
        std::string method;
        std::string pattern;
        std::vector<std::string> segments;
        request_handler handler;
        route_options options;
    };
    std::vector<route> routes_;
};

/// Serves requests through a router. Thread-safe once built: dispatch() may run on any I/O thread.
class dispatcher {
public:
    /// `keys` may be null or empty (then no request needs a key); `metrics` may be null.
    dispatcher(std::shared_ptr<const router> routes, std::shared_ptr<api_key_store> keys,
               std::shared_ptr<gateway_metrics> metrics);

    /// Answers `request` through `writer`, now or (for asynchronous handlers) later.
    void dispatch(http_request request, std::shared_ptr<response_writer> writer) const;

private:
    std::shared_ptr<const router> routes_;
    std::shared_ptr<api_key_store> keys_;
    std::shared_ptr<gateway_metrics> metrics_;
};

} // namespace cachalot::gateway

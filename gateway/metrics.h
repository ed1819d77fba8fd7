// The gateway's Prometheus metrics and the registry that /metrics serializes. Other subsystems
// that live in the gateway's process may register their own families on registry(); the text
// exposition comes from prometheus-cpp's TextSerializer (no civetweb pull server). Metric names
// follow docs/STYLE.md: cachalot_gateway_<what>_<unit>, counters end in _total.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace cachalot::gateway {

class gateway_metrics {
public:
    gateway_metrics();
    ~gateway_metrics();
    gateway_metrics(const gateway_metrics&) = delete;
    gateway_metrics& operator=(const gateway_metrics&) = delete;

    /// Records one finished request: cachalot_gateway_requests_total{route,code} and
    /// cachalot_gateway_request_duration_seconds{route}. `route` is the route pattern (bounded
    /// cardinality), never the raw path. Thread-safe.
    void observe_request(std::string_view route, int code, double duration_s);

    /// Connections currently open: cachalot_gateway_open_connections. Thread-safe.
    void connection_opened();
    void connection_closed();

    /// The Prometheus text exposition (format 0.0.4) of everything in the registry.
    [[nodiscard]] std::string serialize() const;

    [[nodiscard]] prometheus::Registry& registry();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace cachalot::gateway

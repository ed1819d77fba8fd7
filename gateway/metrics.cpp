// prometheus-cpp families behind gateway_metrics (see metrics.h). Family::Add is internally
// locked and returns the existing child for known labels, so observe_request() needs no lock of
// its own. Buckets cover 1 ms to ~2 min: health checks at the bottom, long generations at the top.
#include "gateway/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace cachalot::gateway {

struct gateway_metrics::impl {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
    prometheus::Family<prometheus::Counter>& requests =
        prometheus::BuildCounter()
            .Name("cachalot_gateway_requests_total")
            .Help("HTTP requests answered by the gateway, by route pattern and status code")
            .Register(*registry);
    prometheus::Family<prometheus::Histogram>& duration =
        prometheus::BuildHistogram()
            .Name("cachalot_gateway_request_duration_seconds")
            .Help("Time from a request's arrival to the end of its response, by route pattern")
            .Register(*registry);
    prometheus::Family<prometheus::Gauge>& connections_family =
        prometheus::BuildGauge()
            .Name("cachalot_gateway_open_connections")
            .Help("HTTP connections currently open")
            .Register(*registry);
    prometheus::Gauge& connections = connections_family.Add({});
};

namespace {
const prometheus::Histogram::BucketBoundaries& duration_buckets() {
    static const prometheus::Histogram::BucketBoundaries buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                 0.25,  0.5,    1,     2.5,  5,     10,  30,
                                                                 60,    120};
    return buckets;
}
} // namespace

gateway_metrics::gateway_metrics() : impl_(std::make_unique<impl>()) {}
gateway_metrics::~gateway_metrics() = default;

void gateway_metrics::observe_request(std::string_view route, int code, double duration_s) {
    const std::string route_label(route);
    impl_->requests.Add({{"route", route_label}, {"code", std::to_string(code)}}).Increment();
    impl_->duration.Add({{"route", route_label}}, duration_buckets()).Observe(duration_s);
}

void gateway_metrics::connection_opened() { impl_->connections.Increment(); }
void gateway_metrics::connection_closed() { impl_->connections.Decrement(); }

std::string gateway_metrics::serialize() const {
    std::ostringstream out;
    prometheus::TextSerializer{}.Serialize(out, impl_->registry->Collect());
    return out.str();
}

prometheus::Registry& gateway_metrics::registry() { return *impl_->registry; }

} // namespace cachalot::gateway

// Route matching and the per-request pipeline (see router.h). The dispatcher wraps the server's
// writer in a metered_writer so that the status code and the duration are recorded when the
// response really ends, which for a stream is long after the handler returned.
#include "gateway/router.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>

#include "gateway/auth.h"
#include "gateway/metrics.h"

namespace cachalot::gateway {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i <= path.size()) {
        size_t slash = path.find('/', i);
        if (slash == std::string_view::npos) {
            slash = path.size();
        }
        if (slash > i) {
            out.push_back(path.substr(i, slash - i));
        }
        i = slash + 1;
    }
    return out;
}

bool is_capture(std::string_view segment) {
    return segment.size() >= 3 && segment.front() == '{' && segment.back() == '}';
}

// Percent-decodes one captured segment ("deepseek%2Fv4" → "deepseek/v4"); a malformed escape
// stays as it is.
std::string percent_decode(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Records the final status and duration of one request, whichever way it ends.
class metered_writer final : public response_writer {
public:
    metered_writer(std::shared_ptr<response_writer> inner, std::shared_ptr<gateway_metrics> metrics, std::string route)
        : inner_(std::move(inner)), metrics_(std::move(metrics)), route_(std::move(route)),
          start_(std::chrono::steady_clock::now()) {}

    ~metered_writer() override {
        // A handler that never answered (the inner writer sends its own 500 when it dies), or a
        // stream abandoned before its end: record what the client saw.
        const int code = status_.load();
        record(code == 0 ? 500 : code);
    }

    void respond(http_response response) override {
        int expected = 0;
        if (status_.compare_exchange_strong(expected, response.status)) {
            record(response.status);
        }
        inner_->respond(std::move(response));
    }
    void begin_stream(int status, std::string content_type, header_list headers) override {
        int expected = 0;
        status_.compare_exchange_strong(expected, status);
        inner_->begin_stream(status, std::move(content_type), std::move(headers));
    }
    bool write_chunk(std::string data) override { return inner_->write_chunk(std::move(data)); }
    void end_stream() override {
        if (!ended_.exchange(true) && status_ != 0) {
            record(status_);
        }
        inner_->end_stream();
    }
    bool client_gone() const override { return inner_->client_gone(); }

private:
    void record(int code) {
        if (metrics_ && !recorded_.exchange(true)) {
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
            metrics_->observe_request(route_, code, s);
        }
    }

    std::shared_ptr<response_writer> inner_;
    std::shared_ptr<gateway_metrics> metrics_;
    std::string route_;
    std::chrono::steady_clock::time_point start_;
    std::atomic<int> status_{0};
    std::atomic<bool> ended_{false};
    std::atomic<bool> recorded_{false};
};

// Remembers whether the handler answered, so that an exception after an answer is not turned
// into a second (ignored) response but still reported.
class tracking_writer final : public response_writer {
public:
    explicit tracking_writer(std::shared_ptr<response_writer> inner) : inner_(std::move(inner)) {}
    void respond(http_response response) override {
        answered_ = true;
        inner_->respond(std::move(response));
    }
    void begin_stream(int status, std::string content_type, header_list headers) override {
        answered_ = true;
        inner_->begin_stream(status, std::move(content_type), std::move(headers));
    }
    bool write_chunk(std::string data) override { return inner_->write_chunk(std::move(data)); }
    void end_stream() override { inner_->end_stream(); }
    bool client_gone() const override { return inner_->client_gone(); }
    bool answered() const { return answered_; }

private:
    std::shared_ptr<response_writer> inner_;
    std::atomic<bool> answered_{false};
};

} // namespace

void router::add(std::string method, std::string pattern, request_handler handler, route_options options) {
    std::vector<std::string> segments;
    for (auto s : split_path(pattern)) {
        segments.emplace_back(s);
    }
    for (auto& r : routes_) {
        if (r.method == method && r.pattern == pattern) {
            r.handler = std::move(handler);
            r.options = options;
            return;
        }
    }
    routes_.push_back(route{std::move(method), std::move(pattern), std::move(segments), std::move(handler), options});
}

router::match_result router::match(std::string_view method, std::string_view path) const {
    const auto parts = split_path(path);
    match_result out;
    // Literal routes win over captures: /v1/models/special beats /v1/models/{id}.
    int best_literals = -1;
    for (const auto& r : routes_) {
        if (r.segments.size() != parts.size()) {
            continue;
        }
        int literals = 0;
        bool ok = true;
        std::vector<std::pair<std::string, std::string>> params;
        for (size_t i = 0; i < parts.size() && ok; ++i) {
            if (is_capture(r.segments[i])) {
                params.emplace_back(r.segments[i].substr(1, r.segments[i].size() - 2), percent_decode(parts[i]));
            } else if (r.segments[i] == parts[i]) {
                ++literals;
            } else {
                ok = false;
            }
        }
        if (!ok) {
            continue;
        }
        if (r.method != method) {
            if (std::find(out.allowed.begin(), out.allowed.end(), r.method) == out.allowed.end()) {
                out.allowed.push_back(r.method);
            }
            if (out.kind == match_kind::not_found) {
                out.kind = match_kind::method_not_allowed;
                out.pattern = r.pattern;
            }
            continue;
        }
        if (literals > best_literals) {
            best_literals = literals;
            out.kind = match_kind::found;
            out.handler = &r.handler;
            out.options = r.options;
            out.pattern = r.pattern;
            out.params = std::move(params);
        }
    }
    return out;
}

dispatcher::dispatcher(std::shared_ptr<const router> routes, std::shared_ptr<api_key_store> keys,
                       std::shared_ptr<gateway_metrics> metrics)
    : routes_(std::move(routes)), keys_(std::move(keys)), metrics_(std::move(metrics)) {}

void dispatcher::dispatch(http_request request, std::shared_ptr<response_writer> writer) const {
    auto m = routes_->match(request.method, request.path);
    const std::string route_label = m.kind == router::match_kind::not_found ? "unmatched" : m.pattern;
    auto metered = std::make_shared<metered_writer>(std::move(writer), metrics_, route_label);

    if (m.kind == router::match_kind::not_found) {
        metered->respond(error_response(404, "no route for " + request.method + " " + request.path,
                                        "invalid_request_error", {}, "not_found"));
        return;
    }
    if (m.kind == router::match_kind::method_not_allowed) {
        std::string allow;
        for (const auto& a : m.allowed) {
            allow += allow.empty() ? a : ", " + a;
        }
        auto r = error_response(405, "method " + request.method + " is not allowed on " + request.path + " (allowed: " +
                                         allow + ")",
                                "invalid_request_error", {}, "method_not_allowed");
        r.headers.emplace_back("Allow", allow);
        metered->respond(std::move(r));
        return;
    }
    if (m.options.requires_auth && keys_ && keys_->enabled()) {
        const auto decision = keys_->check(request.header("Authorization"));
        switch (decision.outcome) {
        case auth_outcome::allowed: break;
        case auth_outcome::missing_key:
            metered->respond(error_response(401,
                                            "missing API key: send it as an `Authorization: Bearer <key>` header",
                                            "invalid_request_error", {}, "invalid_api_key"));
            return;
        case auth_outcome::invalid_key:
            metered->respond(
                error_response(401, "incorrect API key provided", "invalid_request_error", {}, "invalid_api_key"));
            return;
        case auth_outcome::rate_limited: {
            auto r = error_response(429,
                                    "rate limit reached for this API key: retry in " +
                                        std::to_string(decision.retry_after_s) + " s",
                                    "rate_limit_error", {}, "rate_limit_exceeded");
            r.headers.emplace_back("Retry-After", std::to_string(decision.retry_after_s));
            metered->respond(std::move(r));
            return;
        }
        }
    }

    request.params = std::move(m.params);
    auto tracked = std::make_shared<tracking_writer>(metered);
    try {
        (*m.handler)(request, tracked);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gateway: handler for %s %s threw: %s\n", request.method.c_str(), request.path.c_str(),
                     e.what());
        if (!tracked->answered()) {
            tracked->respond(error_response(500, std::string("internal error: ") + e.what(), "server_error"));
        }
    } catch (...) {
        std::fprintf(stderr, "gateway: handler for %s %s threw a non-standard exception\n", request.method.c_str(),
                     request.path.c_str());
        if (!tracked->answered()) {
            tracked->respond(error_response(500, "internal error", "server_error"));
        }
    }
}

} // namespace cachalot::gateway

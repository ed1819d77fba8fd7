// The router's matching rules and the dispatcher's pipeline (404, 405 + Allow, 401, 429, handler
// exceptions, metrics), driven through a recording response_writer: no sockets involved.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <stdexcept>

#include "gateway/auth.h"
#include "gateway/metrics.h"
#include "gateway/router.h"
#include "tests/support/recording_writer.h"

using namespace cachalot::gateway;
using cachalot::test::recording_writer;

namespace {


http_request make_request(std::string method, std::string path, std::string auth = {}) {
    http_request r;
    r.method = std::move(method);
    r.path = path;
    r.target = std::move(path);
    if (!auth.empty()) {
        r.headers.emplace_back("authorization", std::move(auth));
    }
    return r;
}

std::string_view find_header(const http_response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
        if (k == name) {
            return v;
        }
    }
    return {};
}

request_handler answer(std::string body) {
    return [body](const http_request&, std::shared_ptr<response_writer> w) { w->respond(json_response(200, body)); };
}

} // namespace

TEST_CASE("router matches literal routes, captures and reports allowed methods") {
    router r;
    r.add("GET", "/v1/models", answer("list"));
    r.add("GET", "/v1/models/{id}", answer("one"));
    r.add("GET", "/v1/models/special", answer("special"));
    r.add("POST", "/v1/chat/completions", answer("chat"));

    auto m = r.match("GET", "/v1/models");
    CHECK(m.kind == router::match_kind::found);
    CHECK(m.pattern == "/v1/models");

    m = r.match("GET", "/v1/models/cachalot-demo");
    REQUIRE(m.kind == router::match_kind::found);
    CHECK(m.pattern == "/v1/models/{id}");
    REQUIRE(m.params.size() == 1);
    CHECK(m.params[0].first == "id");
    CHECK(m.params[0].second == "cachalot-demo");

    SUBCASE("a literal segment beats a capture") {
        m = r.match("GET", "/v1/models/special");
        CHECK(m.pattern == "/v1/models/special");
    }
    SUBCASE("captures are percent-decoded") {
        m = r.match("GET", "/v1/models/deepseek%2Fv4");
        REQUIRE(m.kind == router::match_kind::found);
        CHECK(m.params[0].second == "deepseek/v4");
    }
    SUBCASE("a trailing slash names the same path") {
        CHECK(r.match("GET", "/v1/models/").kind == router::match_kind::found);
    }
    SUBCASE("unknown paths and extra segments are not found") {
        CHECK(r.match("GET", "/v2/models").kind == router::match_kind::not_found);
        CHECK(r.match("GET", "/v1/models/a/b").kind == router::match_kind::not_found);
        CHECK(r.match("GET", "/").kind == router::match_kind::not_found);
    }
    SUBCASE("a wrong method lists the allowed ones") {
        m = r.match("DELETE", "/v1/chat/completions");
        CHECK(m.kind == router::match_kind::method_not_allowed);
        REQUIRE(m.allowed.size() == 1);
        CHECK(m.allowed[0] == "POST");
    }
}

TEST_CASE("dispatcher answers 404 and 405 with OpenAI error objects") {
    auto r = std::make_shared<router>();
    r->add("GET", "/health", answer(R"({"status":"ok"})"));
    r->add("PUT", "/health", answer("{}"));
    auto metrics = std::make_shared<gateway_metrics>();
    dispatcher d(r, nullptr, metrics);

    auto w = std::make_shared<recording_writer>();
    d.dispatch(make_request("GET", "/nope"), w);
    CHECK(w->response.status == 404);
    CHECK(w->response.content_type == "application/json");
    CHECK(w->response.body.find("\"error\":{\"message\":") != std::string::npos);
    CHECK(w->response.body.find("\"type\":") != std::string::npos);
    CHECK(w->response.body.find("\"param\":") != std::string::npos);
    CHECK(w->response.body.find("\"code\":") != std::string::npos);

    w = std::make_shared<recording_writer>();
    d.dispatch(make_request("POST", "/health"), w);
    CHECK(w->response.status == 405);
    CHECK(find_header(w->response, "Allow") == "GET, PUT");

    w = std::make_shared<recording_writer>();
    d.dispatch(make_request("GET", "/health"), w);
    CHECK(w->response.status == 200);
    CHECK(w->response.body == R"({"status":"ok"})");

    const std::string text = metrics->serialize();
    CHECK(text.find(R"(cachalot_gateway_requests_total{code="404",route="unmatched"} 1)") != std::string::npos);
    CHECK(text.find(R"(cachalot_gateway_requests_total{code="405",route="/health"} 1)") != std::string::npos);
    CHECK(text.find(R"(cachalot_gateway_requests_total{code="200",route="/health"} 1)") != std::string::npos);
    CHECK(text.find("# HELP cachalot_gateway_request_duration_seconds") != std::string::npos);
}

TEST_CASE("dispatcher turns a throwing handler into a 500 and keeps serving") {
    auto r = std::make_shared<router>();
    r->add("GET", "/boom", [](const http_request&, std::shared_ptr<response_writer>) {
        throw std::runtime_error("kaboom \"quoted\"");
    });
    r->add("GET", "/late-boom", [](const http_request&, std::shared_ptr<response_writer> w) {
        w->respond(json_response(200, "{}"));
        throw std::runtime_error("after answering");
    });
    dispatcher d(r, nullptr, nullptr);

    auto w = std::make_shared<recording_writer>();
    d.dispatch(make_request("GET", "/boom"), w);
    CHECK(w->n_responses == 1);
    CHECK(w->response.status == 500);
    CHECK(w->response.body.find(R"(kaboom \"quoted\")") != std::string::npos);

    w = std::make_shared<recording_writer>();
    d.dispatch(make_request("GET", "/late-boom"), w);
    CHECK(w->n_responses == 1);
    CHECK(w->response.status == 200);
}

TEST_CASE("dispatcher enforces bearer keys and per-key request limits on protected routes only") {
    auto r = std::make_shared<router>();
    r->add("GET", "/v1/models", answer("{}"));
    r->add("GET", "/health", answer("{}"), route_options{.requires_auth = false});
    auto keys = std::make_shared<api_key_store>();
    REQUIRE(keys->add({{"sk-good", 0, 0}, {"sk-limited", 2, 0}}).ok());
    dispatcher d(r, keys, nullptr);

    auto status_of = [&](std::string method, std::string path, std::string auth) {
        auto w = std::make_shared<recording_writer>();
        d.dispatch(make_request(std::move(method), std::move(path), std::move(auth)), w);
        return w->response;
    };
    CHECK(status_of("GET", "/health", "").status == 200);
    auto missing = status_of("GET", "/v1/models", "");
    CHECK(missing.status == 401);
    CHECK(missing.body.find("\"code\":\"invalid_api_key\"") != std::string::npos);
    CHECK(status_of("GET", "/v1/models", "Bearer sk-wrong").status == 401);
    CHECK(status_of("GET", "/v1/models", "Basic sk-good").status == 401);
    CHECK(status_of("GET", "/v1/models", "Bearer sk-good").status == 200);
    CHECK(status_of("GET", "/v1/models", "bearer   sk-good").status == 200);

    CHECK(status_of("GET", "/v1/models", "Bearer sk-limited").status == 200);
    CHECK(status_of("GET", "/v1/models", "Bearer sk-limited").status == 200);
    auto limited = status_of("GET", "/v1/models", "Bearer sk-limited");
    CHECK(limited.status == 429);
    CHECK(!find_header(limited, "Retry-After").empty());
    // Another key's budget is separate.
    CHECK(status_of("GET", "/v1/models", "Bearer sk-good").status == 200);
}

TEST_CASE("a handler may stream its answer after returning") {
    auto r = std::make_shared<router>();
    std::shared_ptr<response_writer> kept;
    r->add("GET", "/stream", [&kept](const http_request&, std::shared_ptr<response_writer> w) {
        w->begin_stream(200, "text/event-stream");
        kept = std::move(w);
    });
    auto metrics = std::make_shared<gateway_metrics>();
    dispatcher d(r, nullptr, metrics);
    auto w = std::make_shared<recording_writer>();
    d.dispatch(make_request("GET", "/stream"), w);
    REQUIRE(kept);
    CHECK(w->streamed);
    CHECK(metrics->serialize().find(R"(route="/stream")") == std::string::npos); // not finished yet
    CHECK(kept->write_chunk("data: 1\n\n"));
    kept->end_stream();
    CHECK(w->chunks == "data: 1\n\n");
    CHECK(w->ended);
    CHECK(metrics->serialize().find(R"(cachalot_gateway_requests_total{code="200",route="/stream"} 1)") !=
          std::string::npos);
}

TEST_CASE("error_response escapes the message and writes null for empty param and code") {
    auto r = error_response(400, "bad \"x\"\n", "invalid_request_error");
    CHECK(r.status == 400);
    CHECK(r.body == R"({"error":{"message":"bad \"x\"\n","type":"invalid_request_error","param":null,"code":null}})");
}

// The service routes (/ready, /v1/models, /v1/models/{id}) and the stand-in model probe that
// reads a model directory's config.json.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "gateway/api_routes.h"
#include "gateway/metrics.h"
#include "tests/support/recording_writer.h"
#include "tests/support/test_paths.h"

using namespace cachalot::gateway;
using cachalot::test::recording_writer;

namespace {


http_response get(const dispatcher& d, std::string path) {
    http_request req;
    req.method = "GET";
    req.path = path;
    req.target = std::move(path);
    auto w = std::make_shared<recording_writer>();
    d.dispatch(std::move(req), w);
    return w->response;
}

void write_text(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p) << text;
}

} // namespace

TEST_CASE("service routes report readiness and list only the served model") {
    auto model = std::make_shared<model_state>();
    model->info = {"my-model", 4096, "/models/x"};
    model->created_unix = 1700000000;
    auto routes = std::make_shared<router>();
    auto metrics = std::make_shared<gateway_metrics>();
    add_service_routes(*routes, model, metrics);
    dispatcher d(routes, nullptr, metrics);

    CHECK(get(d, "/ready").status == 503);
    model->ready = true;
    CHECK(get(d, "/ready").status == 200);
    CHECK(get(d, "/health").body == R"({"status":"ok"})");

    auto list = get(d, "/v1/models");
    CHECK(list.status == 200);
    CHECK(list.body == R"({"object":"list","data":[{"id":"my-model","object":"model","created":1700000000,)"
                       R"("owned_by":"cachalot","max_model_len":4096}]})");
    CHECK(get(d, "/v1/models/my-model").status == 200);
    auto missing = get(d, "/v1/models/other");
    CHECK(missing.status == 404);
    CHECK(missing.body.find("`other`") != std::string::npos);
    CHECK(missing.body.find(R"("code":"model_not_found")") != std::string::npos);

    auto text = get(d, "/metrics");
    CHECK(text.content_type.rfind("text/plain", 0) == 0);
    CHECK(text.body.find(R"(cachalot_gateway_requests_total{code="503",route="/ready"} 1)") != std::string::npos);
}

TEST_CASE("model probe reads a deepseek_v4 config and names what is wrong otherwise") {
    auto info = probe_model_dir(cachalot::test::tiny_model_dir(), "");
    REQUIRE_MESSAGE(info.ok(), (info.ok() ? std::string() : info.err().message));
    CHECK(info->id == "tiny-v4");
    CHECK(info->max_model_len > 0);
    CHECK(probe_model_dir(cachalot::test::tiny_model_dir(), "served").value().id == "served");

    namespace fs = std::filesystem;
    const fs::path dir = cachalot::test::make_temp_dir("gateway-probe");
    auto error_of = [&](const std::string& config) {
        write_text(dir / "config.json", config);
        auto r = probe_model_dir(dir.string(), "");
        return r.ok() ? std::string() : r.err().message;
    };
    CHECK(error_of(R"({"model_type":"llama","max_position_embeddings":10})").find("deepseek_v4") != std::string::npos);
    CHECK(error_of(R"({"model_type":"deepseek_v4"})").find("max_position_embeddings") != std::string::npos);
    CHECK(error_of(R"({"model_type":"deepseek_v4","max_position_embeddings":-1})").find("positive") !=
          std::string::npos);
    CHECK(error_of("{not json").find("config.json") != std::string::npos);
    CHECK(error_of(R"({"model_type":"deepseek_v4","max_position_embeddings":64})").empty());
    CHECK_FALSE(probe_model_dir((dir / "absent").string(), "").ok());
    fs::remove_all(dir);
}

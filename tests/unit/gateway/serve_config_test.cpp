// Validation of `cachalot serve --config` YAML: known keys with their types, and errors that name
// an unknown or ill-typed key.
#include <doctest/doctest.h>

#include "gateway/serve_config.h"

using namespace cachalot::gateway;

TEST_CASE("serve config reads every known key") {
    auto cfg = parse_serve_config("host: 0.0.0.0\nport: 9000\ndata_dir: /tmp/c\nmodel: /m\nserved_model_name: demo\n"
                                  "api_keys_file: keys.txt\nthreads: 3\nmax_body_bytes: 1048576\n",
                                  "serve.yaml");
    REQUIRE(cfg.ok());
    CHECK(cfg->host == "0.0.0.0");
    CHECK(cfg->port == 9000);
    CHECK(cfg->data_dir == "/tmp/c");
    CHECK(cfg->model == "/m");
    CHECK(cfg->served_model_name == "demo");
    CHECK(cfg->api_keys_file == "keys.txt");
    CHECK(cfg->threads == 3);
    CHECK(cfg->max_body_bytes == 1048576);
}

TEST_CASE("serve config leaves unset keys empty and accepts an empty file") {
    auto cfg = parse_serve_config("port: 0\n", "serve.yaml");
    REQUIRE(cfg.ok());
    CHECK(cfg->port == 0);
    CHECK_FALSE(cfg->host.has_value());
    CHECK(parse_serve_config("", "empty.yaml").ok());
    CHECK(parse_serve_config("# only a comment\n", "empty.yaml").ok());
}

TEST_CASE("serve config names unknown and ill-typed keys") {
    auto expect_error = [](const char* text, const char* needle) {
        auto cfg = parse_serve_config(text, "serve.yaml");
        REQUIRE_FALSE(cfg.ok());
        INFO(cfg.err().message);
        CHECK(cfg.err().message.find(needle) != std::string::npos);
        CHECK(cfg.err().message.find("serve.yaml") != std::string::npos);
    };
    expect_error("hots: 1.2.3.4\n", "`hots`");
    expect_error("port: eighty\n", "`port`");
    expect_error("port: 80.5\n", "`port`");
    expect_error("port: 70000\n", "`port`");
    expect_error("threads: 0\n", "`threads`");
    expect_error("host: [a, b]\n", "`host`");
    expect_error("model:\n", "`model`");
    expect_error("max_body_bytes: {a: 1}\n", "`max_body_bytes`");
    expect_error("- port\n", "mapping");
    expect_error("port: [\n", "YAML");
}

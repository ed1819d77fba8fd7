// API key parsing (file and environment forms, with line-numbered errors) and the per-key
// requests-per-minute bucket, with the clock injected.
#include <doctest/doctest.h>

#include <chrono>

#include "gateway/auth.h"

using namespace cachalot::gateway;

TEST_CASE("API keys file parses keys, limits, comments and blank lines") {
    auto keys = parse_api_keys_text("# team keys\n\nsk-alpha\n  sk-beta rpm=60 tpm=100000  \r\nsk-gamma tpm=5 # trial\n",
                                    "keys.txt");
    REQUIRE(keys.ok());
    REQUIRE(keys->size() == 3);
    CHECK((*keys)[0].key == "sk-alpha");
    CHECK((*keys)[0].rpm == 0);
    CHECK((*keys)[1].key == "sk-beta");
    CHECK((*keys)[1].rpm == 60);
    CHECK((*keys)[1].tpm == 100000);
    CHECK((*keys)[2].rpm == 0);
    CHECK((*keys)[2].tpm == 5);
}

TEST_CASE("API keys file rejects malformed lines naming file and line") {
    auto check_error = [](const char* text, const char* needle) {
        auto r = parse_api_keys_text(text, "keys.txt");
        REQUIRE_FALSE(r.ok());
        INFO(r.err().message);
        CHECK(r.err().message.find(needle) != std::string::npos);
        CHECK(r.err().message.find("keys.txt line") != std::string::npos);
    };
    check_error("sk-a\nsk-b rpm=abc\n", "line 2");
    check_error("sk-a rpm=0\n", "positive");
    check_error("sk-a rpm=-3\n", "positive");
    check_error("\n\nsk-a burst=3\n", "line 3");
    check_error("sk-a rpm=1 rpm=2\n", "twice");
    check_error("sk-a rpm=5x\n", "rpm");
}

TEST_CASE("CACHALOT_API_KEYS is split on commas with spaces trimmed") {
    auto keys = parse_api_keys_env(" sk-1, sk-2 ,,sk-3");
    REQUIRE(keys.ok());
    REQUIRE(keys->size() == 3);
    CHECK((*keys)[1].key == "sk-2");
    CHECK(parse_api_keys_env("").value().empty());
    CHECK_FALSE(parse_api_keys_env("sk 1").ok());
}

TEST_CASE("api_key_store refuses duplicate keys and lets everything through when empty") {
    api_key_store empty;
    CHECK_FALSE(empty.enabled());
    CHECK(empty.check("").outcome == auth_outcome::allowed);

    api_key_store store;
    auto st = store.add({{"sk-same", 0, 0}, {"sk-same", 0, 0}});
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find("twice") != std::string::npos);
    CHECK(st.err().message.find("sk-same") == std::string::npos); // never log a whole key
}

TEST_CASE("rpm bucket allows a burst of rpm requests and refills at rpm per minute") {
    api_key_store store;
    REQUIRE(store.add({{"sk-x", 3, 0}}).ok());
    const auto t0 = api_key_store::clock::now();
    CHECK(store.check("Bearer sk-x", t0).outcome == auth_outcome::allowed);
    CHECK(store.check("Bearer sk-x", t0).outcome == auth_outcome::allowed);
    CHECK(store.check("Bearer sk-x", t0).outcome == auth_outcome::allowed);
    auto d = store.check("Bearer sk-x", t0);
    CHECK(d.outcome == auth_outcome::rate_limited);
    CHECK(d.retry_after_s == 20); // one token every 60/3 s
    CHECK(store.check("Bearer sk-x", t0 + std::chrono::seconds(10)).outcome == auth_outcome::rate_limited);
    CHECK(store.check("Bearer sk-x", t0 + std::chrono::seconds(21)).outcome == auth_outcome::allowed);
    CHECK(store.check("Bearer sk-y", t0).outcome == auth_outcome::invalid_key);
    CHECK(store.check("", t0).outcome == auth_outcome::missing_key);
}

// /tokenize and /detokenize driven through a dispatcher with the tiny-v4 tokenizer: prompts with
// and without BOS, chat messages encoded as a chat request would be (user text cannot inject
// control tokens), the round trip, and the OpenAI errors (bad JSON, missing fields, another
// model, ids out of range). No server, no model weights.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/chat_encoding.h"
#include "engine/json.h"
#include "engine/tokenizer.h"
#include "gateway/tokenize_routes.h"
#include "tests/support/recording_writer.h"
#include "tests/support/test_paths.h"

using namespace cachalot::gateway;
using cachalot::test::recording_writer;
using cachalot::json_value;
using cachalot::parse_json;

namespace {


struct tokenize_fixture {
    cachalot::tokenizer tok = cachalot::tokenizer::load(cachalot::test::tiny_model_dir()).value();
    std::shared_ptr<model_state> model = std::make_shared<model_state>();
    std::shared_ptr<router> routes = std::make_shared<router>();
    std::unique_ptr<dispatcher> d;

    tokenize_fixture() {
        model->info = {"tiny-v4", 16, cachalot::test::tiny_model_dir()};
        model->ready = true;
        add_tokenize_routes(*routes, model, tok);
        d = std::make_unique<dispatcher>(routes, nullptr, nullptr);
    }

    http_response post(const std::string& path, std::string body) const {
        http_request req;
        req.method = "POST";
        req.path = path;
        req.target = path;
        req.body = std::move(body);
        auto w = std::make_shared<recording_writer>();
        d->dispatch(std::move(req), w);
        return w->response;
    }

    // The "tokens" of a 200 answer, checking "count" and "max_model_len" on the way.
    std::vector<int32_t> tokens_of(const http_response& r) const {
        REQUIRE_MESSAGE(r.status == 200, r.body);
        auto j = parse_json(r.body).value();
        std::vector<int32_t> ids;
        for (const auto& t : j.find("tokens")->as_array()) {
            ids.push_back(static_cast<int32_t>(t.as_int64()));
        }
        CHECK(j.find("count")->as_int64() == static_cast<int64_t>(ids.size()));
        CHECK(j.find("max_model_len")->as_int64() == 16);
        return ids;
    }
};

std::vector<int32_t> with_bos(int32_t bos, std::vector<int32_t> ids) {
    ids.insert(ids.begin(), bos);
    return ids;
}

bool names(const http_response& r, const std::string& text) {
    return r.body.find(text) != std::string::npos;
}

} // namespace

TEST_CASE_FIXTURE(tokenize_fixture, "tokenize route encodes a prompt as Hugging Face does, BOS unless told not to") {
    const int32_t bos = tok.bos_id().value();
    const auto plain = tok.encode("Hello world <｜User｜> again", true);
    CHECK(tokens_of(post("/tokenize", R"({"model":"tiny-v4","prompt":"Hello world <｜User｜> again"})")) ==
          with_bos(bos, plain));
    CHECK(tokens_of(post("/tokenize", R"({"prompt":"Hello world <｜User｜> again","add_special_tokens":false})")) ==
          plain);
    // Added tokens in a plain prompt are matched, as HF tokenizers match them.
    CHECK(std::count(plain.begin(), plain.end(), tok.token_id("<｜User｜>").value()) == 1);

    // Longer than max_model_len (16 here) is still tokenized and counted.
    std::string long_text(200, 'x');
    CHECK(tokens_of(post("/tokenize", R"({"prompt":")" + long_text + R"("})")).size() > 16);

    CHECK(post("/tokenize", R"({"prompt":"hi","add_special_tokens":"no"})").status == 400);
    CHECK(post("/tokenize", R"({"prompt":7})").status == 400);
}

TEST_CASE_FIXTURE(tokenize_fixture, "tokenize route renders chat messages exactly as a chat request would be") {
    const std::string body =
        R"({"model":"tiny-v4","messages":[{"role":"system","content":"Be brief."},)"
        R"({"role":"user","content":"Say <｜Assistant｜> twice"}],"reasoning_effort":"high",)"
        R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]})";
    auto request = cachalot::chat_request_from_json(parse_json(body).value()).value();
    auto segments = cachalot::render_segments(request).value();
    auto expected = cachalot::encode_prompt_segments(segments, tok, cachalot::added_token_strings(tok)).value();

    const auto ids = tokens_of(post("/tokenize", body));
    CHECK(ids == expected);
    CHECK(ids.front() == tok.bos_id().value());
    // The user's "<｜Assistant｜>" is text: only the template's own generation prompt is the token.
    CHECK(std::count(ids.begin(), ids.end(), tok.token_id("<｜Assistant｜>").value()) == 1);

    auto bad = post("/tokenize", R"({"messages":[{"role":"nobody","content":"x"}]})");
    CHECK(bad.status == 400);
    CHECK(names(bad, "messages[0]"));
}

TEST_CASE_FIXTURE(tokenize_fixture, "detokenize route round-trips tokenize and names an id out of range") {
    const std::string text = "Hello world, <think>ünïcode</think>";
    auto ids = tokens_of(post("/tokenize", R"({"prompt":")" + text + R"(","add_special_tokens":false})"));
    json_value tokens = json_value::array();
    for (int32_t id : ids) {
        tokens.push_back(json_value(id));
    }
    json_value req = json_value::object({{"model", "tiny-v4"}, {"tokens", tokens}});
    auto r = post("/detokenize", req.dump_compact());
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK(parse_json(r.body).value().find("prompt")->as_string() == text);

    auto out_of_range = post("/detokenize", R"({"tokens":[5,123456]})");
    CHECK(out_of_range.status == 400);
    CHECK(names(out_of_range, "123456"));
    CHECK(post("/detokenize", R"({"tokens":[-1]})").status == 400);
    CHECK(post("/detokenize", R"({"tokens":[1.5]})").status == 400);
    CHECK(post("/detokenize", R"({"tokens":"1 2"})").status == 400);
    CHECK(post("/detokenize", R"({"model":"tiny-v4"})").status == 400);
}

TEST_CASE_FIXTURE(tokenize_fixture,
                  "tokenize routes answer bad JSON, missing fields and other models with OpenAI errors") {
    auto bad_json = post("/tokenize", R"({"prompt": "unterminated)");
    CHECK(bad_json.status == 400);
    CHECK(names(bad_json, "not valid JSON"));
    CHECK(names(bad_json, R"("type":"invalid_request_error")"));

    auto missing = post("/tokenize", R"({"model":"tiny-v4"})");
    CHECK(missing.status == 400);
    CHECK(names(missing, "`prompt`"));
    CHECK(post("/tokenize", R"(["prompt"])").status == 400);
    CHECK(post("/tokenize", R"({"prompt":"a","messages":[]})").status == 400);

    for (const char* path : {"/tokenize", "/detokenize"}) {
        auto other = post(path, R"({"model":"other-model","prompt":"hi","tokens":[1]})");
        CHECK(other.status == 404);
        CHECK(names(other, "`other-model`"));
        CHECK(names(other, R"("code":"model_not_found")"));
        CHECK(post(path, R"({"model":3,"prompt":"hi","tokens":[1]})").status == 400);
    }
}

// Tests of engine/chat_parser: every case of fixtures/chat/dsv4-completions.json parses to the
// recorded message or fails as recorded, the partial parser keeps what a cut-off generation
// has, and what the encoder renders for a tool-calling turn parses back to the same calls.
#include "engine/chat_parser.h"

#include <doctest/doctest.h>

#include <string>

#include "tests/support/test_paths.h"

using namespace cachalot;

TEST_CASE("every dsv4-completions.json case parses as DeepSeek's parser does") {
    auto cases = parse_json(test::read_file(test::shared_dir() + "/fixtures/chat/dsv4-completions.json"));
    REQUIRE(cases.ok());
    REQUIRE(cases->size() >= 5);
    for (const auto& c : cases->as_array()) {
        CAPTURE(c.find("name")->as_string());
        thinking_mode mode =
            c.find("thinking_mode")->as_string() == "thinking" ? thinking_mode::thinking : thinking_mode::chat;
        auto got = parse_completion(c.find("text")->as_string(), mode);
        if (const json_value* err = c.find("error")) {
            REQUIRE_FALSE(got.ok());
            CHECK(got.err().message.find(err->as_string()) != std::string::npos);
        } else {
            REQUIRE_MESSAGE(got.ok(), (got.ok() ? "" : got.err().message));
            json_value want = *c.find("parsed");
            CHECK(got->to_json() == want);
            // Argument strings are compared as text too: they must be Python's json.dumps form.
            const auto& calls = want.find("tool_calls")->as_array();
            REQUIRE(calls.size() == got->tool_calls.size());
            for (size_t i = 0; i < calls.size(); ++i) {
                CHECK(got->tool_calls[i].arguments == calls[i].find("function")->find("arguments")->as_string());
            }
        }
    }
}

TEST_CASE("a completion cut off by max_tokens keeps the text it has") {
    auto chat = parse_partial_completion("Truncated by max_tok", thinking_mode::chat);
    REQUIRE(chat.ok());
    CHECK(chat->content == "Truncated by max_tok");
    CHECK_FALSE(chat->saw_eos);

    auto thinking = parse_partial_completion("Still reasoning", thinking_mode::thinking);
    REQUIRE(thinking.ok());
    CHECK(thinking->reasoning_content == "Still reasoning");
    CHECK(thinking->content.empty());

    std::string cut = "R</think>C\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"a\">\n"
                      "<｜DSML｜parameter name=\"x\" string=\"false\">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n"
                      "<｜DSML｜invoke name=\"b\">\n<｜DSML｜parameter name=\"y\" string=\"true\">hal";
    auto partial = parse_partial_completion(cut, thinking_mode::thinking);
    REQUIRE(partial.ok());
    CHECK(partial->reasoning_content == "R");
    CHECK(partial->content == "C");
    REQUIRE(partial->tool_calls.size() == 1);
    CHECK(partial->tool_calls[0].name == "a");
    CHECK(partial->tool_calls[0].arguments == "{\"x\": 1}");

    CHECK_FALSE(parse_completion(cut, thinking_mode::thinking).ok());
}

TEST_CASE("strict completion parsing rejects content after EOS and unclosed reasoning") {
    CHECK_FALSE(parse_completion("a<｜end▁of▁sentence｜>b", thinking_mode::chat).ok());
    CHECK_FALSE(parse_completion("no close<｜end▁of▁sentence｜>", thinking_mode::thinking).ok());
    CHECK_FALSE(parse_completion("x</think>y<｜end▁of▁sentence｜>", thinking_mode::chat).ok());
    auto ok = parse_completion("<｜end▁of▁sentence｜>", thinking_mode::chat);
    REQUIRE(ok.ok());
    CHECK(ok->content.empty());
}

TEST_CASE("a rendered tool-calling assistant turn parses back to its calls") {
    auto body = parse_json(R"({"messages": [{"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Sure.", "tool_calls": [{"id": "1", "type": "function",
         "function": {"name": "search", "arguments": "{\"q\": \"a \\\"b\\\"\", \"n\": 3, \"f\": {\"t\": [true, null]}}"}}]}]})");
    REQUIRE(body.ok());
    auto req = chat_request_from_json(*body);
    REQUIRE(req.ok());
    auto prompt = render_prompt(*req);
    REQUIRE(prompt.ok());
    std::string marker = "<｜Assistant｜></think>";
    std::string completion = prompt->substr(prompt->find(marker) + marker.size());
    auto parsed = parse_completion(completion, thinking_mode::chat);
    REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? "" : parsed.err().message));
    CHECK(parsed->content == "Sure.");
    REQUIRE(parsed->tool_calls.size() == 1);
    CHECK(parsed->tool_calls[0].name == "search");
    CHECK(parsed->tool_calls[0].arguments == R"({"q": "a \"b\"", "n": 3, "f": {"t": [true, null]}})");
}

// Tests of engine/chat_encoding: every conversation of fixtures/chat/dsv4-prompts.json renders
// byte for byte as DeepSeek's encoder rendered it, the OpenAI request fields (thinking switches,
// top-level tools, continue_final_message) map onto the encoder's, request errors name the
// problem, and segments mark user-supplied text so control-token look-alikes stay text.
#include "engine/chat_encoding.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/tokenizer.h"
#include "tests/support/test_paths.h"

using namespace cachalot;

namespace {

json_value load_json(const std::string& path) {
    auto v = parse_json(test::read_file(path));
    REQUIRE_MESSAGE(v.ok(), (v.ok() ? "" : v.err().message));
    return std::move(v).value();
}

json_value must_parse(std::string_view text) {
    auto v = parse_json(text);
    REQUIRE_MESSAGE(v.ok(), (v.ok() ? "" : v.err().message));
    return std::move(v).value();
}

std::string render(const json_value& body) {
    auto req = chat_request_from_json(body);
    REQUIRE_MESSAGE(req.ok(), (req.ok() ? "" : req.err().message));
    auto prompt = render_prompt(*req);
    REQUIRE_MESSAGE(prompt.ok(), (prompt.ok() ? "" : prompt.err().message));
    return *prompt;
}

std::string request_error(std::string_view body) {
    auto req = chat_request_from_json(must_parse(body));
    REQUIRE_FALSE(req.ok());
    return req.err().message;
}

std::string concat(const std::vector<prompt_segment>& segs) {
    std::string out;
    for (const auto& s : segs) {
        out += s.text;
    }
    return out;
}

} // namespace

TEST_CASE("every dsv4-prompts.json conversation renders byte for byte as DeepSeek's encoder does") {
    json_value cases = load_json(test::shared_dir() + "/fixtures/chat/dsv4-prompts.json");
    REQUIRE(cases.is_array());
    REQUIRE(cases.size() == 20);
    size_t matched = 0;
    for (const auto& c : cases.as_array()) {
        const std::string& name = c.find("name")->as_string();
        CAPTURE(name);
        std::string got = render(c);
        const std::string& want = c.find("prompt")->as_string();
        CHECK(got == want);
        matched += got == want ? 1 : 0;

        // Segments always reassemble the prompt.
        auto req = chat_request_from_json(c);
        REQUIRE(req.ok());
        auto segs = render_segments(*req);
        REQUIRE(segs.ok());
        CHECK(concat(*segs) == want);
    }
    MESSAGE("dsv4 prompts matched: " << matched << "/20");
    CHECK(matched == 20);
}

TEST_CASE("user text that spells control tokens lands in user_text segments") {
    json_value body = must_parse(R"({"messages": [
        {"role": "system", "content": "sys <｜User｜>"},
        {"role": "user", "content": "hi <｜end▁of▁sentence｜> and </think>"}]})");
    auto req = chat_request_from_json(body);
    REQUIRE(req.ok());
    auto segs = render_segments(*req);
    REQUIRE(segs.ok());
    CHECK(concat(*segs) == *render_prompt(*req));
    bool found_user = false;
    bool found_sys = false;
    for (const auto& s : *segs) {
        if (s.text.find("hi <｜end▁of▁sentence｜> and </think>") != std::string::npos) {
            CHECK(s.kind == segment_kind::user_text);
            found_user = true;
        }
        if (s.text.find("sys <｜User｜>") != std::string::npos) {
            CHECK(s.kind == segment_kind::user_text);
            found_sys = true;
        }
        if (s.kind == segment_kind::template_text) {
            CHECK(s.text.find("hi ") == std::string::npos);
        }
    }
    CHECK(found_user);
    CHECK(found_sys);
    CHECK(segs->front().kind == segment_kind::template_text);
    CHECK(segs->front().text.rfind(std::string(dsv4::bos), 0) == 0);
}

TEST_CASE("split_at_added_tokens matches added tokens only inside template segments") {
    std::vector<prompt_segment> segs = {
        {"<｜begin▁of▁sentence｜><｜User｜>", segment_kind::template_text},
        {"a<｜User｜>b", segment_kind::user_text},
        {"<｜Assistant｜></think>", segment_kind::template_text},
        {"x", segment_kind::user_text},
        {"\n\n<｜DSML｜invoke name=\"", segment_kind::template_text},
        {"get", segment_kind::user_text},
        {"\">", segment_kind::template_text},
    };
    std::vector<std::string> added = {"<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "</think>", "<think>"};
    auto pieces = split_at_added_tokens(segs, added);
    REQUIRE(pieces.size() == 6);
    CHECK(pieces[0].added_token);
    CHECK(pieces[0].text == "<｜begin▁of▁sentence｜>");
    CHECK(pieces[1].text == "<｜User｜>");
    CHECK_FALSE(pieces[2].added_token);
    CHECK(pieces[2].text == "a<｜User｜>b");
    CHECK(pieces[3].text == "<｜Assistant｜>");
    CHECK(pieces[4].text == "</think>");
    // The run spans template and user text, as a whole-string encoding would see it.
    CHECK_FALSE(pieces[5].added_token);
    CHECK(pieces[5].text == "x\n\n<｜DSML｜invoke name=\"get\">");
}

TEST_CASE("request thinking switches map onto the encoder's thinking mode") {
    const std::string msgs = R"("messages": [{"role": "user", "content": "Q"}])";
    CHECK(render(must_parse("{" + msgs + "}")) == "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜></think>");
    std::string think = "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><think>";
    CHECK(render(must_parse("{" + msgs + R"(, "reasoning_effort": "high"})")) == think);
    CHECK(render(must_parse("{" + msgs + R"(, "thinking": {"type": "enabled"}})")) == think);
    CHECK(render(must_parse("{" + msgs + R"(, "chat_template_kwargs": {"thinking": true}})")) == think);
    CHECK(render(must_parse("{" + msgs + R"(, "reasoning_effort": "max", "thinking": {"type": "disabled"}})")) ==
          "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜></think>");
    std::string max = render(must_parse("{" + msgs + R"(, "reasoning_effort": "max"})"));
    CHECK(max.rfind("<｜begin▁of▁sentence｜>Reasoning Effort: Absolute maximum", 0) == 0);
    CHECK(max.find("unchecked.\n\n<｜User｜>Q<｜Assistant｜><think>") != std::string::npos);
}

TEST_CASE("top-level tools go onto the first system message or a new empty one") {
    const std::string tools =
        R"("tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}])";
    std::string no_system = render(must_parse(R"({"messages": [{"role": "user", "content": "Q"}], )" + tools + "}"));
    CHECK(no_system.rfind("<｜begin▁of▁sentence｜>\n\n## Tools\n\n", 0) == 0);
    CHECK(no_system.find("\n\n{\"name\": \"f\", \"description\": \"d\", \"parameters\": {\"type\": \"object\"}}\n\nYou MUST") !=
          std::string::npos);
    CHECK(no_system.find("tool calls.\n<｜User｜>Q<｜Assistant｜></think>") != std::string::npos);

    std::string with_system = render(must_parse(
        R"({"messages": [{"role": "user", "content": "Q0"}, {"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], )" +
        tools + "}"));
    CHECK(with_system.rfind("<｜begin▁of▁sentence｜><｜User｜>Q0S\n\n## Tools", 0) == 0);
}

TEST_CASE("continue_final_message leaves the last assistant message open") {
    std::string p = render(must_parse(R"({"messages": [{"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Part"}], "continue_final_message": true})"));
    CHECK(p == "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜></think>Part");
    std::string closed = render(must_parse(R"({"messages": [{"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Part"}]})"));
    CHECK(closed == "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜></think>Part<｜end▁of▁sentence｜>");
    CHECK(request_error(R"({"messages": [{"role": "user", "content": "Q"}], "continue_final_message": true})")
              .find("continue_final_message") != std::string::npos);
}

TEST_CASE("content parts are joined with blank lines and non-text parts are refused") {
    CHECK(render(must_parse(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]})")) ==
          "<｜begin▁of▁sentence｜><｜User｜>a\n\nb<｜Assistant｜></think>");
    CHECK(request_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})")
              .find("image_url") != std::string::npos);
}

TEST_CASE("chat requests with a bad role, effort or tool message are refused with a named problem") {
    CHECK(request_error(R"({"messages": [{"role": "wizard", "content": "x"}]})").find("unknown role \"wizard\"") !=
          std::string::npos);
    CHECK(request_error(R"({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"})")
              .find("\"low\"") != std::string::npos);
    CHECK(request_error(R"({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": 3})")
              .find("reasoning_effort 3") != std::string::npos);
    CHECK(request_error(R"({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c", "content": "r"}]})")
              .find("messages[1]") != std::string::npos);
    CHECK(request_error(R"({"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                                         {"role": "tool", "tool_call_id": "zz", "content": "r"}]})")
              .find("\"zz\"") != std::string::npos);
    CHECK(request_error(R"({"messages": []})").find("messages") != std::string::npos);
    CHECK(request_error(R"({"messages": [{"role": "user", "content": 5}]})").find("messages[0].content") !=
          std::string::npos);
    CHECK(request_error(R"({"messages": [{"role": "user", "content": "x"}], "thinking_mode": "deep"})")
              .find("thinking_mode") != std::string::npos);
}

TEST_CASE("tool call arguments render as DSML parameters in the order given") {
    std::string p = render(must_parse(R"({"messages": [{"role": "user", "content": "Q"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function",
         "function": {"name": "f", "arguments": {"b": [1, 2.50, "é"], "a": "s", "c": null}}}]},
        {"role": "tool", "tool_call_id": "1", "content": [{"type": "text", "text": "ok"}]}]})"));
    CHECK(p.find("<｜DSML｜invoke name=\"f\">\n"
                 "<｜DSML｜parameter name=\"b\" string=\"false\">[1, 2.5, \"é\"]</｜DSML｜parameter>\n"
                 "<｜DSML｜parameter name=\"a\" string=\"true\">s</｜DSML｜parameter>\n"
                 "<｜DSML｜parameter name=\"c\" string=\"false\">null</｜DSML｜parameter>\n"
                 "</｜DSML｜invoke>") != std::string::npos);
    CHECK(p.find("<｜User｜><tool_result>ok</tool_result><｜Assistant｜></think>") != std::string::npos);
}

TEST_CASE("thinking mode with dropped thinking removes earlier developer messages") {
    std::string p = render(must_parse(R"({"thinking_mode": "thinking", "messages": [
        {"role": "developer", "content": "D1"}, {"role": "user", "content": "Q1"},
        {"role": "assistant", "reasoning_content": "R1", "content": "A1"},
        {"role": "user", "content": "Q2"}]})"));
    CHECK(p == "<｜begin▁of▁sentence｜><｜User｜>Q1<｜Assistant｜></think>A1<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜><think>");
}

TEST_CASE("chat prompt ids equal the whole-string encoding unless user text spells an added token") {
    auto tok = tokenizer::load(test::tiny_model_dir());
    REQUIRE_MESSAGE(tok.ok(), (tok.ok() ? "" : tok.err().message));
    const std::vector<std::string> added = added_token_strings(*tok);
    const auto bos_id = tok->token_id(dsv4::bos);
    const auto eos_id = tok->token_id(dsv4::eos);
    REQUIRE(bos_id.has_value());
    REQUIRE(eos_id.has_value());

    json_value cases = load_json(test::shared_dir() + "/fixtures/chat/dsv4-prompts.json");
    size_t compared = 0;
    size_t guarded = 0;
    for (const auto& c : cases.as_array()) {
        CAPTURE(c.find("name")->as_string());
        auto req = chat_request_from_json(c);
        REQUIRE(req.ok());
        auto segs = render_segments(*req);
        REQUIRE(segs.ok());
        auto ids = encode_prompt_segments(*segs, *tok, added);
        REQUIRE(ids.ok());
        REQUIRE_FALSE(ids->empty());
        CHECK(ids->front() == *bos_id);
        CHECK(std::count(ids->begin(), ids->end(), *bos_id) == 1);

        bool user_spells_added = false;
        for (const auto& s : *segs) {
            for (const auto& a : added) {
                if (s.kind == segment_kind::user_text && s.text.find(a) != std::string::npos) {
                    user_spells_added = true;
                }
            }
        }
        std::vector<int32_t> whole = tok->encode(c.find("prompt")->as_string(), true);
        if (!user_spells_added) {
            CHECK(*ids == whole);
            ++compared;
        } else {
            // The look-alikes stay text: fewer control ids than the whole-string encoding has.
            CHECK(*ids != whole);
            CHECK(std::count(ids->begin(), ids->end(), *eos_id) < std::count(whole.begin(), whole.end(), *eos_id));
            ++guarded;
        }
    }
    CHECK(compared >= 18);
    CHECK(guarded >= 1);
}

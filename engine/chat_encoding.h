// The DeepSeek-V4 chat encoding (spec §4.3–4.4): turns an OpenAI chat-completions request into
// the exact prompt string DeepSeek's own encoder renders, in C++ rather than through a Jinja
// template. Besides the whole string it gives the prompt as segments marked template or
// user_text, so that a caller can tokenize user-supplied text with added-token matching off
// (spec §4.2) and nobody can inject control tokens through a message. It does not tokenize
// (the caller owns the tokenizer) and does not parse model output (engine/chat_parser.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/json.h"
#include "kernels/result.h"

namespace cachalot {

enum class chat_role { system, developer, user, assistant, tool, latest_reminder };
enum class thinking_mode { chat, thinking };
enum class reasoning_effort { none, high, max };

std::string_view to_string(chat_role role);

struct chat_tool_call {
    std::string id;
    std::string name;
    /// As the request gave it: normally a string holding JSON, sometimes an object.
    json_value arguments;
};

struct chat_message {
    chat_role role = chat_role::user;
    /// Text parts, joined with "\n\n" when rendered (a string content is one part; null none).
    std::vector<std::string> parts;
    std::string reasoning_content;
    std::vector<chat_tool_call> tool_calls; // assistant only
    std::string tool_call_id;               // tool only
    json_value tools;                       // system/developer: an array of OpenAI tools, or null
    json_value response_format;             // system/developer: any object, or null
    bool without_eos = false;               // a last assistant message the model continues
};

struct chat_request {
    std::vector<chat_message> messages;
    thinking_mode mode = thinking_mode::chat;
    reasoning_effort effort = reasoning_effort::none;
    /// Strip earlier reasoning in thinking mode (forced off when any message carries tools).
    bool drop_thinking = true;
};

/// Builds a chat_request from an OpenAI request body, or from a fixture case of
/// fixtures/chat/dsv4-prompts.json (thinking_mode, drop_thinking, reasoning_effort, tools and
/// response_format on system/developer messages, wo_eos). Thinking turns on with
/// "thinking_mode": "thinking", "reasoning_effort": "high"|"max", "thinking": {"type": "enabled"}
/// or "chat_template_kwargs": {"thinking": true}; an explicit "thinking_mode" or a disabling
/// "thinking"/"chat_template_kwargs" wins over the effort. Top-level "tools" (and a
/// "response_format" other than {"type": "text"}) go onto the first system message, an empty one
/// created at the front when there is none. "continue_final_message": true renders a last
/// assistant message without EOS. Errors (errc::invalid_argument) name the message index and field.
[[nodiscard]] result<chat_request> chat_request_from_json(const json_value& body);

/// The exact prompt string, BOS included as text.
[[nodiscard]] result<std::string> render_prompt(const chat_request& request);

enum class segment_kind {
    template_text, // the encoder's own markup: tokenize with added-token matching on
    user_text,     // anything the request supplied: tokenize with matching off
};

struct prompt_segment {
    std::string text;
    segment_kind kind = segment_kind::template_text;
};

/// The prompt as segments whose texts concatenate to render_prompt()'s string. Adjacent segments
/// of one kind are merged and empty ones dropped.
[[nodiscard]] result<std::vector<prompt_segment>> render_segments(const chat_request& request);

/// One unit to tokenize: an added token (encode it alone, with matching on, or look its id up)
/// or a run of text to encode with matching off.
struct prompt_piece {
    std::string text;
    bool added_token = false;
};

/// Splits segments into pieces the way a Hugging Face tokenizer splits a whole string at its
/// added tokens (leftmost, longest first), except that added tokens are matched only inside
/// template segments. Text runs may span segment boundaries: encoding each segment on its own
/// would cut BPE pre-tokens at those boundaries (`name="` + `get_weather`) and give ids that
/// differ from DeepSeek's whole-string encoding even for harmless user text.
std::vector<prompt_piece> split_at_added_tokens(const std::vector<prompt_segment>& segments,
                                                const std::vector<std::string>& added_tokens);

/// The added-token strings of any tokenizer with size(), is_added(id) and token_text(id)
/// (engine/tokenizer.h's tokenizer); compute once and reuse.
template <class Tokenizer>
std::vector<std::string> added_token_strings(const Tokenizer& tok) {
    std::vector<std::string> out;
    for (int32_t id = 0; id < tok.size(); ++id) {
        if (tok.is_added(id)) {
            out.push_back(tok.token_text(id));
        }
    }
    return out;
}

/// Token ids of a rendered prompt (spec §4.2): added tokens matched only in template text,
/// everything else encoded with matching off, BOS only where the template put it. Fails with
/// errc::internal only if the tokenizer cannot find an id for one of its own added tokens.
/// Works with any tokenizer offering encode(text, match_added_tokens) and token_id(piece).
template <class Tokenizer>
result<std::vector<int32_t>> encode_prompt_segments(const std::vector<prompt_segment>& segments, const Tokenizer& tok,
                                                    const std::vector<std::string>& added_tokens) {
    std::vector<int32_t> ids;
    for (const auto& piece : split_at_added_tokens(segments, added_tokens)) {
        if (piece.added_token) {
            auto id = tok.token_id(piece.text);
            if (!id) {
                return make_error(errc::internal, "added token " + piece.text + " has no id in the tokenizer");
            }
            ids.push_back(static_cast<int32_t>(*id));
        } else {
            auto run = tok.encode(piece.text, false);
            ids.insert(ids.end(), run.begin(), run.end());
        }
    }
    return ids;
}

/// The fixed texts of the encoder, kept verbatim (tests and the parser share them).
namespace dsv4 {
inline constexpr std::string_view bos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view eos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view user = "<｜User｜>";
inline constexpr std::string_view assistant = "<｜Assistant｜>";
inline constexpr std::string_view latest_reminder = "<｜latest_reminder｜>";
inline constexpr std::string_view think_open = "<think>";
inline constexpr std::string_view think_close = "</think>";
inline constexpr std::string_view dsml = "｜DSML｜";
inline constexpr std::string_view tool_calls_open = "<｜DSML｜tool_calls>";
inline constexpr std::string_view tool_calls_close = "</｜DSML｜tool_calls>";
inline constexpr std::string_view invoke_open = "<｜DSML｜invoke name=\"";
inline constexpr std::string_view invoke_close = "</｜DSML｜invoke>";
inline constexpr std::string_view parameter_open = "<｜DSML｜parameter name=\"";
inline constexpr std::string_view parameter_close = "</｜DSML｜parameter>";
inline constexpr std::string_view tool_result_open = "<tool_result>";
inline constexpr std::string_view tool_result_close = "</tool_result>";
} // namespace dsv4

} // namespace cachalot

// Reads a DeepSeek-V4 completion (the decoded text the model wrote after the prompt) back into an
// OpenAI assistant message: reasoning before `</think>` in thinking mode, content up to EOS or
// the DSML tool-call block, and the tool calls with their arguments as a JSON string (Python's
// json.dumps form, as DeepSeek's parser writes it). parse_completion() is as strict as DeepSeek's
// own parser (EOS required, nothing after it); parse_partial_completion() takes whatever a
// generation stopped by max_tokens left. It works on text, not ids, and assigns no tool-call ids.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/chat_encoding.h"
#include "engine/json.h"
#include "kernels/result.h"

namespace cachalot {

struct parsed_tool_call {
    std::string id;        // empty: the server assigns one
    std::string name;
    std::string arguments; // a JSON object as text, e.g. {"city": "Lisbon"}
};

struct parsed_completion {
    std::string content;
    std::string reasoning_content;
    std::vector<parsed_tool_call> tool_calls;
    /// The text ended with EOS (false only from parse_partial_completion).
    bool saw_eos = false;

    /// {"role": "assistant", "content", "reasoning_content", "tool_calls": [{"id"?, "type":
    /// "function", "function": {"name", "arguments"}}]}, the fixture's form.
    json_value to_json() const;
};

/// DeepSeek's parse_message_from_completion_text: errors (errc::bad_format) on a missing EOS
/// ("Invalid format: missing EOS token"), text after EOS, unclosed reasoning, malformed DSML,
/// or control tokens inside content or reasoning.
[[nodiscard]] result<parsed_completion> parse_completion(std::string_view text, thinking_mode mode);

/// For a generation cut short (finish_reason "length"): no EOS needed, unclosed reasoning is
/// reasoning, and an unfinished tool-call block keeps only its complete invokes. Fails only on
/// malformed DSML before the cut.
[[nodiscard]] result<parsed_completion> parse_partial_completion(std::string_view text, thinking_mode mode);

} // namespace cachalot

// The completion parser: a single forward scan over the text with the markers of spec §4.4. The
// strict and partial forms share the scan and differ only in what they do on reaching the end
// early; the strict one mirrors the checks of DeepSeek's parse_message_from_completion_text,
// with its error texts, so callers can compare. Whitespace between DSML tags is tolerated.
#include "engine/chat_parser.h"

#include <optional>

namespace cachalot {

namespace {

constexpr std::string_view tool_calls_start = "\n\n<｜DSML｜tool_calls";

error bad_output(std::string message) { return make_error(errc::bad_format, std::move(message)); }

class completion_scanner {
public:
    completion_scanner(std::string_view text, bool strict) : s_(text), strict_(strict) {}

    result<parsed_completion> run(thinking_mode mode) {
        parsed_completion out;
        if (mode == thinking_mode::thinking) {
            size_t end = s_.find(dsv4::think_close);
            size_t tools = s_.find(tool_calls_start);
            if (end == std::string_view::npos || (tools != std::string_view::npos && tools < end)) {
                if (strict_) {
                    return bad_output("Invalid thinking format: the reasoning has no </think>");
                }
                // Cut off while still thinking: everything so far is reasoning.
                size_t eos = s_.find(dsv4::eos);
                out.reasoning_content = std::string(s_.substr(0, eos));
                out.saw_eos = eos != std::string_view::npos;
                return out;
            }
            out.reasoning_content = std::string(s_.substr(0, end));
            pos_ = end + dsv4::think_close.size();
        }

        size_t eos = s_.find(dsv4::eos, pos_);
        size_t tools = s_.find(tool_calls_start, pos_);
        if (tools != std::string_view::npos && (eos == std::string_view::npos || tools < eos)) {
            out.content = std::string(s_.substr(pos_, tools - pos_));
            pos_ = tools + 2; // the blank line belongs to the markup
            CACHALOT_TRY(read_tool_calls(out));
            if (done_) {
                return out; // partial: the text ended inside the block
            }
            if (at(dsv4::eos)) {
                pos_ += dsv4::eos.size();
                out.saw_eos = true;
            } else if (strict_) {
                return bad_output(pos_ < s_.size() ? "Invalid format: unexpected content after tool calls"
                                                   : "Invalid format: missing EOS token");
            }
        } else if (eos != std::string_view::npos) {
            out.content = std::string(s_.substr(pos_, eos - pos_));
            pos_ = eos + dsv4::eos.size();
            out.saw_eos = true;
        } else {
            if (strict_) {
                return bad_output("Invalid format: missing EOS token");
            }
            out.content = std::string(s_.substr(pos_));
            pos_ = s_.size();
        }

        if (strict_) {
            if (pos_ != s_.size()) {
                return bad_output("Invalid format: unexpected content after EOS");
            }
            for (std::string_view tok : {dsv4::bos, dsv4::eos, dsv4::think_open, dsv4::think_close, dsv4::dsml}) {
                if (out.content.find(tok) != std::string::npos ||
                    out.reasoning_content.find(tok) != std::string::npos) {
                    return bad_output("Invalid format: unexpected special token " + std::string(tok) +
                                      " in content or reasoning");
                }
            }
        }
        return out;
    }

private:
    std::string_view s_;
    bool strict_;
    size_t pos_ = 0;
    bool done_ = false; // partial mode hit the end of the text

    void skip_newlines() {
        while (pos_ < s_.size() && (s_[pos_] == '\n' || s_[pos_] == ' ' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
            ++pos_;
        }
    }

    bool at(std::string_view lit) const { return s_.substr(pos_, lit.size()) == lit; }

    // Reached the end of the text in the middle of a construct: an error when strict, else stop.
    status truncated() {
        if (strict_) {
            return bad_output("Invalid format: missing EOS token (the tool-call block is unfinished)");
        }
        done_ = true;
        return ok_status();
    }

    status malformed(const std::string& what) {
        return bad_output("Invalid tool call format at byte " + std::to_string(pos_) + ": " + what);
    }

    // Reads up to `end`, returning the text before it; nullopt when the text ends first.
    std::optional<std::string_view> until(std::string_view end) {
        size_t at = s_.find(end, pos_);
        if (at == std::string_view::npos) {
            return std::nullopt;
        }
        std::string_view got = s_.substr(pos_, at - pos_);
        pos_ = at + end.size();
        return got;
    }

    bool ends_here(std::string_view lit) const {
        // The rest of the text is a proper prefix of lit: cut in the middle of a tag.
        return s_.size() - pos_ < lit.size() && lit.substr(0, s_.size() - pos_) == s_.substr(pos_);
    }

    status read_tool_calls(parsed_completion& out) {
        if (!at(dsv4::tool_calls_open)) {
            if (ends_here(dsv4::tool_calls_open)) {
                return truncated();
            }
            return malformed("expected <｜DSML｜tool_calls>");
        }
        pos_ += dsv4::tool_calls_open.size();
        while (true) {
            skip_newlines();
            if (pos_ >= s_.size()) {
                return truncated();
            }
            if (at(dsv4::tool_calls_close)) {
                pos_ += dsv4::tool_calls_close.size();
                return ok_status();
            }
            if (!at(dsv4::invoke_open)) {
                if (ends_here(dsv4::invoke_open) || ends_here(dsv4::tool_calls_close)) {
                    return truncated();
                }
                return malformed("expected <｜DSML｜invoke name=\"...\"> or </｜DSML｜tool_calls>");
            }
            pos_ += dsv4::invoke_open.size();
            auto name = until("\">");
            if (!name) {
                return truncated();
            }
            parsed_tool_call call;
            call.name = std::string(*name);
            json_value args = json_value::object();
            while (true) {
                skip_newlines();
                if (pos_ >= s_.size()) {
                    return truncated();
                }
                if (at(dsv4::invoke_close)) {
                    pos_ += dsv4::invoke_close.size();
                    break;
                }
                if (!at(dsv4::parameter_open)) {
                    if (ends_here(dsv4::parameter_open) || ends_here(dsv4::invoke_close)) {
                        return truncated();
                    }
                    return malformed("expected <｜DSML｜parameter name=\"...\"> or </｜DSML｜invoke>");
                }
                pos_ += dsv4::parameter_open.size();
                auto key = until("\" string=\"");
                if (!key) {
                    return truncated();
                }
                auto flag = until("\">");
                if (!flag) {
                    return truncated();
                }
                if (*flag != "true" && *flag != "false") {
                    return malformed("string=\"" + std::string(*flag) + "\" must be true or false");
                }
                auto value = until(dsv4::parameter_close);
                if (!value) {
                    return truncated();
                }
                if (*flag == "true") {
                    args.set(std::string(*key), json_value(std::string(*value)));
                } else {
                    auto parsed = parse_json(*value);
                    // A non-JSON value marked string="false" is kept as the text the model wrote.
                    args.set(std::string(*key), parsed.ok() ? std::move(parsed).value()
                                                            : json_value(std::string(*value)));
                }
            }
            call.arguments = args.dump_python();
            out.tool_calls.push_back(std::move(call));
        }
    }
};

} // namespace

json_value parsed_completion::to_json() const {
    json_value calls = json_value::array();
    for (const auto& c : tool_calls) {
        json_value call = json_value::object();
        if (!c.id.empty()) {
            call.set("id", c.id);
        }
        call.set("type", "function");
        call.set("function", json_value::object({{"name", c.name}, {"arguments", c.arguments}}));
        calls.push_back(std::move(call));
    }
    return json_value::object({{"role", "assistant"},
                               {"content", content},
                               {"reasoning_content", reasoning_content},
                               {"tool_calls", std::move(calls)}});
}

result<parsed_completion> parse_completion(std::string_view text, thinking_mode mode) {
    return completion_scanner(text, true).run(mode);
}

result<parsed_completion> parse_partial_completion(std::string_view text, thinking_mode mode) {
    return completion_scanner(text, false).run(mode);
}

} // namespace cachalot

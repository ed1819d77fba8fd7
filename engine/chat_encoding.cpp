// The DeepSeek-V4 prompt renderer: request JSON → chat_request → segments → prompt string. The
// rules restate DeepSeek's encoding_dsv4.py (spec §4.3); the fixed texts below were recovered
// from prompts that encoder rendered (fixtures/chat/dsv4-prompts.json) and must stay verbatim.
// Whatever a request supplied (contents, reasoning, tool schemas, names, arguments, results) is
// emitted as user_text; only the encoder's own markup is template_text. Tokenization is not here.
#include "engine/chat_encoding.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

namespace cachalot {

namespace {

constexpr std::string_view tools_section_head =
    "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can invoke tools by "
    "writing a \"<｜DSML｜tool_calls>\" block like the following:\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke "
    "name=\"$TOOL_NAME\">\n<｜DSML｜parameter name=\"$PARAMETER_NAME\" "
    "string=\"true|false\">$PARAMETER_VALUE</｜DSML｜parameter>\n...\n</｜DSML｜invoke>\n<｜DSML｜invoke "
    "name=\"$TOOL_NAME2\">\n...\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>\n\nString parameters should be specified "
    "as is and set `string=\"true\"`. For all other types (numbers, booleans, arrays, objects), pass the value in "
    "JSON format and set `string=\"false\"`.\n\nIf thinking_mode is enabled (triggered by <think>), you MUST output "
    "your complete reasoning inside <think>...</think> BEFORE any tool calls or final response.\n\nOtherwise, output "
    "directly after </think> with tool calls or final response.\n\n### Available Tool Schemas\n\n";

constexpr std::string_view tools_section_tail =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n";

constexpr std::string_view response_format_head =
    "\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

constexpr std::string_view effort_max_paragraph =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\nYou MUST be very thorough in your thinking and "
    "comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic against "
    "all potential paths, edge cases, and adversarial scenarios.\nExplicitly write out your entire deliberation "
    "process, documenting every intermediate step, considered alternative, and rejected hypothesis to ensure "
    "absolutely no assumption is left unchecked.\n\n";

error bad_request(std::string message) { return make_error(errc::invalid_argument, std::move(message)); }

std::string where(size_t index) { return "messages[" + std::to_string(index) + "]"; }

// ---- request JSON → chat_request ------------------------------------------------------------

result<std::vector<std::string>> content_parts(const json_value* content, const std::string& at) {
    std::vector<std::string> parts;
    if (content == nullptr || content->is_null()) {
        return parts;
    }
    if (content->is_string()) {
        parts.push_back(content->as_string());
        return parts;
    }
    if (!content->is_array()) {
        return bad_request(at + ": content must be a string, an array of parts or null");
    }
    for (size_t j = 0; j < content->size(); ++j) {
        const json_value& part = (*content)[j];
        std::string part_at = at + "[" + std::to_string(j) + "]";
        if (part.is_string()) {
            parts.push_back(part.as_string());
            continue;
        }
        const json_value* type = part.find("type");
        if (!part.is_object() || type == nullptr || !type->is_string()) {
            return bad_request(part_at + ": a content part must be an object with a \"type\"");
        }
        if (type->as_string() != "text") {
            return bad_request(part_at + ": unsupported content part type \"" + type->as_string() +
                               "\" (DeepSeek-V4 takes text parts only)");
        }
        const json_value* text = part.find("text");
        if (text == nullptr || !text->is_string()) {
            return bad_request(part_at + ": a text part needs a string \"text\"");
        }
        parts.push_back(text->as_string());
    }
    return parts;
}

result<chat_role> parse_role(const json_value& msg, const std::string& at) {
    const json_value* role = msg.find("role");
    if (role == nullptr || !role->is_string()) {
        return bad_request(at + ": missing string \"role\"");
    }
    const std::string& r = role->as_string();
    if (r == "system") {
        return chat_role::system;
    }
    if (r == "developer") {
        return chat_role::developer;
    }
    if (r == "user") {
        return chat_role::user;
    }
    if (r == "assistant") {
        return chat_role::assistant;
    }
    if (r == "tool") {
        return chat_role::tool;
    }
    if (r == "latest_reminder") {
        return chat_role::latest_reminder;
    }
    return bad_request(at + ": unknown role \"" + r +
                       "\" (expected system, developer, user, assistant, tool or latest_reminder)");
}

status check_tools(const json_value& tools, const std::string& at) {
    if (!tools.is_array()) {
        return bad_request(at + ": tools must be an array");
    }
    for (size_t i = 0; i < tools.size(); ++i) {
        const json_value& tool = tools[i];
        const json_value* fn = tool.find("function");
        const json_value& schema = fn != nullptr ? *fn : tool;
        const json_value* name = schema.find("name");
        if (!schema.is_object() || name == nullptr || !name->is_string()) {
            return bad_request(at + "[" + std::to_string(i) +
                               "]: a tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
        }
    }
    return ok_status();
}

result<std::optional<bool>> optional_bool(const json_value& obj, std::string_view key, const std::string& at) {
    const json_value* v = obj.find(key);
    if (v == nullptr || v->is_null()) {
        return std::optional<bool>();
    }
    if (!v->is_bool()) {
        return bad_request(at + std::string(key) + " must be true or false");
    }
    return std::optional<bool>(v->as_bool());
}

result<chat_message> parse_message(const json_value& msg, size_t index) {
    std::string at = where(index);
    if (!msg.is_object()) {
        return bad_request(at + ": a message must be an object");
    }
    chat_message out;
    auto role = parse_role(msg, at);
    if (!role.ok()) {
        return std::move(role).take_error();
    }
    out.role = *role;
    auto parts = content_parts(msg.find("content"), at + ".content");
    if (!parts.ok()) {
        return std::move(parts).take_error();
    }
    out.parts = std::move(parts).value();

    for (std::string_view key : {"reasoning_content", "reasoning"}) {
        const json_value* r = msg.find(key);
        if (r == nullptr || r->is_null()) {
            continue;
        }
        if (!r->is_string()) {
            return bad_request(at + "." + std::string(key) + " must be a string");
        }
        out.reasoning_content = r->as_string();
        break;
    }

    if (const json_value* calls = msg.find("tool_calls"); calls != nullptr && !calls->is_null()) {
        if (out.role != chat_role::assistant) {
            return bad_request(at + ": only assistant messages carry tool_calls");
        }
        if (!calls->is_array()) {
            return bad_request(at + ".tool_calls must be an array");
        }
        for (size_t j = 0; j < calls->size(); ++j) {
            const json_value& call = (*calls)[j];
            std::string call_at = at + ".tool_calls[" + std::to_string(j) + "]";
            const json_value* fn = call.find("function");
            const json_value* name = fn != nullptr ? fn->find("name") : nullptr;
            if (name == nullptr || !name->is_string()) {
                return bad_request(call_at + ": needs \"function\": {\"name\": ..., \"arguments\": ...}");
            }
            chat_tool_call tc;
            tc.name = name->as_string();
            if (const json_value* id = call.find("id"); id != nullptr && id->is_string()) {
                tc.id = id->as_string();
            }
            const json_value* args = fn->find("arguments");
            if (args == nullptr || args->is_null()) {
                tc.arguments = json_value::object();
            } else if (args->is_string() || args->is_object()) {
                tc.arguments = *args;
            } else {
                return bad_request(call_at + ".function.arguments must be a JSON string or an object");
            }
            out.tool_calls.push_back(std::move(tc));
        }
    }

    if (const json_value* id = msg.find("tool_call_id"); id != nullptr && !id->is_null()) {
        if (!id->is_string()) {
            return bad_request(at + ".tool_call_id must be a string");
        }
        out.tool_call_id = id->as_string();
    }

    if (const json_value* tools = msg.find("tools"); tools != nullptr && !tools->is_null()) {
        if (out.role != chat_role::system && out.role != chat_role::developer) {
            return bad_request(at + ": tools belong on a system or developer message");
        }
        CACHALOT_TRY(check_tools(*tools, at + ".tools"));
        if (tools->size() != 0) {
            out.tools = *tools;
        }
    }
    if (const json_value* rf = msg.find("response_format"); rf != nullptr && !rf->is_null()) {
        if (out.role != chat_role::system && out.role != chat_role::developer) {
            return bad_request(at + ": response_format belongs on a system or developer message");
        }
        out.response_format = *rf;
    }
    auto wo_eos = optional_bool(msg, "wo_eos", at + ".");
    if (!wo_eos.ok()) {
        return std::move(wo_eos).take_error();
    }
    out.without_eos = wo_eos->value_or(false);
    if (out.without_eos && out.role != chat_role::assistant) {
        return bad_request(at + ": wo_eos applies to assistant messages only");
    }
    return out;
}

// Puts a request-level field on the first system message, creating an empty one at the front.
chat_message& first_system(std::vector<chat_message>& messages) {
    for (auto& m : messages) {
        if (m.role == chat_role::system) {
            return m;
        }
    }
    chat_message sys;
    sys.role = chat_role::system;
    messages.insert(messages.begin(), std::move(sys));
    return messages.front();
}

// ---- rendering ------------------------------------------------------------------------------

struct block {
    bool tool_result = false;
    std::string text;
    std::string tool_call_id;
};

// A message after tool results have been folded into user turns.
struct turn {
    const chat_message* src = nullptr;
    chat_role role = chat_role::user;
    std::vector<block> blocks; // user turns
};

std::string join_parts(const std::vector<std::string>& parts) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i != 0) {
            out += "\n\n";
        }
        out += parts[i];
    }
    return out;
}

class segment_writer {
public:
    void tmpl(std::string_view s) { add(s, segment_kind::template_text); }
    void user(std::string_view s) { add(s, segment_kind::user_text); }
    std::vector<prompt_segment> take() { return std::move(out_); }

private:
    std::vector<prompt_segment> out_;

    void add(std::string_view s, segment_kind kind) {
        if (s.empty()) {
            return;
        }
        if (!out_.empty() && out_.back().kind == kind) {
            out_.back().text += s;
        } else {
            out_.push_back({std::string(s), kind});
        }
    }
};

std::vector<turn> merge_tool_results(const chat_request& req) {
    std::vector<turn> turns;
    for (const auto& m : req.messages) {
        if (m.role == chat_role::tool || m.role == chat_role::user) {
            block b;
            b.tool_result = m.role == chat_role::tool;
            b.text = join_parts(m.parts);
            b.tool_call_id = m.tool_call_id;
            // Consecutive user and tool messages are one user turn in the prompt.
            if (!turns.empty() && turns.back().role == chat_role::user) {
                turns.back().blocks.push_back(std::move(b));
                continue;
            }
            turn t;
            t.src = &m;
            t.role = chat_role::user;
            t.blocks.push_back(std::move(b));
            turns.push_back(std::move(t));
            continue;
        }
        turn t;
        t.src = &m;
        t.role = m.role;
        turns.push_back(std::move(t));
    }
    // Results go in the order of the calls that asked for them; other blocks keep their places.
    std::unordered_map<std::string, size_t> order;
    for (auto& t : turns) {
        if (t.role == chat_role::assistant && !t.src->tool_calls.empty()) {
            order.clear();
            for (size_t i = 0; i < t.src->tool_calls.size(); ++i) {
                order[t.src->tool_calls[i].id] = i;
            }
        } else if (t.role == chat_role::user && !order.empty()) {
            std::vector<block> results;
            for (auto& b : t.blocks) {
                if (b.tool_result) {
                    results.push_back(b);
                }
            }
            if (results.size() < 2) {
                continue;
            }
            auto key = [&](const block& b) {
                auto it = order.find(b.tool_call_id);
                return it == order.end() ? size_t(0) : it->second;
            };
            std::stable_sort(results.begin(), results.end(),
                             [&](const block& a, const block& b) { return key(a) < key(b); });
            size_t next = 0;
            for (auto& b : t.blocks) {
                if (b.tool_result) {
                    b = std::move(results[next++]);
                }
            }
        }
    }
    return turns;
}

long last_user_index(const std::vector<turn>& turns) {
    for (size_t i = turns.size(); i-- > 0;) {
        if (turns[i].role == chat_role::user || turns[i].role == chat_role::developer) {
            return static_cast<long>(i);
        }
    }
    return -1;
}

void render_tools_and_format(segment_writer& w, const chat_message& m) {
    if (m.tools.is_array() && m.tools.size() != 0) {
        w.tmpl("\n\n");
        w.tmpl(tools_section_head);
        for (size_t i = 0; i < m.tools.size(); ++i) {
            if (i != 0) {
                w.tmpl("\n");
            }
            const json_value& tool = m.tools[i];
            const json_value* fn = tool.find("function");
            w.user((fn != nullptr ? *fn : tool).dump_python());
        }
        w.tmpl(tools_section_tail);
    }
    if (!m.response_format.is_null()) {
        w.tmpl(response_format_head);
        w.user(m.response_format.dump_python());
    }
}

void render_tool_calls(segment_writer& w, const std::vector<chat_tool_call>& calls) {
    w.tmpl("\n\n");
    w.tmpl(dsv4::tool_calls_open);
    w.tmpl("\n");
    for (size_t i = 0; i < calls.size(); ++i) {
        const chat_tool_call& tc = calls[i];
        if (i != 0) {
            w.tmpl("\n");
        }
        w.tmpl(dsv4::invoke_open);
        w.user(tc.name);
        w.tmpl("\">\n");
        json_value args;
        if (tc.arguments.is_object()) {
            args = tc.arguments;
        } else {
            const std::string& raw = tc.arguments.as_string();
            auto parsed = parse_json(raw);
            if (parsed.ok() && parsed->is_object()) {
                args = std::move(parsed).value();
            } else {
                // Not a JSON object: the encoder passes the raw text as one string parameter.
                args = json_value::object({{"arguments", raw}});
            }
        }
        const json_object& members = args.as_object();
        for (size_t j = 0; j < members.size(); ++j) {
            if (j != 0) {
                w.tmpl("\n");
            }
            const auto& [key, value] = members[j];
            w.tmpl(dsv4::parameter_open);
            w.user(key);
            w.tmpl(value.is_string() ? "\" string=\"true\">" : "\" string=\"false\">");
            w.user(value.is_string() ? value.as_string() : value.dump_python());
            w.tmpl(dsv4::parameter_close);
        }
        w.tmpl("\n");
        w.tmpl(dsv4::invoke_close);
    }
    w.tmpl("\n");
    w.tmpl(dsv4::tool_calls_close);
}

} // namespace

std::string_view to_string(chat_role role) {
    switch (role) {
    case chat_role::system: return "system";
    case chat_role::developer: return "developer";
    case chat_role::user: return "user";
    case chat_role::assistant: return "assistant";
    case chat_role::tool: return "tool";
    case chat_role::latest_reminder: return "latest_reminder";
    }
    return "unknown";
}

result<chat_request> chat_request_from_json(const json_value& body) {
    if (!body.is_object()) {
        return bad_request("the chat request must be a JSON object");
    }
    const json_value* messages = body.find("messages");
    if (messages == nullptr || !messages->is_array() || messages->size() == 0) {
        return bad_request("\"messages\" must be a non-empty array");
    }
    chat_request req;
    // Tool results must answer a call of the latest assistant message that made calls.
    std::vector<std::string> open_call_ids;
    bool seen_calls = false;
    for (size_t i = 0; i < messages->size(); ++i) {
        auto m = parse_message((*messages)[i], i);
        if (!m.ok()) {
            return std::move(m).take_error();
        }
        if (m->role == chat_role::assistant && !m->tool_calls.empty()) {
            seen_calls = true;
            open_call_ids.clear();
            for (const auto& tc : m->tool_calls) {
                open_call_ids.push_back(tc.id);
            }
        } else if (m->role == chat_role::tool) {
            if (!seen_calls) {
                return bad_request(where(i) + ": a tool message must follow an assistant message with tool_calls");
            }
            if (!m->tool_call_id.empty() &&
                std::find(open_call_ids.begin(), open_call_ids.end(), m->tool_call_id) == open_call_ids.end()) {
                return bad_request(where(i) + ": tool_call_id \"" + m->tool_call_id +
                                   "\" answers no call of the preceding assistant message");
            }
        }
        req.messages.push_back(std::move(m).value());
    }

    // Thinking mode: an explicit mode wins, then an explicit switch, then the effort implies it.
    std::optional<bool> thinking;
    std::optional<bool> switched;
    if (const json_value* mode = body.find("thinking_mode"); mode != nullptr && !mode->is_null()) {
        if (!mode->is_string() || (mode->as_string() != "chat" && mode->as_string() != "thinking")) {
            return bad_request("thinking_mode must be \"chat\" or \"thinking\", not " + mode->dump_compact());
        }
        thinking = mode->as_string() == "thinking";
    }
    if (const json_value* t = body.find("thinking"); t != nullptr && !t->is_null()) {
        const json_value* type = t->find("type");
        if (type == nullptr || !type->is_string() ||
            (type->as_string() != "enabled" && type->as_string() != "disabled")) {
            return bad_request("thinking must be {\"type\": \"enabled\"} or {\"type\": \"disabled\"}, not " +
                               t->dump_compact());
        }
        switched = type->as_string() == "enabled";
    }
    std::optional<bool> kw_drop;
    if (const json_value* kw = body.find("chat_template_kwargs"); kw != nullptr && !kw->is_null()) {
        if (!kw->is_object()) {
            return bad_request("chat_template_kwargs must be an object");
        }
        auto t = optional_bool(*kw, "thinking", "chat_template_kwargs.");
        if (!t.ok()) {
            return std::move(t).take_error();
        }
        if (t->has_value()) {
            switched = **t;
        }
        auto d = optional_bool(*kw, "drop_thinking", "chat_template_kwargs.");
        if (!d.ok()) {
            return std::move(d).take_error();
        }
        kw_drop = *d;
    }
    if (const json_value* e = body.find("reasoning_effort"); e != nullptr && !e->is_null()) {
        if (e->is_string() && e->as_string() == "high") {
            req.effort = reasoning_effort::high;
        } else if (e->is_string() && e->as_string() == "max") {
            req.effort = reasoning_effort::max;
        } else {
            return bad_request("reasoning_effort " + e->dump_compact() +
                               " is not supported: DeepSeek-V4 takes \"high\" or \"max\"");
        }
    }
    bool on = thinking.has_value() ? *thinking
              : switched.has_value() ? *switched
                                     : req.effort != reasoning_effort::none;
    req.mode = on ? thinking_mode::thinking : thinking_mode::chat;

    auto drop = optional_bool(body, "drop_thinking", "");
    if (!drop.ok()) {
        return std::move(drop).take_error();
    }
    req.drop_thinking = drop->value_or(kw_drop.value_or(true));

    auto cont = optional_bool(body, "continue_final_message", "");
    if (!cont.ok()) {
        return std::move(cont).take_error();
    }
    if (cont->value_or(false)) {
        if (req.messages.back().role != chat_role::assistant) {
            return bad_request("continue_final_message needs the last message to be an assistant message");
        }
        req.messages.back().without_eos = true;
    }
    for (size_t i = 0; i + 1 < req.messages.size(); ++i) {
        if (req.messages[i].without_eos) {
            return bad_request(where(i) + ": only the last message can be continued (wo_eos)");
        }
    }

    if (const json_value* tools = body.find("tools"); tools != nullptr && !tools->is_null()) {
        CACHALOT_TRY(check_tools(*tools, "tools"));
        if (tools->size() != 0) {
            first_system(req.messages).tools = *tools;
        }
    }
    if (const json_value* rf = body.find("response_format"); rf != nullptr && !rf->is_null()) {
        if (!rf->is_object()) {
            return bad_request("response_format must be an object");
        }
        // {"type": "text"} is the API's default and asks for nothing.
        const json_value* type = rf->find("type");
        if (!(type != nullptr && type->is_string() && type->as_string() == "text")) {
            first_system(req.messages).response_format = *rf;
        }
    }
    return req;
}

result<std::vector<prompt_segment>> render_segments(const chat_request& req) {
    if (req.messages.empty()) {
        return bad_request("a chat request needs at least one message");
    }
    const bool thinking = req.mode == thinking_mode::thinking;
    std::vector<turn> turns = merge_tool_results(req);

    bool drop = req.drop_thinking;
    for (const auto& m : req.messages) {
        if (m.tools.is_array() && m.tools.size() != 0) {
            drop = false; // the reasoning justified the calls; the encoder keeps it whole
        }
    }
    if (thinking && drop) {
        long last = last_user_index(turns);
        std::vector<turn> kept;
        for (size_t i = 0; i < turns.size(); ++i) {
            if (turns[i].role == chat_role::developer && static_cast<long>(i) < last) {
                continue; // earlier developer instructions go with the earlier reasoning
            }
            kept.push_back(std::move(turns[i]));
        }
        turns = std::move(kept);
    }
    const long last_user = last_user_index(turns);

    segment_writer w;
    w.tmpl(dsv4::bos);
    if (thinking && req.effort == reasoning_effort::max) {
        w.tmpl(effort_max_paragraph);
    }
    for (size_t i = 0; i < turns.size(); ++i) {
        const turn& t = turns[i];
        const chat_message& m = *t.src;
        const long idx = static_cast<long>(i);
        switch (t.role) {
        case chat_role::system:
            w.user(join_parts(m.parts));
            render_tools_and_format(w, m);
            break;
        case chat_role::developer:
            w.tmpl(dsv4::user);
            w.user(join_parts(m.parts));
            render_tools_and_format(w, m);
            break;
        case chat_role::user:
            w.tmpl(dsv4::user);
            for (size_t b = 0; b < t.blocks.size(); ++b) {
                if (b != 0) {
                    w.tmpl("\n\n");
                }
                if (t.blocks[b].tool_result) {
                    w.tmpl(dsv4::tool_result_open);
                    w.user(t.blocks[b].text);
                    w.tmpl(dsv4::tool_result_close);
                } else {
                    w.user(t.blocks[b].text);
                }
            }
            break;
        case chat_role::latest_reminder:
            w.tmpl(dsv4::latest_reminder);
            w.user(join_parts(m.parts));
            break;
        case chat_role::assistant:
            if (thinking && (!drop || idx > last_user)) {
                w.user(m.reasoning_content);
                w.tmpl(dsv4::think_close);
            }
            w.user(join_parts(m.parts));
            if (!m.tool_calls.empty()) {
                render_tool_calls(w, m.tool_calls);
            }
            if (!m.without_eos) {
                w.tmpl(dsv4::eos);
            }
            break;
        case chat_role::tool:
            CACHALOT_CHECK(false, "tool messages are merged into user turns before rendering");
        }
        // The generation prompt: after a user or developer turn that ends the conversation or
        // hands over to the assistant (or to a reminder).
        bool asks = t.role == chat_role::user || t.role == chat_role::developer;
        bool hands_over = i + 1 == turns.size() || turns[i + 1].role == chat_role::assistant ||
                          turns[i + 1].role == chat_role::latest_reminder;
        if (asks && hands_over) {
            w.tmpl(dsv4::assistant);
            w.tmpl(thinking && (!drop || idx >= last_user) ? dsv4::think_open : dsv4::think_close);
        }
    }
    return w.take();
}

result<std::string> render_prompt(const chat_request& req) {
    auto segments = render_segments(req);
    if (!segments.ok()) {
        return std::move(segments).take_error();
    }
    std::string out;
    for (const auto& s : *segments) {
        out += s.text;
    }
    return out;
}

std::vector<prompt_piece> split_at_added_tokens(const std::vector<prompt_segment>& segments,
                                                const std::vector<std::string>& added_tokens) {
    std::vector<prompt_piece> out;
    std::string run;
    auto flush = [&] {
        if (!run.empty()) {
            out.push_back({std::move(run), false});
            run.clear();
        }
    };
    for (const auto& seg : segments) {
        if (seg.kind == segment_kind::user_text) {
            run += seg.text;
            continue;
        }
        const std::string& s = seg.text;
        size_t pos = 0;
        while (pos < s.size()) {
            // Leftmost match, longest at that position.
            size_t best_at = std::string::npos;
            size_t best_len = 0;
            for (const auto& tok : added_tokens) {
                if (tok.empty()) {
                    continue;
                }
                size_t at = s.find(tok, pos);
                if (at == std::string::npos) {
                    continue;
                }
                if (at < best_at || (at == best_at && tok.size() > best_len)) {
                    best_at = at;
                    best_len = tok.size();
                }
            }
            if (best_at == std::string::npos) {
                run.append(s, pos, std::string::npos);
                break;
            }
            run.append(s, pos, best_at - pos);
            flush();
            out.push_back({s.substr(best_at, best_len), true});
            pos = best_at + best_len;
        }
    }
    flush();
    return out;
}

} // namespace cachalot

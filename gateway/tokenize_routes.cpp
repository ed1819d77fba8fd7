// /tokenize and /detokenize (see tokenize_routes.h). Request bodies are parsed into json_value
// and answers built with it; each handler turns the body into either a reply or one OpenAI error,
// so there is exactly one respond() per request. The chat path is the chat-completions one:
// chat_request_from_json, render_segments, encode_prompt_segments (user text with added-token
// matching off). Nothing here caches results or limits prompt length.
#include "gateway/tokenize_routes.h"

#include <string>
#include <utility>
#include <vector>

#include "engine/chat_encoding.h"
#include "engine/json.h"

namespace cachalot::gateway {
namespace {

struct tokenize_service {
    std::shared_ptr<const model_state> model;
    tokenizer tok;
    std::optional<int32_t> bos_id;
    std::vector<std::string> added_tokens; // added_token_strings(tok), computed once
};

http_response bad_request(const std::string& message, std::string_view param = {}) {
    return error_response(400, message, "invalid_request_error", param);
}

// Parses the body into an object and checks its "model": absent or the served id. On failure
// `error` holds the answer and the result is null.
json_value parse_body(const tokenize_service& s, const http_request& req, std::optional<http_response>& error) {
    auto parsed = parse_json(req.body);
    if (!parsed) {
        error = bad_request("the request body is not valid JSON: " + parsed.err().message);
        return {};
    }
    json_value body = std::move(*parsed);
    if (!body.is_object()) {
        error = bad_request("the request body must be a JSON object");
        return {};
    }
    if (const json_value* m = body.find("model"); m != nullptr && !m->is_null()) {
        if (!m->is_string()) {
            error = bad_request("`model` must be a string", "model");
            return {};
        }
        if (m->as_string() != s.model->info.id) {
            error = error_response(404, "The model `" + m->as_string() + "` does not exist", "invalid_request_error",
                                   "model", "model_not_found");
            return {};
        }
    }
    return body;
}

http_response tokenize(const tokenize_service& s, const http_request& req) {
    std::optional<http_response> error;
    json_value body = parse_body(s, req, error);
    if (error) {
        return std::move(*error);
    }
    const json_value* prompt = body.find("prompt");
    const json_value* messages = body.find("messages");
    if (prompt != nullptr && messages != nullptr) {
        return bad_request("give either `prompt` or `messages`, not both", "prompt");
    }
    bool add_special = true;
    if (const json_value* a = body.find("add_special_tokens"); a != nullptr && !a->is_null()) {
        if (!a->is_bool()) {
            return bad_request("`add_special_tokens` must be a boolean", "add_special_tokens");
        }
        add_special = a->as_bool();
    }

    std::vector<int32_t> ids;
    if (prompt != nullptr) {
        if (!prompt->is_string()) {
            return bad_request("`prompt` must be a string", "prompt");
        }
        if (add_special && s.bos_id) {
            ids.push_back(*s.bos_id);
        }
        auto text_ids = s.tok.encode(prompt->as_string(), true);
        ids.insert(ids.end(), text_ids.begin(), text_ids.end());
    } else if (messages != nullptr) {
        // The template decides BOS, as for a chat request; add_special_tokens does not apply.
        auto chat = chat_request_from_json(body);
        if (!chat) {
            return bad_request(chat.err().message, "messages");
        }
        auto segments = render_segments(*chat);
        if (!segments) {
            return bad_request(segments.err().message, "messages");
        }
        auto encoded = encode_prompt_segments(*segments, s.tok, s.added_tokens);
        if (!encoded) {
            return error_response(500, encoded.err().message, "internal_server_error");
        }
        ids = std::move(*encoded);
    } else {
        return bad_request("the request needs `prompt` (a string) or `messages` (a chat conversation)", "prompt");
    }

    json_array tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
        tokens.emplace_back(id);
    }
    json_object out;
    out.emplace_back("tokens", json_value(std::move(tokens)));
    out.emplace_back("count", json_value(static_cast<int64_t>(ids.size())));
    out.emplace_back("max_model_len", json_value(static_cast<int64_t>(s.model->info.max_model_len)));
    return json_response(200, json_value::from_members_unchecked(std::move(out)).dump_compact());
}

http_response detokenize(const tokenize_service& s, const http_request& req) {
    std::optional<http_response> error;
    json_value body = parse_body(s, req, error);
    if (error) {
        return std::move(*error);
    }
    const json_value* tokens = body.find("tokens");
    if (tokens == nullptr) {
        return bad_request("the request needs `tokens` (an array of token ids)", "tokens");
    }
    if (!tokens->is_array()) {
        return bad_request("`tokens` must be an array of token ids", "tokens");
    }
    std::vector<int32_t> ids;
    ids.reserve(tokens->size());
    const json_array& items = tokens->as_array();
    for (size_t i = 0; i < items.size(); ++i) {
        const json_value& t = items[i];
        const std::string at = "tokens[" + std::to_string(i) + "]";
        if (!t.is_int64()) {
            return bad_request(at + " is not an integer token id", "tokens");
        }
        const int64_t id = t.as_int64();
        if (id < 0 || id >= s.tok.size()) {
            return bad_request("token id " + std::to_string(id) + " at " + at +
                                   " is out of range (the vocabulary has " + std::to_string(s.tok.size()) + " ids)",
                               "tokens");
        }
        if (!s.tok.is_known(static_cast<int32_t>(id))) {
            return bad_request("token id " + std::to_string(id) + " at " + at + " names no token", "tokens");
        }
        ids.push_back(static_cast<int32_t>(id));
    }
    json_object out;
    out.emplace_back("prompt", json_value(s.tok.decode(ids)));
    return json_response(200, json_value::from_members_unchecked(std::move(out)).dump_compact());
}

} // namespace

void add_tokenize_routes(router& routes, std::shared_ptr<const model_state> model, tokenizer tok,
                         std::optional<int32_t> bos_id) {
    auto service = std::make_shared<tokenize_service>(
        tokenize_service{std::move(model), tok, bos_id ? bos_id : tok.bos_id(), added_token_strings(tok)});

    routes.add("POST", "/tokenize", [service](const http_request& req, std::shared_ptr<response_writer> w) {
        w->respond(tokenize(*service, req));
    });
    routes.add("POST", "/detokenize", [service](const http_request& req, std::shared_ptr<response_writer> w) {
        w->respond(detokenize(*service, req));
    });
}

} // namespace cachalot::gateway

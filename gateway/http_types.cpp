// Helpers of the plain HTTP vocabulary (see http_types.h): header lookup, JSON responses and the
// OpenAI error object. No JSON library: the few bodies built here are small and fixed in shape.
#include "gateway/http_types.h"

#include "engine/json.h"

#include <cstdio>

namespace cachalot::gateway {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] - 'A' + 'a') : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? char(b[i] - 'A' + 'a') : b[i];
        if (x != y) {
            return false;
        }
    }
    return true;
}

std::string json_string_or_null(std::string_view s) {
    return s.empty() ? std::string("null") : "\"" + json_escape(s) + "\"";
}

} // namespace

std::string_view http_request::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) {
            return v;
        }
    }
    return {};
}

std::string_view http_request::param(std::string_view name) const {
    for (const auto& [k, v] : params) {
        if (k == name) {
            return v;
        }
    }
    return {};
}

std::string json_escape(std::string_view text) {
    std::string quoted;
    append_json_string(quoted, text);
    return quoted.substr(1, quoted.size() - 2);
}

http_response json_response(int status, std::string body) {
    http_response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

std::string_view error_type_for_status(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

http_response error_response(int status, std::string_view message, std::string_view type, std::string_view param,
                             std::string_view code) {
    std::string body = "{\"error\":{\"message\":\"" + json_escape(message) + "\",\"type\":\"" + json_escape(type) +
                       "\",\"param\":" + json_string_or_null(param) + ",\"code\":" + json_string_or_null(code) + "}}";
    return json_response(status, std::move(body));
}

} // namespace cachalot::gateway

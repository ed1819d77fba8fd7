// The gateway's HTTP vocabulary in plain C++: a parsed request, a complete response, and the
// response_writer through which a handler answers, now or later, in one piece or as a chunked
// (SSE) stream. Nothing here includes Boost: handlers and routes are written against this header
// alone, and only gateway/http_server.cpp knows about Beast. It does not parse JSON bodies.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachalot::gateway {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_request {
    std::string method;  // "GET", "POST", ... as sent (upper case by HTTP convention)
    std::string target;  // path and query as sent
    std::string path;    // target without the query
    std::string query;   // after '?', empty when none
    header_list headers; // in arrival order; look up with header()
    std::string body;
    std::string remote_address;
    /// Path parameters captured by the router, e.g. {"id", "cachalot-demo"} for /v1/models/{id}.
    std::vector<std::pair<std::string, std::string>> params;

    /// The first header named `name` (case-insensitive), or an empty view.
    [[nodiscard]] std::string_view header(std::string_view name) const;
    /// A path parameter by name, or an empty view.
    [[nodiscard]] std::string_view param(std::string_view name) const;
};

struct http_response {
    int status = 200;
    std::string content_type = "application/json";
    header_list headers; // extra headers (Allow, Retry-After, ...)
    std::string body;
};

/// A JSON response with the given status.
http_response json_response(int status, std::string body);

/// An OpenAI error object: {"error": {"message", "type", "param", "code"}}. `param` and `code`
/// become JSON null when empty.
http_response error_response(int status, std::string_view message, std::string_view type = "invalid_request_error",
                             std::string_view param = {}, std::string_view code = {});

/// The reason phrase's usual OpenAI error type for an HTTP status (400 → invalid_request_error, ...).
std::string_view error_type_for_status(int status);

/// Escapes `text` for use inside a JSON string literal (without the quotes).
std::string json_escape(std::string_view text);

/// How a handler answers one request. Every method is thread-safe and never blocks: the write is
/// queued on the connection's own executor. A request gets exactly one answer: either respond()
/// once, or begin_stream() followed by any number of write_chunk() and one end_stream(); calls
/// out of that order are ignored. Dropping the last reference without answering sends a 500.
class response_writer {
public:
    virtual ~response_writer() = default;

    /// Sends a complete response.
    virtual void respond(http_response response) = 0;

    /// Sends the status line and headers of a chunked response (Transfer-Encoding: chunked);
    /// for SSE pass content_type "text/event-stream".
    virtual void begin_stream(int status, std::string content_type, header_list headers = {}) = 0;

    /// Queues one chunk; empty data is skipped (an empty chunk would end the stream). Returns false
    /// once the client is known to be gone, so a producer can stop early.
    virtual bool write_chunk(std::string data) = 0;

    /// Ends a chunked response.
    virtual void end_stream() = 0;

    /// True once the connection failed or closed; the request can be cancelled.
    [[nodiscard]] virtual bool client_gone() const = 0;
};

using request_handler = std::function<void(const http_request&, std::shared_ptr<response_writer>)>;

} // namespace cachalot::gateway

// The gateway's HTTP/1.1 server, in a plain C++ header (Beast stays inside http_server.cpp).
// It accepts connections on a fixed pool of I/O threads, parses requests (keep-alive, one request
// in flight per connection, bodies up to a limit), and hands each one to a dispatcher; the answer
// comes back through a response_writer, from any thread, in one piece or as a chunked stream.
// Requests it cannot parse get a 400, bodies over the limit a 413, both with an OpenAI error body.
// stop() is graceful: the listening socket closes, idle connections close, and responses in
// flight are finished (until a grace period runs out) before wait() returns. It does not do TLS.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/router.h"
#include "kernels/result.h"

namespace cachalot::gateway {

class gateway_metrics;

struct http_server_options {
    std::string host = "127.0.0.1";
    uint16_t port = 8000; // 0 picks a free port; port() tells which
    int n_threads = 2;    // I/O threads; handlers run on them, so long work must go elsewhere
    uint64_t max_body_bytes = uint64_t(32) << 20;
    int idle_timeout_s = 75;     // a keep-alive connection with no request is closed after this
    int io_timeout_s = 120;      // a read of one request or a write that makes no progress
    int shutdown_grace_s = 30;   // how long stop() lets in-flight responses finish
    bool handle_signals = false; // SIGINT/SIGTERM call stop(); a second signal cuts the grace short
};

class http_server {
public:
    /// Binds, listens and starts the I/O threads. Fails, naming the address, when the address
    /// cannot be resolved or bound (e.g. the port is busy). `metrics` may be null.
    [[nodiscard]] static result<std::unique_ptr<http_server>> start(const http_server_options& options,
                                                                    std::shared_ptr<const dispatcher> dispatch,
                                                                    std::shared_ptr<gateway_metrics> metrics);
    ~http_server(); // stop() and wait()
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    /// The address actually bound (the real port when options.port was 0).
    [[nodiscard]] std::string host() const;
    [[nodiscard]] uint16_t port() const;

    /// Begins a graceful shutdown. Thread-safe, idempotent, never blocks.
    void stop();

    /// Blocks until stop() was called (by anyone, or by a signal) and the connections have closed
    /// or the grace period ran out; then the I/O threads are joined.
    void wait();

    /// True once stop() was called because of SIGINT or SIGTERM.
    [[nodiscard]] bool stopped_by_signal() const;

    struct impl;

private:
    explicit http_server(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

} // namespace cachalot::gateway

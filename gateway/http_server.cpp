// The Boost.Beast side of http_server (see http_server.h); the only gateway file that includes
// Beast, so that the compile cost stays in one translation unit and never meets CAF.
//
// Each connection is a `session` on its own strand. It reads one request (header first, so an
// oversized Content-Length is refused before the body is read, and `Expect: 100-continue` is
// answered), dispatches it, and reads the next one only after the whole response went out: no
// pipelining, so responses can never overtake each other. Everything written goes through one
// queue of owned buffers (full responses as Beast messages, stream headers and chunks as framed
// strings), which keeps each buffer alive until its asynchronous write completes. Writers posted
// from other threads only enqueue on the strand. It does not do TLS, HTTP/2 or request pipelining.
#include "gateway/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "gateway/metrics.h"

namespace cachalot::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class session;

// What the sessions share with the server. Owned jointly so that a session finishing on an I/O
// thread never touches a destroyed server.
struct server_state {
    http_server_options options;
    std::shared_ptr<const dispatcher> dispatch;
    std::shared_ptr<gateway_metrics> metrics;
    std::atomic<bool> stopping{false};

    std::mutex mutex;
    std::condition_variable changed;
    std::unordered_map<session*, std::weak_ptr<session>> sessions;

    void observe(std::string_view route, int code, std::chrono::steady_clock::time_point start) {
        if (metrics) {
            metrics->observe_request(route, code,
                                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
    }
};

std::string status_line(int status, unsigned version) {
    const auto reason = http::obsolete_reason(http::int_to_status(unsigned(status)));
    return "HTTP/" + std::to_string(version / 10) + "." + std::to_string(version % 10) + " " + std::to_string(status) +
           " " + std::string(reason.data(), reason.size()) + "\r\n";
}

std::string chunk_frame(std::string_view data) {
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out;
    out.reserve(data.size() + 32);
    out += size;
    out += data;
    out += "\r\n";
    return out;
}

class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket&& socket, std::shared_ptr<server_state> state)
        : stream_(std::move(socket)), state_(std::move(state)) {
        if (state_->metrics) {
            state_->metrics->connection_opened();
        }
    }

    ~session() {
        if (state_->metrics) {
            state_->metrics->connection_closed();
        }
        std::lock_guard lock(state_->mutex);
        state_->sessions.erase(this);
        state_->changed.notify_all();
    }

    void run() {
        {
            std::lock_guard lock(state_->mutex);
            state_->sessions.emplace(this, weak_from_this());
        }
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
    }

    /// Called on the strand when the server stops: idle connections close now, busy ones after
    /// their response.
    void on_server_stop() {
        close_after_response_ = true;
        if (phase_ == phase::idle) {
            stream_.cancel();
        }
    }

    // ---- called on the strand by session_writer ----
    void send_full(http_response response) {
        auto msg = std::make_shared<http::response<http::string_body>>(http::int_to_status(unsigned(response.status)),
                                                                      version_);
        msg->set(http::field::server, "cachalot");
        msg->set(http::field::content_type, response.content_type);
        for (auto& [name, value] : response.headers) {
            msg->set(name, value);
        }
        msg->body() = std::move(response.body);
        msg->keep_alive(keep_alive());
        msg->prepare_payload();
        out_item item;
        item.full = std::move(msg);
        item.ends_response = true;
        enqueue(std::move(item));
    }

    void send_stream_header(int status, const std::string& content_type, const header_list& headers) {
        streaming_chunked_ = version_ >= 11;
        if (!streaming_chunked_) {
            close_after_response_ = true; // HTTP/1.0: the body ends when the connection does
        }
        std::string head = status_line(status, version_);
        head += "Server: cachalot\r\nContent-Type: " + content_type + "\r\nCache-Control: no-cache\r\n";
        for (const auto& [name, value] : headers) {
            head += name + ": " + value + "\r\n";
        }
        if (streaming_chunked_) {
            head += "Transfer-Encoding: chunked\r\n";
        }
        head += keep_alive() ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
        enqueue_raw(std::move(head), false);
    }

    void send_chunk(std::string data) {
        enqueue_raw(streaming_chunked_ ? chunk_frame(data) : std::move(data), false);
    }

    void send_stream_end(bool abandoned) {
        if (abandoned) {
            close_after_response_ = true; // the handler dropped the stream: do not pretend it finished
        }
        enqueue_raw(streaming_chunked_ ? std::string("0\r\n\r\n") : std::string(), true);
    }

    [[nodiscard]] bool gone() const { return gone_.load(); }
    [[nodiscard]] net::any_io_executor executor() { return stream_.get_executor(); }

private:
    enum class phase { idle, reading, handling, closing };

    struct out_item {
        std::shared_ptr<http::response<http::string_body>> full;
        std::shared_ptr<std::string> raw;
        bool ends_response = false;
    };

    bool keep_alive() const { return keep_alive_ && !close_after_response_ && !state_->stopping.load(); }

    void do_read() {
        if (state_->stopping.load() || close_after_response_) {
            do_close();
            return;
        }
        phase_ = phase::idle;
        parser_.emplace();
        parser_->body_limit(state_->options.max_body_bytes);
        parser_->header_limit(64 * 1024);
        stream_.expires_after(std::chrono::seconds(state_->options.idle_timeout_s));
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
    }

    void on_header(beast::error_code ec) {
        start_ = std::chrono::steady_clock::now();
        if (ec) {
            if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
                ec == net::error::eof || ec == net::error::connection_reset) {
                do_close();
                return;
            }
            if (ec == http::error::body_limit) {
                // Beast checks a declared Content-Length against the limit with the header.
                refuse(413, "request body exceeds the limit of " + std::to_string(state_->options.max_body_bytes) +
                                " bytes");
                return;
            }
            refuse(400, "malformed HTTP request: " + ec.message());
            return;
        }
        phase_ = phase::reading;
        auto& req = parser_->get();
        version_ = req.version();
        keep_alive_ = req.keep_alive();
        if (state_->stopping.load()) {
            close_after_response_ = true;
        }
        const auto length = parser_->content_length();
        if (length && *length > state_->options.max_body_bytes) {
            refuse(413, "request body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                            std::to_string(state_->options.max_body_bytes) + " bytes");
            return;
        }
        const auto expect = req[http::field::expect];
        if (beast::iequals(expect, "100-continue") && version_ >= 11) {
            auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
            stream_.expires_after(std::chrono::seconds(state_->options.io_timeout_s));
            net::async_write(stream_, net::buffer(*cont),
                             [self = shared_from_this(), cont](beast::error_code wec, size_t) {
                                 if (wec) {
                                     self->gone_ = true;
                                     self->do_close();
                                     return;
                                 }
                                 self->do_read_body();
                             });
            return;
        }
        do_read_body();
    }

    void do_read_body() {
        stream_.expires_after(std::chrono::seconds(state_->options.io_timeout_s));
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
    }

    void on_body(beast::error_code ec) {
        if (ec == http::error::body_limit) {
            refuse(413, "request body exceeds the limit of " + std::to_string(state_->options.max_body_bytes) +
                            " bytes");
            return;
        }
        if (ec) {
            if (ec == net::error::operation_aborted || ec == beast::error::timeout || ec == net::error::eof ||
                ec == http::error::end_of_stream || ec == net::error::connection_reset) {
                do_close();
                return;
            }
            refuse(400, "malformed HTTP request: " + ec.message());
            return;
        }
        stream_.expires_never();
        phase_ = phase::handling;

        auto msg = parser_->release();
        http_request request;
        request.method = std::string(msg.method_string());
        request.target = std::string(msg.target());
        const auto q = request.target.find('?');
        request.path = request.target.substr(0, q);
        if (q != std::string::npos) {
            request.query = request.target.substr(q + 1);
        }
        for (const auto& field : msg) {
            request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
        request.body = std::move(msg.body());
        beast::error_code addr_ec;
        const auto remote = stream_.socket().remote_endpoint(addr_ec);
        if (!addr_ec) {
            request.remote_address = remote.address().to_string();
        }
        dispatch_request(std::move(request));
    }

    void dispatch_request(http_request request);

    // Answers a request that never reached the router, then closes: after a parse error the
    // stream position is unknown, and after a 413 the unread body is still on the wire.
    void refuse(int status, const std::string& message) {
        phase_ = phase::handling;
        close_after_response_ = true;
        drain_before_close_ = true;
        state_->observe("invalid", status, start_);
        send_full(error_response(status, message, error_type_for_status(status), {},
                                 status == 413 ? "request_too_large" : "bad_request"));
    }

    void enqueue_raw(std::string bytes, bool ends_response) {
        out_item item;
        item.raw = std::make_shared<std::string>(std::move(bytes));
        item.ends_response = ends_response;
        enqueue(std::move(item));
    }

    void enqueue(out_item item) {
        if (gone_.load() || phase_ == phase::closing) {
            return;
        }
        queue_.push_back(std::move(item));
        if (!writing_) {
            do_write();
        }
    }

    void do_write() {
        writing_ = true;
        out_item& item = queue_.front();
        stream_.expires_after(std::chrono::seconds(state_->options.io_timeout_s));
        auto done = [self = shared_from_this(), full = item.full, raw = item.raw](beast::error_code ec, size_t) {
            self->on_write(ec);
        };
        if (item.full) {
            http::async_write(stream_, *item.full, std::move(done));
        } else if (item.raw->empty()) {
            net::post(stream_.get_executor(), [done = std::move(done)]() mutable { done(beast::error_code{}, 0); });
        } else {
            net::async_write(stream_, net::buffer(*item.raw), std::move(done));
        }
    }

    void on_write(beast::error_code ec) {
        writing_ = false;
        const bool ended = queue_.front().ends_response;
        queue_.pop_front();
        if (ec) {
            gone_ = true;
            queue_.clear();
            do_close();
            return;
        }
        if (ended) {
            queue_.clear(); // nothing may follow the end of a response
            stream_.expires_never();
            if (keep_alive()) {
                do_read();
            } else {
                do_close();
            }
            return;
        }
        if (!queue_.empty()) {
            do_write();
        }
    }

    void do_close() {
        if (phase_ == phase::closing) {
            return;
        }
        phase_ = phase::closing;
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (drain_before_close_ && !gone_.load()) {
            // Read and drop what the client still sends, so that closing does not reset the
            // connection before it has read our error response.
            stream_.expires_after(std::chrono::seconds(5));
            do_drain();
            return;
        }
        stream_.socket().close(ec);
    }

    void do_drain() {
        auto buf = std::make_shared<std::array<char, 16384>>();
        stream_.async_read_some(net::buffer(*buf), [self = shared_from_this(), buf](beast::error_code ec, size_t) {
            if (ec) {
                beast::error_code ignored;
                self->stream_.socket().close(ignored);
                return;
            }
            self->do_drain();
        });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<server_state> state_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::deque<out_item> queue_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    phase phase_ = phase::idle;
    unsigned version_ = 11;
    bool keep_alive_ = true;
    bool close_after_response_ = false;
    bool drain_before_close_ = false;
    bool streaming_chunked_ = true;
    bool writing_ = false;
    std::atomic<bool> gone_{false};
};

// The handler's view of one request on a session. Checks the call order on the caller's thread
// (under a lock, so that a chunk can never be queued before the stream's header) and hops onto
// the session's strand for the actual writes.
class session_writer final : public response_writer {
public:
    explicit session_writer(std::shared_ptr<session> s) : session_(std::move(s)) {}

    ~session_writer() override {
        std::lock_guard lock(mutex_);
        if (state_ == state::none) {
            post([s = session_] {
                s->send_full(error_response(500, "the handler did not answer the request", "server_error"));
            });
        } else if (state_ == state::streaming) {
            post([s = session_] { s->send_stream_end(true); });
        }
    }

    void respond(http_response response) override {
        std::lock_guard lock(mutex_);
        if (state_ != state::none) {
            return;
        }
        state_ = state::done;
        post([s = session_, r = std::move(response)]() mutable { s->send_full(std::move(r)); });
    }

    void begin_stream(int status, std::string content_type, header_list headers) override {
        std::lock_guard lock(mutex_);
        if (state_ != state::none) {
            return;
        }
        state_ = state::streaming;
        post([s = session_, status, ct = std::move(content_type), h = std::move(headers)] {
            s->send_stream_header(status, ct, h);
        });
    }

    bool write_chunk(std::string data) override {
        std::lock_guard lock(mutex_);
        if (state_ != state::streaming || session_->gone()) {
            return false;
        }
        if (!data.empty()) {
            post([s = session_, d = std::move(data)]() mutable { s->send_chunk(std::move(d)); });
        }
        return true;
    }

    void end_stream() override {
        std::lock_guard lock(mutex_);
        if (state_ != state::streaming) {
            return;
        }
        state_ = state::done;
        post([s = session_] { s->send_stream_end(false); });
    }

    bool client_gone() const override { return session_->gone(); }

private:
    enum class state { none, streaming, done };

    template <class F>
    void post(F&& f) {
        net::post(session_->executor(), std::forward<F>(f));
    }

    std::shared_ptr<session> session_;
    std::mutex mutex_;
    state state_ = state::none;
};

void session::dispatch_request(http_request request) {
    auto writer = std::make_shared<session_writer>(shared_from_this());
    try {
        state_->dispatch->dispatch(std::move(request), std::move(writer));
    } catch (const std::exception& e) {
        // The dispatcher catches handler exceptions itself; this is the last line of defence, and
        // the writer (already answered or destroyed with a 500) has done what can be done.
        std::fprintf(stderr, "gateway: dispatch failed: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "gateway: dispatch failed with a non-standard exception\n");
    }
}

} // namespace

struct http_server::impl {
    std::shared_ptr<server_state> state = std::make_shared<server_state>();
    std::unique_ptr<net::io_context> ioc;
    // Keeps the I/O threads running while no socket operation is pending, e.g. when every open
    // request waits on a handler working on another thread; released only by wait_and_join().
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::unique_ptr<net::signal_set> signals;
    std::vector<std::thread> threads;
    std::string bound_host;
    uint16_t bound_port = 0;
    std::atomic<bool> stop_requested{false};
    std::atomic<bool> by_signal{false};
    std::atomic<bool> force{false};
    std::mutex wait_mutex;
    bool joined = false;

    void do_accept() {
        acceptor->async_accept(net::make_strand(*ioc), [this](beast::error_code ec, tcp::socket socket) {
            if (ec) {
                if (ec == net::error::operation_aborted || !acceptor->is_open()) {
                    return;
                }
                std::fprintf(stderr, "gateway: accept failed: %s\n", ec.message().c_str());
            } else if (state->stopping.load()) {
                return;
            } else {
                std::make_shared<session>(std::move(socket), state)->run();
            }
            do_accept();
        });
    }

    void wait_for_signal() {
        signals->async_wait([this](beast::error_code ec, int signo) {
            if (ec) {
                return;
            }
            if (stop_requested.load()) {
                force = true; // second signal: stop waiting for in-flight responses
                std::lock_guard lock(state->mutex);
                state->changed.notify_all();
                return;
            }
            std::fprintf(stderr, "cachalot: %s received, finishing in-flight requests\n",
                         signo == SIGINT ? "SIGINT" : "SIGTERM");
            by_signal = true;
            request_stop();
            wait_for_signal();
        });
    }

    void request_stop() {
        if (stop_requested.exchange(true)) {
            return;
        }
        state->stopping = true;
        net::post(acceptor->get_executor(), [this] {
            beast::error_code ec;
            acceptor->close(ec);
        });
        std::vector<std::shared_ptr<session>> live;
        {
            std::lock_guard lock(state->mutex);
            for (auto& [ptr, weak] : state->sessions) {
                if (auto s = weak.lock()) {
                    live.push_back(std::move(s));
                }
            }
            state->changed.notify_all();
        }
        for (auto& s : live) {
            net::post(s->executor(), [s] { s->on_server_stop(); });
        }
    }

    void wait_and_join() {
        std::lock_guard wait_lock(wait_mutex);
        if (joined) {
            return;
        }
        {
            std::unique_lock lock(state->mutex);
            state->changed.wait(lock, [&] { return stop_requested.load(); });
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(state->options.shutdown_grace_s);
            const bool drained =
                state->changed.wait_until(lock, deadline, [&] { return state->sessions.empty() || force.load(); });
            if (!drained || !state->sessions.empty()) {
                std::fprintf(stderr, "gateway: %zu connection(s) still open at shutdown; closing them\n",
                             state->sessions.size());
            }
        }
        if (signals) {
            net::post(signals->get_executor(), [this] {
                beast::error_code ec;
                signals->cancel(ec);
            });
        }
        work.reset();
        ioc->stop();
        for (auto& t : threads) {
            t.join();
        }
        threads.clear();
        joined = true;
    }

    ~impl() {
        if (!threads.empty()) {
            request_stop();
            wait_and_join();
        }
        signals.reset();
        acceptor.reset();
        bool sessions_left = false;
        {
            std::lock_guard lock(state->mutex);
            sessions_left = !state->sessions.empty();
        }
        if (sessions_left) {
            // Sessions that outlived the grace period may still be referenced by a handler's
            // writer on another thread; their sockets must never outlive the io_context, so the
            // context is left to the process's exit instead of being destroyed under them.
            (void)ioc.release();
        }
    }
};

result<std::unique_ptr<http_server>> http_server::start(const http_server_options& options,
                                                        std::shared_ptr<const dispatcher> dispatch,
                                                        std::shared_ptr<gateway_metrics> metrics) {
    if (!dispatch) {
        return make_error(errc::invalid_argument, "http_server::start needs a dispatcher");
    }
    if (options.n_threads < 1) {
        return make_error(errc::invalid_argument, "the server needs at least one I/O thread");
    }
    auto p = std::make_unique<impl>();
    p->state->options = options;
    p->state->dispatch = std::move(dispatch);
    p->state->metrics = std::move(metrics);
    p->ioc = std::make_unique<net::io_context>(options.n_threads);

    const std::string address = options.host + ":" + std::to_string(options.port);
    beast::error_code ec;
    tcp::resolver resolver(*p->ioc);
    auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty()) {
        return make_error(errc::invalid_argument,
                          "cannot resolve the listen address " + address + ": " + (ec ? ec.message() : "no address"));
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    p->acceptor = std::make_unique<tcp::acceptor>(net::make_strand(*p->ioc));
    auto fail = [&](const char* what) {
        return make_error(errc::io_error, "cannot listen on " + address + ": " + what + ": " + ec.message());
    };
    if (p->acceptor->open(endpoint.protocol(), ec); ec) {
        return fail("open");
    }
    if (p->acceptor->set_option(net::socket_base::reuse_address(true), ec); ec) {
        return fail("set_option");
    }
    if (p->acceptor->bind(endpoint, ec); ec) {
        return fail("bind");
    }
    if (p->acceptor->listen(net::socket_base::max_listen_connections, ec); ec) {
        return fail("listen");
    }
    const auto local = p->acceptor->local_endpoint(ec);
    p->bound_host = local.address().to_string();
    p->bound_port = local.port();

    if (options.handle_signals) {
        p->signals = std::make_unique<net::signal_set>(*p->ioc, SIGINT, SIGTERM);
        p->wait_for_signal();
    }
    p->work.emplace(net::make_work_guard(*p->ioc));
    p->do_accept();
    for (int i = 0; i < options.n_threads; ++i) {
        p->threads.emplace_back([ioc = p->ioc.get()] {
            // A throwing handler is caught in dispatch; anything escaping here is a bug in the
            // server itself, reported rather than allowed to terminate the process silently.
            for (;;) {
                try {
                    ioc->run();
                    return;
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "gateway: I/O thread caught: %s\n", e.what());
                }
            }
        });
    }
    return std::unique_ptr<http_server>(new http_server(std::move(p)));
}

http_server::http_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

http_server::~http_server() = default;

std::string http_server::host() const { return impl_->bound_host; }
uint16_t http_server::port() const { return impl_->bound_port; }
void http_server::stop() { impl_->request_stop(); }
void http_server::wait() { impl_->wait_and_join(); }
bool http_server::stopped_by_signal() const { return impl_->by_signal.load(); }

} // namespace cachalot::gateway

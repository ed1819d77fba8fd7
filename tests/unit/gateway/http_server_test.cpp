// The Beast server for real, on 127.0.0.1 and a free port, spoken to with a raw socket client so
// that every byte on the wire is visible: keep-alive, 400/404/413, chunked streaming written from
// another thread, graceful stop with a response in flight, and a busy port.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "gateway/http_server.h"
#include "gateway/metrics.h"

using namespace cachalot::gateway;

namespace {

class raw_client {
public:
    explicit raw_client(uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~raw_client() { ::close(fd_); }
    bool connected() const { return connected_; }

    void send(const std::string& bytes) {
        size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n <= 0) {
                return;
            }
            off += size_t(n);
        }
    }

    /// Reads one whole response (Content-Length or chunked); empty on EOF/timeout before one.
    std::string read_response() {
        for (;;) {
            if (auto r = take_complete(); !r.empty()) {
                return r;
            }
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                return {};
            }
            pending_.append(buf, size_t(n));
        }
    }

    /// True when the server closed the connection (EOF) within the receive timeout.
    bool closed_by_peer() {
        char c;
        return ::recv(fd_, &c, 1, 0) == 0;
    }

private:
    std::string take_complete() {
        const size_t head_end = pending_.find("\r\n\r\n");
        if (head_end == std::string::npos) {
            return {};
        }
        const std::string head = pending_.substr(0, head_end + 4);
        size_t total = 0;
        if (head.find("Transfer-Encoding: chunked") != std::string::npos) {
            const size_t end = pending_.find("\r\n0\r\n\r\n", head_end);
            if (end == std::string::npos) {
                return {};
            }
            total = end + 7;
        } else {
            size_t length = 0;
            const size_t cl = head.find("Content-Length: ");
            if (cl != std::string::npos) {
                length = std::stoul(head.substr(cl + 16));
            }
            total = head_end + 4 + length;
            if (pending_.size() < total) {
                return {};
            }
        }
        std::string out = pending_.substr(0, total);
        pending_.erase(0, total);
        return out;
    }

    int fd_ = -1;
    bool connected_ = false;
    std::string pending_;
};

int status_of(const std::string& response) {
    return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0;
}

std::string body_of(const std::string& response) {
    const size_t p = response.find("\r\n\r\n");
    return p == std::string::npos ? std::string() : response.substr(p + 4);
}

struct test_server {
    std::shared_ptr<router> routes = std::make_shared<router>();
    std::shared_ptr<gateway_metrics> metrics = std::make_shared<gateway_metrics>();
    std::unique_ptr<http_server> server;

    void start(uint64_t max_body = 1024) {
        http_server_options o;
        o.host = "127.0.0.1";
        o.port = 0;
        o.n_threads = 2;
        o.max_body_bytes = max_body;
        o.shutdown_grace_s = 10;
        auto d = std::make_shared<const dispatcher>(routes, nullptr, metrics);
        auto s = http_server::start(o, d, metrics);
        REQUIRE_MESSAGE(s.ok(), (s.ok() ? std::string() : s.err().message));
        server = std::move(*s);
    }
};

} // namespace

TEST_CASE("http server keeps a connection alive across requests and answers 404 on it") {
    test_server t;
    t.routes->add("POST", "/echo", [](const http_request& req, std::shared_ptr<response_writer> w) {
        w->respond(json_response(200, "{\"len\":" + std::to_string(req.body.size()) + "}"));
    });
    t.start();
    REQUIRE(t.server->port() != 0);

    raw_client c(t.server->port());
    REQUIRE(c.connected());
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    auto r1 = c.read_response();
    CHECK(status_of(r1) == 200);
    CHECK(body_of(r1) == R"({"len":5})");
    CHECK(r1.find("Content-Type: application/json") != std::string::npos);

    c.send("GET /missing?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r2 = c.read_response();
    CHECK(status_of(r2) == 404);
    CHECK(body_of(r2).find("\"error\"") != std::string::npos);

    c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r3 = c.read_response();
    CHECK(status_of(r3) == 405);
    CHECK(r3.find("Allow: POST") != std::string::npos);
}

TEST_CASE("http server refuses an oversized body with 413 and garbage with 400") {
    test_server t;
    t.routes->add("POST", "/echo", [](const http_request&, std::shared_ptr<response_writer> w) {
        w->respond(json_response(200, "{}"));
    });
    t.start(/*max_body=*/16);

    {
        raw_client c(t.server->port());
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n");
        auto r = c.read_response();
        CHECK(status_of(r) == 413);
        CHECK(body_of(r).find("\"error\":{\"message\":") != std::string::npos);
        CHECK(r.find("Connection: close") != std::string::npos);
    }
    {
        // Chunked upload: the limit trips while reading, not from a declared length.
        raw_client c(t.server->port());
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'a') +
               "\r\n0\r\n\r\n");
        CHECK(status_of(c.read_response()) == 413);
    }
    {
        raw_client c(t.server->port());
        c.send("this is not http\r\n\r\n");
        auto r = c.read_response();
        CHECK(status_of(r) == 400);
        CHECK(body_of(r).find("\"error\"") != std::string::npos);
    }
    {
        // Expect: 100-continue gets its interim answer, then the real one.
        raw_client c(t.server->port());
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
        auto interim = c.read_response();
        CHECK(status_of(interim) == 100);
        c.send("{}");
        CHECK(status_of(c.read_response()) == 200);
    }
}

TEST_CASE("http server streams chunks written from another thread") {
    test_server t;
    t.routes->add("GET", "/events", [](const http_request&, std::shared_ptr<response_writer> w) {
        w->begin_stream(200, "text/event-stream");
        std::thread([w] {
            for (int i = 0; i < 3; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                w->write_chunk("data: " + std::to_string(i) + "\n\n");
            }
            w->end_stream();
        }).detach();
    });
    t.routes->add("GET", "/after", [](const http_request&, std::shared_ptr<response_writer> w) {
        w->respond(json_response(200, R"({"after":true})"));
    });
    t.start();

    raw_client c(t.server->port());
    c.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = c.read_response();
    CHECK(status_of(r) == 200);
    CHECK(r.find("Content-Type: text/event-stream") != std::string::npos);
    CHECK(r.find("Transfer-Encoding: chunked") != std::string::npos);
    CHECK(body_of(r) == "9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n");
    // The connection is reusable after the stream ended.
    c.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(body_of(c.read_response()) == R"({"after":true})");
}

TEST_CASE("http server answers 500 when a handler drops the request without answering") {
    test_server t;
    t.routes->add("GET", "/forgetful", [](const http_request&, std::shared_ptr<response_writer>) {});
    t.start();
    raw_client c(t.server->port());
    c.send("GET /forgetful HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(status_of(c.read_response()) == 500);
}

TEST_CASE("http server stop finishes the response in flight and closes idle connections") {
    test_server t;
    t.routes->add("GET", "/slow", [](const http_request&, std::shared_ptr<response_writer> w) {
        std::thread([w] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            w->respond(json_response(200, R"({"slow":true})"));
        }).detach();
    });
    t.start();
    const uint16_t port = t.server->port();

    raw_client idle(port);
    raw_client busy(port);
    busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    t.server->stop();
    auto r = busy.read_response();
    CHECK(status_of(r) == 200);
    CHECK(r.find("Connection: close") != std::string::npos);
    CHECK(idle.closed_by_peer());
    t.server->wait();

    raw_client late(port);
    CHECK_FALSE(late.connected());
}

TEST_CASE("http server start fails naming the address when the port is busy") {
    test_server first;
    first.start();
    http_server_options o;
    o.host = "127.0.0.1";
    o.port = first.server->port();
    auto d = std::make_shared<const dispatcher>(std::make_shared<router>(), nullptr, nullptr);
    auto second = http_server::start(o, d, nullptr);
    REQUIRE_FALSE(second.ok());
    CHECK(second.err().message.find("127.0.0.1:" + std::to_string(o.port)) != std::string::npos);
}

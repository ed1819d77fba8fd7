// A response_writer for handler tests: records the response, streamed chunks and the stream's
// end, instead of writing to a socket.
#pragma once

#include <string>
#include <utility>

#include "gateway/http_types.h"

namespace cachalot::test {

struct recording_writer final : gateway::response_writer {
    gateway::http_response response;
    int n_responses = 0;
    bool streamed = false;
    std::string chunks;
    bool ended = false;

    void respond(gateway::http_response r) override {
        response = std::move(r);
        ++n_responses;
    }
    void begin_stream(int status, std::string content_type, gateway::header_list) override {
        streamed = true;
        response.status = status;
        response.content_type = std::move(content_type);
    }
    bool write_chunk(std::string data) override {
        chunks += data;
        return true;
    }
    void end_stream() override { ended = true; }
    bool client_gone() const override { return false; }
};

} // namespace cachalot::test

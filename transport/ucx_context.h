// A UCX (ucp) context and one worker: the root every UCX endpoint, registered region and
// transfer hangs off. Transport knows nothing about models; it moves bytes.
#pragma once

#include <memory>
#include <string>

#include "kernels/result.h"

namespace cachalot::transport {

struct ucx_info {
    std::string version;        // UCX library version, e.g. "1.13.1"
    std::string worker_address; // hex of the worker address blob
};

class ucx_context {
public:
    ~ucx_context();
    ucx_context(const ucx_context&) = delete;
    ucx_context& operator=(const ucx_context&) = delete;

    /// Initialises ucp with tag and RMA features and creates one worker (single-threaded use).
    [[nodiscard]] static result<std::unique_ptr<ucx_context>> create();

    const ucx_info& info() const { return info_; }
    /// Opaque handles for the transfer code: ucp_context_h and ucp_worker_h.
    void* context_handle() const { return context_; }
    void* worker_handle() const { return worker_; }

private:
    ucx_context() = default;
    void* context_ = nullptr;
    void* worker_ = nullptr;
    ucx_info info_;
};

} // namespace cachalot::transport

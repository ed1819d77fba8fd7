// ucp context and worker set-up; see ucx_context.h.
#include "transport/ucx_context.h"

#include <ucp/api/ucp.h>

#include <cstdio>

namespace cachalot::transport {

ucx_context::~ucx_context() {
    if (worker_) {
        ucp_worker_destroy(static_cast<ucp_worker_h>(worker_));
    }
    if (context_) {
        ucp_cleanup(static_cast<ucp_context_h>(context_));
    }
}

result<std::unique_ptr<ucx_context>> ucx_context::create() {
    std::unique_ptr<ucx_context> self(new ucx_context());
    unsigned major = 0, minor = 0, release = 0;
    ucp_get_version(&major, &minor, &release);
    self->info_.version = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);

    ucp_config_t* config = nullptr;
    ucs_status_t st = ucp_config_read(nullptr, nullptr, &config);
    if (st != UCS_OK) {
        return make_error(errc::io_error, std::string("UCX: cannot read configuration: ") + ucs_status_string(st));
    }
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_TAG | UCP_FEATURE_RMA;
    ucp_context_h ctx = nullptr;
    st = ucp_init(&params, config, &ctx);
    ucp_config_release(config);
    if (st != UCS_OK) {
        return make_error(errc::io_error, std::string("UCX: ucp_init failed: ") + ucs_status_string(st) +
                                              " (on a single host set UCX_NET_DEVICES=lo)");
    }
    self->context_ = ctx;

    ucp_worker_params_t wparams{};
    wparams.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wparams.thread_mode = UCS_THREAD_MODE_SINGLE;
    ucp_worker_h worker = nullptr;
    st = ucp_worker_create(ctx, &wparams, &worker);
    if (st != UCS_OK) {
        return make_error(errc::io_error, std::string("UCX: cannot create a worker: ") + ucs_status_string(st));
    }
    self->worker_ = worker;

    ucp_address_t* addr = nullptr;
    size_t addr_len = 0;
    if (ucp_worker_get_address(worker, &addr, &addr_len) == UCS_OK) {
        static const char* k_hex = "0123456789abcdef";
        const auto* p = reinterpret_cast<const unsigned char*>(addr);
        self->info_.worker_address.reserve(addr_len * 2);
        for (size_t i = 0; i < addr_len; ++i) {
            self->info_.worker_address.push_back(k_hex[p[i] >> 4]);
            self->info_.worker_address.push_back(k_hex[p[i] & 15]);
        }
        ucp_worker_release_address(worker, addr);
    }
    return self;
}

} // namespace cachalot::transport

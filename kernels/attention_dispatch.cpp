// Picks the `fast` attention kernels: AVX-512, then AVX2, where the CPU and the shapes allow,
// otherwise the reference. Compiled without ISA flags.
#include <string>

#include "kernels/attention.h"
#include "kernels/attention_cpu.h"
#include "kernels/compress_pool.h"
#include "kernels/cpu_features.h"

namespace cachalot {

namespace {

const attention_kernel* pick_attention_kernel() {
#ifdef CACHALOT_HAVE_X86_KERNELS
    const cpu_features& f = host_cpu_features();
    if (f.avx512f && f.avx512dq && k_attention_kernel_avx512.supported()) {
        return &k_attention_kernel_avx512;
    }
    if (f.avx2 && f.fma && k_attention_kernel_avx2.supported()) {
        return &k_attention_kernel_avx2;
    }
#endif
    return nullptr;
}

const attention_kernel* attention_kernel_for(int64_t dim) {
    static const attention_kernel* k = pick_attention_kernel();
    return dim % 16 == 0 ? k : nullptr;
}

// The named variant, or an error saying why it cannot run here (null kernel = the reference).
result<const attention_kernel*> named_kernel(std::string_view backend, int64_t dim) {
    if (backend == "reference") {
        return static_cast<const attention_kernel*>(nullptr);
    }
    const attention_kernel* k = nullptr;
#ifdef CACHALOT_HAVE_X86_KERNELS
    if (backend == k_attention_kernel_avx512.name) {
        k = &k_attention_kernel_avx512;
    } else if (backend == k_attention_kernel_avx2.name) {
        k = &k_attention_kernel_avx2;
    }
#endif
    if (!k) {
        if (backend == "avx512" || backend == "avx2") {
            return make_error(errc::unsupported, "attention backend '" + std::string(backend) + "' is not built here");
        }
        return make_error(errc::invalid_argument, "unknown attention backend '" + std::string(backend) + "'");
    }
    if (!k->supported()) {
        return make_error(errc::unsupported, "this CPU cannot run attention backend '" + std::string(backend) + "'");
    }
    if (dim % 16 != 0) {
        return make_error(errc::unsupported,
                          "attention backend '" + std::string(backend) + "' needs head dims that are multiples of 16");
    }
    return k;
}

} // namespace

void attention_with_sink_heads_fast(const float* q, int64_t n_heads, const float* const* keys, int64_t nk, int64_t d,
                                    float scale, const float* sinks, float* scratch, float* out) {
    if (const attention_kernel* k = attention_kernel_for(d)) {
        k->sink_heads(q, n_heads, keys, nk, d, scale, sinks, scratch, out);
        return;
    }
    attention_with_sink_heads(q, n_heads, keys, nk, d, scale, sinks, scratch, out);
}

void indexer_scores_fast(const float* q, const float* weights, int64_t n_heads, int64_t head_dim, const float* keys,
                         int64_t n_keys, float* scores) {
    if (const attention_kernel* k = attention_kernel_for(head_dim)) {
        k->indexer_scores(q, weights, n_heads, head_dim, keys, n_keys, scores);
        return;
    }
    indexer_scores(q, weights, n_heads, head_dim, keys, n_keys, scores);
}

void compress_pool_fast(const float* const* a, const float* const* b, int64_t n_slots, int64_t dim, float* out) {
    if (const attention_kernel* k = attention_kernel_for(dim)) {
        k->compress_pool(a, b, n_slots, dim, out);
        return;
    }
    compress_pool(a, b, n_slots, dim, out);
}

status compress_pool_on(std::string_view backend, const float* const* a, const float* const* b, int64_t n_slots,
                        int64_t dim, float* out) {
    auto named = named_kernel(backend, dim);
    CACHALOT_TRY(named);
    if (const attention_kernel* k = *named) {
        k->compress_pool(a, b, n_slots, dim, out);
    } else {
        compress_pool(a, b, n_slots, dim, out);
    }
    return ok_status();
}

status attention_with_sink_heads_on(std::string_view backend, const float* q, int64_t n_heads, const float* const* keys,
                                    int64_t nk, int64_t d, float scale, const float* sinks, float* scratch,
                                    float* out) {
    auto named = named_kernel(backend, d);
    CACHALOT_TRY(named);
    if (const attention_kernel* k = *named) {
        k->sink_heads(q, n_heads, keys, nk, d, scale, sinks, scratch, out);
    } else {
        attention_with_sink_heads(q, n_heads, keys, nk, d, scale, sinks, scratch, out);
    }
    return ok_status();
}

status indexer_scores_on(std::string_view backend, const float* q, const float* weights, int64_t n_heads,
                         int64_t head_dim, const float* keys, int64_t n_keys, float* scores) {
    auto named = named_kernel(backend, head_dim);
    CACHALOT_TRY(named);
    if (const attention_kernel* k = *named) {
        k->indexer_scores(q, weights, n_heads, head_dim, keys, n_keys, scores);
    } else {
        indexer_scores(q, weights, n_heads, head_dim, keys, n_keys, scores);
    }
    return ok_status();
}

std::string_view attention_backend_name() {
    const attention_kernel* k = attention_kernel_for(16);
    return k ? std::string_view(k->name) : std::string_view("reference");
}

} // namespace cachalot

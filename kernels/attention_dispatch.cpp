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

// Calls the kernel's entry `fn`, or the reference when there is no kernel.
template <class Fn, class Reference, class... Args>
void run(const attention_kernel* k, Fn attention_kernel::*fn, Reference reference, Args... args) {
    if (k) {
        (k->*fn)(args...);
    } else {
        reference(args...);
    }
}

// The same on a named variant, or why it cannot run.
template <class Fn, class Reference, class... Args>
status run_on(std::string_view backend, int64_t dim, Fn attention_kernel::*fn, Reference reference, Args... args) {
    auto named = named_kernel(backend, dim);
    CACHALOT_TRY(named);
    run(*named, fn, reference, args...);
    return ok_status();
}

} // namespace

void attention_with_sink_heads_fast(const float* q, int64_t n_heads, const float* const* keys, int64_t nk, int64_t d,
                                    float scale, const float* sinks, float* scratch, float* out) {
    run(attention_kernel_for(d), &attention_kernel::sink_heads, attention_with_sink_heads, q, n_heads, keys, nk, d,
        scale, sinks, scratch, out);
}

void attention_with_sink_heads_bf16_fast(const float* q, int64_t n_heads, const uint16_t* const* keys, int64_t nk,
                                         int64_t d, float scale, const float* sinks, float* scratch, float* out) {
    run(attention_kernel_for(d), &attention_kernel::sink_heads_bf16, attention_with_sink_heads_bf16, q, n_heads, keys,
        nk, d, scale, sinks, scratch, out);
}

void indexer_scores_fast(const float* q, const float* weights, int64_t n_heads, int64_t head_dim, const float* keys,
                         int64_t n_keys, float* scores) {
    run(attention_kernel_for(head_dim), &attention_kernel::indexer_scores, indexer_scores, q, weights, n_heads,
        head_dim, keys, n_keys, scores);
}

bool indexer_scores_bf16_native() {
    static const bool native = [] {
        const attention_kernel* k = attention_kernel_for(16);
        return k && k->indexer_scores_bf16 && host_cpu_features().avx512bf16;
    }();
    return native;
}

void indexer_scores_bf16_fast(const float* q, const float* weights, int64_t n_heads, int64_t head_dim,
                              const uint16_t* key_lanes, int64_t n_keys, float* scores) {
    const attention_kernel* k = attention_kernel_for(head_dim);
    run(indexer_scores_bf16_native() ? k : nullptr, &attention_kernel::indexer_scores_bf16, indexer_scores_bf16, q,
        weights, n_heads, head_dim, key_lanes, n_keys, scores);
}

void compress_pool_fast(const float* const* a, const float* const* b, int64_t n_slots, int64_t dim, float* out) {
    run(attention_kernel_for(dim), &attention_kernel::compress_pool, compress_pool, a, b, n_slots, dim, out);
}

status compress_pool_on(std::string_view backend, const float* const* a, const float* const* b, int64_t n_slots,
                        int64_t dim, float* out) {
    return run_on(backend, dim, &attention_kernel::compress_pool, compress_pool, a, b, n_slots, dim, out);
}

status attention_with_sink_heads_on(std::string_view backend, const float* q, int64_t n_heads, const float* const* keys,
                                    int64_t nk, int64_t d, float scale, const float* sinks, float* scratch,
                                    float* out) {
    return run_on(backend, d, &attention_kernel::sink_heads, attention_with_sink_heads, q, n_heads, keys, nk, d, scale,
                  sinks, scratch, out);
}

status attention_with_sink_heads_bf16_on(std::string_view backend, const float* q, int64_t n_heads,
                                         const uint16_t* const* keys, int64_t nk, int64_t d, float scale,
                                         const float* sinks, float* scratch, float* out) {
    return run_on(backend, d, &attention_kernel::sink_heads_bf16, attention_with_sink_heads_bf16, q, n_heads, keys, nk,
                  d, scale, sinks, scratch, out);
}

status indexer_scores_on(std::string_view backend, const float* q, const float* weights, int64_t n_heads,
                         int64_t head_dim, const float* keys, int64_t n_keys, float* scores) {
    return run_on(backend, head_dim, &attention_kernel::indexer_scores, indexer_scores, q, weights, n_heads, head_dim,
                  keys, n_keys, scores);
}

status indexer_scores_bf16_on(std::string_view backend, const float* q, const float* weights, int64_t n_heads,
                              int64_t head_dim, const uint16_t* key_lanes, int64_t n_keys, float* scores) {
    auto named = named_kernel(backend, head_dim);
    CACHALOT_TRY(named);
    if (*named && (!(*named)->indexer_scores_bf16 || !host_cpu_features().avx512bf16)) {
        return make_error(errc::unsupported,
                          "attention backend '" + std::string(backend) + "' has no BF16 indexer scores on this CPU");
    }
    run(*named, &attention_kernel::indexer_scores_bf16, indexer_scores_bf16, q, weights, n_heads, head_dim, key_lanes,
        n_keys, scores);
    return ok_status();
}

std::string_view attention_backend_name() {
    const attention_kernel* k = attention_kernel_for(16);
    return k ? std::string_view(k->name) : std::string_view("reference");
}

} // namespace cachalot

// Picks the `fast` attention kernels: the AVX-512 ones where the CPU and the shapes allow,
// otherwise the reference. Compiled without ISA flags.
#include "kernels/attention.h"
#include "kernels/attention_cpu.h"
#include "kernels/cpu_features.h"

namespace cachalot {

namespace {

const attention_kernel* pick_attention_kernel() {
#ifdef CACHALOT_HAVE_X86_KERNELS
    const cpu_features& f = host_cpu_features();
    if (f.avx512f && f.avx512dq && k_attention_kernel_avx512.supported()) {
        return &k_attention_kernel_avx512;
    }
#endif
    return nullptr;
}

const attention_kernel* attention_kernel_for(int64_t dim) {
    static const attention_kernel* k = pick_attention_kernel();
    return dim % 16 == 0 ? k : nullptr;
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

std::string_view attention_backend_name() {
    const attention_kernel* k = attention_kernel_for(16);
    return k ? std::string_view(k->name) : std::string_view("reference");
}

} // namespace cachalot

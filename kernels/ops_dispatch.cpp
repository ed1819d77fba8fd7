// Picks the implementation of each op for a precision. Until the optimised CPU backends land,
// `fast` runs the reference code too (same numbers, no speed-up).
#include "kernels/ops.h"

namespace cachalot {

void matmul_reference(const weight_view& w, const float* x, int64_t n_tokens, float* y, thread_pool& pool);

void matmul(const weight_view& w, const float* x, int64_t n_tokens, float* y, precision, thread_pool& pool) {
    matmul_reference(w, x, n_tokens, y, pool);
}

std::string_view cpu_backend_name() { return "reference"; }

} // namespace cachalot

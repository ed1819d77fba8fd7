// The MoE experts' gated activation (spec §2.9): SwiGLU with V4's clamps.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace cachalot {

/// out[i] = silu(min(g[i], L)) · clamp(u[i], −L, L), silu(v) = v / (1 + e^−v); no clamps when
/// L <= 0. `exact` uses std::exp; `fast` a vectorised polynomial exp (a few ulp), which matters
/// because batched decode evaluates this for every (token, expert) pair. out may alias g or u.
void swiglu(const float* g, const float* u, int64_t n, float limit, float* out, precision p);

} // namespace cachalot

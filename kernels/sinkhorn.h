// Sinkhorn normalisation of mHC's stream-mixing matrix (spec §2.2): a row softmax plus eps, a
// column pass, then (iters - 1) x (row pass, column pass), each pass dividing by (sum + eps).
// Double precision; the matrix is hc_mult x hc_mult (4 x 4 in V4), so one call is a few hundred
// flops and runs as plain loops in both precisions.
#pragma once

#include <cstdint>

namespace cachalot {

/// In place: C [n][n] holds the logits on entry and the normalised matrix on return.
void sinkhorn(double* C, int64_t n, int64_t iters, double eps);

} // namespace cachalot

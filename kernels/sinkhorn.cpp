// Sinkhorn normalisation; see sinkhorn.h.
#include "kernels/sinkhorn.h"

#include <algorithm>
#include <cmath>

namespace cachalot {

namespace {

// Divides each of the n lines of C by (its sum + eps). Line i holds C[i * line + j * step] for
// j < n: rows are (line n, step 1), columns (line 1, step n).
void normalise_lines(double* C, int64_t n, int64_t line, int64_t step, double eps) {
    for (int64_t i = 0; i < n; ++i) {
        double* l = C + i * line;
        double s = 0.0;
        for (int64_t j = 0; j < n; ++j) {
            s += l[j * step];
        }
        for (int64_t j = 0; j < n; ++j) {
            l[j * step] /= (s + eps);
        }
    }
}

} // namespace

void sinkhorn(double* C, int64_t n, int64_t iters, double eps) {
    for (int64_t j = 0; j < n; ++j) {
        double* row = C + j * n;
        double mx = -INFINITY;
        for (int64_t k = 0; k < n; ++k) {
            mx = std::max(mx, row[k]);
        }
        double s = 0.0;
        for (int64_t k = 0; k < n; ++k) {
            row[k] = std::exp(row[k] - mx);
            s += row[k];
        }
        for (int64_t k = 0; k < n; ++k) {
            row[k] = row[k] / s + eps;
        }
    }
    normalise_lines(C, n, 1, n, eps); // columns
    for (int64_t it = 1; it < iters; ++it) {
        normalise_lines(C, n, n, 1, eps); // rows
        normalise_lines(C, n, 1, n, eps); // columns
    }
}

} // namespace cachalot

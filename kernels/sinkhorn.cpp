// Sinkhorn normalisation; see sinkhorn.h.
#include "kernels/sinkhorn.h"

#include <algorithm>
#include <cmath>

namespace cachalot {

namespace {

void col_pass(double* C, int64_t n, double eps) {
    for (int64_t k = 0; k < n; ++k) {
        double s = 0.0;
        for (int64_t j = 0; j < n; ++j) {
            s += C[j * n + k];
        }
        for (int64_t j = 0; j < n; ++j) {
            C[j * n + k] /= (s + eps);
        }
    }
}

void row_pass(double* C, int64_t n, double eps) {
    for (int64_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (int64_t k = 0; k < n; ++k) {
            s += C[j * n + k];
        }
        for (int64_t k = 0; k < n; ++k) {
            C[j * n + k] /= (s + eps);
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
    col_pass(C, n, eps);
    for (int64_t it = 1; it < iters; ++it) {
        row_pass(C, n, eps);
        col_pass(C, n, eps);
    }
}

} // namespace cachalot

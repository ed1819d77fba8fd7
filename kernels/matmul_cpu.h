// The contract between ops_dispatch.cpp and the ISA-specific matmul files (matmul_avx512.cpp,
// matmul_avx2.cpp). Those files are compiled with -mavx512* / -mavx2 flags, so they must not
// emit any function that another file could link against by accident: they see only the plain
// structs here (no inline functions from other headers, no std templates) and export one table
// each. Threading, buffers and the choice of backend live in ops_dispatch.cpp.
//
// T = tokens, R = rows (out features), C = cols (in features)
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"

namespace cachalot {

/// One matmul call as plain data: the weight in its stored form, the activations and the output.
struct matmul_problem {
    dtype type = dtype::f32;
    int64_t rows = 0;
    int64_t cols = 0;
    const uint8_t* data = nullptr; // [R] rows of row_bytes each
    int64_t row_bytes = 0;
    const uint8_t* scales = nullptr; // e8m0, may be null (scale 1)
    int64_t scale_block_rows = 1;
    int64_t first_row = 0;          // row of the full tensor that row 0 is (row slices start mid-block)
    const uint8_t* lanes = nullptr; // the weight in the kernel's row-lanes layout, or null
    int64_t scale_block_cols = 1;
    int64_t scale_row_stride = 0;
    const float* x = nullptr; // [T, C] f32
    int64_t n_tokens = 0;
    void* x_packed = nullptr; // [T, x_packed_stride bytes], written by pack_x, 64-byte aligned
    int64_t x_packed_stride = 0;
    float* y = nullptr; // [T, R]
};

/// A CPU implementation of the `fast` matmul. compute_rows writes y[t, r] for r in [r0, r1) and
/// every t; it is called concurrently on disjoint row ranges, and its result for an element
/// depends neither on r0/r1 nor on the thread (fixed reduction order).
struct matmul_kernel {
    const char* name;
    bool (*supported)(); // the CPU can run it
    // Bytes per token of packed x, a multiple of 64 (with `lanes`, for whole tiles of 16 tokens:
    // allocate it for the token count rounded up to 16).
    int64_t (*packed_x_bytes)(dtype type, int64_t cols, bool lanes);
    void (*pack_x)(const matmul_problem& p, int64_t t0, int64_t t1); // fills tokens [t0, t1)
    void (*compute_rows)(const matmul_problem& p, int64_t r0, int64_t r1);
    // A row-lanes layout of its own, or null: lanes_bytes is the size of p's weight repacked (0 when
    // the kernel does not cover p's type or shape), pack_lanes writes it (64-byte aligned).
    int64_t (*lanes_bytes)(const matmul_problem& p);
    void (*pack_lanes)(const matmul_problem& p, uint8_t* out);
};

extern const matmul_kernel k_matmul_kernel_avx512;
extern const matmul_kernel k_matmul_kernel_avx2;

} // namespace cachalot

// weight_view: a linear layer's weight [rows = out, cols = in] in its stored form, with the
// block scales that go with it. Views never own memory: the engine maps the checkpoint and
// points views into it, so no F32 copy of the model ever exists.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

namespace cachalot {

struct weight_view {
    dtype type = dtype::f32; // f32, bf16, f8_e4m3 (block scales) or fp4_e2m1 (row-wise scales)
    int64_t rows = 0;        // out features
    int64_t cols = 0;        // in features (logical; fp4 stores cols/2 bytes a row)
    const void* data = nullptr;
    const uint8_t* scales = nullptr; // e8m0; null for f32/bf16
    int32_t scale_block_rows = 1;    // f8: 128, fp4: 1
    int32_t scale_block_cols = 1;    // f8: 128, fp4: 32
    int64_t scale_row_stride = 0;    // scale elements per scale row
    int64_t first_row = 0;           // row of the full tensor that row 0 of this view is (slices)
    // The same weight repacked for the `fast` CPU kernel (pack_for_fast in ops.h), or null. The
    // "row lanes" layout: blocks of 16 rows, each a run of steps of 4 columns (two column pairs),
    // a step holding the 16 rows' pairs side by side; 16 · round_up(cols, 4) elements a block.
    const void* lanes = nullptr;

    /// Bytes of one stored row of data.
    int64_t row_bytes() const { return type == dtype::fp4_e2m1 ? cols / 2 : cols * int64_t(dtype_size(type)); }
    const uint8_t* row_data(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
    const uint8_t* row_scales(int64_t r) const {
        return scales ? scales + ((first_row + r) / scale_block_rows) * scale_row_stride : nullptr;
    }
    /// Bytes of one 16-row block of `lanes`.
    int64_t lanes_block_bytes() const { return 16 * ((cols + 3) / 4 * 4) * int64_t(dtype_size(type)); }
    /// A view of rows [r0, r0 + n). Scales stay those of the full tensor: a slice may start
    /// inside a scale block (row_scales() accounts for first_row). The repacked copy goes with a
    /// slice of whole 16-row blocks; any other slice reads the stored form.
    weight_view slice_rows(int64_t r0, int64_t n) const {
        weight_view v = *this;
        v.data = row_data(r0);
        v.first_row = first_row + r0;
        v.rows = n;
        v.lanes = lanes && r0 % 16 == 0 && n % 16 == 0
                      ? static_cast<const uint8_t*>(lanes) + (r0 / 16) * lanes_block_bytes()
                      : nullptr;
        return v;
    }
};

/// Dequantises row r exactly into out[0..cols).
void dequant_row(const weight_view& w, int64_t r, float* out);

} // namespace cachalot

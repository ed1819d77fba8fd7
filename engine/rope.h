// Rotary position tables of a V4 layer (spec §2.1): plain RoPE with rope_theta on r = 0 layers,
// YaRN-ramped frequencies with compress_rope_theta on compressed layers, no mscale. RoPE turns
// adjacent pairs of the last dr channels; the first head_dim - dr channels pass through.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model_config.h"

namespace cachalot {

class rope_table {
public:
    rope_table() = default;
    /// The table for layers with compress ratio `ratio` (0 = sliding window only).
    rope_table(const model_config& cfg, int64_t ratio);

    int64_t rope_dims() const { return int64_t(omega_.size()) * 2; }
    const std::vector<double>& frequencies() const { return omega_; }

    /// Rotates v[0..rope_dims) (the rope slice, pointed at directly) to position pos; inverse
    /// rotates by -pos·ω. For one vector; many at one position share angles() and rotate().
    void apply(float* v, int64_t pos, bool inverse = false) const;

    /// cos and sin of every frequency at pos, interleaved: cs[2i] = cos, cs[2i+1] = sin
    /// (rope_dims() doubles). Computed once, then rotate() applies them to every head.
    void angles(int64_t pos, double* cs) const;
    /// apply() with angles from angles(pos); bit-identical to apply(v, pos, inverse) (cos is
    /// even and sin odd in the C library, exactly).
    void rotate(float* v, const double* cs, bool inverse = false) const;

private:
    std::vector<double> omega_;
};

} // namespace cachalot

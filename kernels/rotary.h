// Rotary position embedding on adjacent channel pairs (spec §2.1): the frequencies are the
// model's business (engine/rope.h builds RoPE and YaRN tables); these rotate. Angles are in double
// so that positions up to a million keep their precision.
#pragma once

#include <cstdint>

namespace cachalot {

/// cs[2i] = cos(pos·omega[i]), cs[2i+1] = sin(pos·omega[i]) for i < n_pairs.
void rotary_angles(const double* omega, int64_t n_pairs, int64_t pos, double* cs);

/// Rotates the pairs (v[2i], v[2i+1]) by the angles in cs; inverse rotates backwards.
void rotary_rotate(float* v, const double* cs, int64_t n_pairs, bool inverse);

} // namespace cachalot

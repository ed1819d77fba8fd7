// Horizontal reductions shared by the AVX-512 kernel files (matmul_avx512.cpp,
// attention_avx512.cpp); needs AVX512F and AVX512DQ. Everything is in an anonymous namespace, so
// each file that includes this compiles its own copy with its own ISA flags and the linker never
// picks one file's copy for another (the rule of matmul_cpu.h). Include it from ISA files only.
#pragma once

#include <immintrin.h>

namespace cachalot {
namespace {

// Extracts rather than casts, and masked forms with an explicit source: GCC 12's casts and
// unmasked shuffles read an "undefined" register and trip -Wuninitialized in its own headers.

/// Σ a over 16 lanes by one fixed tree: (i, i+8), then (i, i+4), (i, i+2), (i, i+1).
inline float reduce16(__m512 a) {
    __m256 s = _mm256_add_ps(_mm512_extractf32x8_ps(a, 0), _mm512_extractf32x8_ps(a, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

/// Four reduce16 at once, each by exactly its additions (the same operands in the same order,
/// arranged across lanes), so the bits are those of four reduce16 calls at about half the
/// instructions: [r(a), r(b), r(c), r(d)] in lanes 0-3.
inline __m512 reduce16x4(__m512 a, __m512 b, __m512 c, __m512 d) {
    constexpr __mmask16 all = 0xffff;
    // a_i + a_(i+8): the two 256-bit halves.
    const __m512 ab =
        _mm512_add_ps(_mm512_mask_shuffle_f32x4(a, all, a, b, 0x44), _mm512_mask_shuffle_f32x4(a, all, a, b, 0xee));
    const __m512 cd =
        _mm512_add_ps(_mm512_mask_shuffle_f32x4(c, all, c, d, 0x44), _mm512_mask_shuffle_f32x4(c, all, c, d, 0xee));
    // s_i + s_(i+4): the two 128-bit halves of each; now one 128-bit lane per accumulator.
    __m512 q = _mm512_add_ps(_mm512_mask_shuffle_f32x4(ab, all, ab, cd, 0x88),
                             _mm512_mask_shuffle_f32x4(ab, all, ab, cd, 0xdd));
    q = _mm512_add_ps(q, _mm512_mask_permute_ps(q, all, q, 0x4e)); // q0 + q2, q1 + q3 (movehl)
    q = _mm512_add_ps(q, _mm512_mask_permute_ps(q, all, q, 0xb1)); // + the neighbour (movehdup)
    return _mm512_mask_compress_ps(q, 0x1111, q);
}

/// max over 16 lanes.
inline float reduce_max16(__m512 a) {
    __m256 s = _mm256_max_ps(_mm512_extractf32x8_ps(a, 0), _mm512_extractf32x8_ps(a, 1));
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

} // namespace
} // namespace cachalot

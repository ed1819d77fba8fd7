// Element types of checkpoint tensors and their exact conversions to float.
// Conversions here are exact (every FP8/FP4/BF16/E8M0 code is representable in F32); rounding
// conversions (float -> bf16) are round-to-nearest-even. Nothing here knows about models.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace cachalot {

enum class dtype : uint8_t {
    f32,
    bf16,
    f16,
    f8_e4m3,  // e4m3fn: no infinity, NaN at 0x7f/0xff
    f8_e8m0,  // ue8m0: 2^(b-127), NaN at 0xff
    fp4_e2m1, // two codes per byte, even element in the low nibble (stored as I8/U8)
    i8,
    u8,
    i32,
    i64,
};

/// Safetensors spelling ("BF16", "F8_E4M3", ...); I8/U8 stay i8/u8 (the loader decides when a
/// byte tensor is packed FP4).
bool parse_dtype(std::string_view s, dtype& out);
std::string_view dtype_name(dtype t);
/// Bytes per element; 0 for fp4 (two elements per byte).
size_t dtype_size(dtype t);

inline float bits_to_f32(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}
inline uint32_t f32_to_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}

inline float bf16_to_f32(uint16_t v) {
    return bits_to_f32(uint32_t(v) << 16);
}

inline uint16_t f32_to_bf16(float f) {
    uint32_t b = f32_to_bits(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return uint16_t((b >> 16) | 0x40); // quiet NaN
    }
    b += 0x7fffu + ((b >> 16) & 1u);
    return uint16_t(b >> 16);
}

inline float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        float v = float(mant) * (1.0f / 16777216.0f); // 2^-24
        return (h & 0x8000u) ? -v : v;
    }
    if (exp == 31) {
        return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/// All 256 e4m3fn codes as floats (0x7f and 0xff are NaN).
const std::array<float, 256>& e4m3_table();
inline float e4m3_to_f32(uint8_t v) {
    return e4m3_table()[v];
}

inline float e8m0_to_f32(uint8_t b) {
    if (b == 0xff) {
        return bits_to_f32(0x7fc00000u);
    }
    if (b == 0) {
        return bits_to_f32(0x00400000u); // 2^-127, a subnormal
    }
    return bits_to_f32(uint32_t(b) << 23);
}

inline constexpr std::array<float, 16> k_fp4_values = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                                       -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/// Rounds to the nearest e4m3fn code (ties to even), saturating at +-448.
uint8_t f32_to_e4m3(float f);

} // namespace cachalot

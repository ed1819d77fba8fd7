// Exact tables and rounding conversions for the checkpoint element types.
#include "kernels/dtype.h"

#include <cmath>

namespace cachalot {

bool parse_dtype(std::string_view s, dtype& out) {
    struct entry {
        std::string_view name;
        dtype type;
    };
    static constexpr entry k_names[] = {
        {"F32", dtype::f32},         {"BF16", dtype::bf16},       {"F16", dtype::f16},
        {"F8_E4M3", dtype::f8_e4m3}, {"F8_E8M0", dtype::f8_e8m0}, {"I8", dtype::i8},
        {"U8", dtype::u8},           {"I32", dtype::i32},         {"I64", dtype::i64},
    };
    for (const auto& e : k_names) {
        if (e.name == s) {
            out = e.type;
            return true;
        }
    }
    return false;
}

std::string_view dtype_name(dtype t) {
    switch (t) {
    case dtype::f32:
        return "F32";
    case dtype::bf16:
        return "BF16";
    case dtype::f16:
        return "F16";
    case dtype::f8_e4m3:
        return "F8_E4M3";
    case dtype::f8_e8m0:
        return "F8_E8M0";
    case dtype::fp4_e2m1:
        return "FP4 (packed I8)";
    case dtype::i8:
        return "I8";
    case dtype::u8:
        return "U8";
    case dtype::i32:
        return "I32";
    case dtype::i64:
        return "I64";
    }
    return "?";
}

size_t dtype_size(dtype t) {
    switch (t) {
    case dtype::f32:
    case dtype::i32:
        return 4;
    case dtype::bf16:
    case dtype::f16:
        return 2;
    case dtype::f8_e4m3:
    case dtype::f8_e8m0:
    case dtype::i8:
    case dtype::u8:
        return 1;
    case dtype::i64:
        return 8;
    case dtype::fp4_e2m1:
        return 0;
    }
    return 0;
}

static std::array<float, 256> build_e4m3_table() {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) {
        int s = v >> 7;
        int e = (v >> 3) & 0xf;
        int m = v & 7;
        float x;
        if ((v & 0x7f) == 0x7f) {
            x = std::nanf("");
        } else if (e == 0) {
            x = std::ldexp(float(m) / 8.0f, -6);
        } else {
            x = std::ldexp(1.0f + float(m) / 8.0f, e - 7);
        }
        t[size_t(v)] = s ? -x : x;
    }
    return t;
}

const std::array<float, 256>& e4m3_table() {
    static const std::array<float, 256> table = build_e4m3_table();
    return table;
}

uint8_t f32_to_e4m3(float f) {
    if (std::isnan(f)) {
        return 0x7f;
    }
    uint8_t sign = std::signbit(f) ? 0x80 : 0;
    float a = std::fabs(f);
    if (a >= 448.0f) {
        return sign | 0x7e;
    }
    // Search the 127 non-negative finite codes; they are monotone in value.
    const auto& t = e4m3_table();
    int lo = 0, hi = 0x7e;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (t[size_t(mid)] <= a) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    int best = lo;
    if (lo < 0x7e) {
        float d0 = a - t[size_t(lo)], d1 = t[size_t(lo + 1)] - a;
        if (d1 < d0 || (d1 == d0 && (lo & 1))) {
            best = lo + 1;
        }
    }
    return uint8_t(sign | best);
}

} // namespace cachalot

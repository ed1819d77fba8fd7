// Host CPU feature detection; see cpu_features.h. Compiled without ISA flags so it runs anywhere.
#include "kernels/cpu_features.h"

namespace cachalot {

namespace {
cpu_features detect() {
    cpu_features f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.f16c = true; // every AVX2 CPU has F16C; libgcc has no query for it before GCC 13
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    f.avx512vnni = __builtin_cpu_supports("avx512vnni");
    f.avx512vbmi = __builtin_cpu_supports("avx512vbmi");
#endif
    return f;
}
} // namespace

const cpu_features& host_cpu_features() {
    static const cpu_features features = detect();
    return features;
}

} // namespace cachalot

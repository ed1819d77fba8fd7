// What the host CPU can run, read once with cpuid (through the compiler's __builtin_cpu_supports,
// which also checks that the OS saves the wider register state). This file only reports; the
// choice of backend is made in ops_dispatch.cpp.
#pragma once

namespace cachalot {

struct cpu_features {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512dq = false;
    bool avx512bf16 = false;
    bool avx512vnni = false;
    bool avx512vbmi = false; // vpermi2b: the FP8 decode uses 128-entry byte tables
};

/// The features of this machine; thread-safe, computed on first use.
const cpu_features& host_cpu_features();

} // namespace cachalot

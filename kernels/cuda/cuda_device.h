// CUDA device discovery and the first device kernel (exact FP8 dequantisation). The binary is
// built with these whenever nvcc is present and still runs where no GPU or driver exists:
// every entry point reports "no device" instead of failing.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/result.h"

namespace cachalot::cuda {

/// Number of usable CUDA devices; 0 without a driver or GPU (cudaGetDeviceCount error 35).
int device_count();
/// "NVIDIA H200 (sm_90, 139 GiB)" or a reason why there is none.
std::string describe_device(int index);

/// out[r][c] = e4m3(q[r][c]) * e8m0(scale[r/128][c/128]) on device 0, host buffers in and out.
[[nodiscard]] status dequant_fp8_on_device(const uint8_t* q, const uint8_t* scales, int64_t rows, int64_t cols,
                                           float* out);

} // namespace cachalot::cuda

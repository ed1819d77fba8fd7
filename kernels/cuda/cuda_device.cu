// See cuda_device.h.
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_device.h"

namespace cachalot::cuda {

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no driver" error
        return 0;
    }
    return n;
}

std::string describe_device(int index) {
    cudaDeviceProp prop{};
    cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return std::string("no CUDA device: ") + cudaGetErrorString(err);
    }
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
           std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
}

__device__ float e4m3_value(uint8_t v) {
    int s = v >> 7, e = (v >> 3) & 0xf, m = v & 7;
    float x;
    if ((v & 0x7f) == 0x7f) {
        x = __int_as_float(0x7fc00000);
    } else if (e == 0) {
        x = ldexpf(float(m) / 8.0f, -6);
    } else {
        x = ldexpf(1.0f + float(m) / 8.0f, e - 7);
    }
    return s ? -x : x;
}

__global__ void dequant_fp8_kernel(const uint8_t* q, const uint8_t* scales, int64_t rows, int64_t cols,
                                   int64_t scale_cols, float* out) {
    int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows * cols) {
        return;
    }
    int64_t r = i / cols, c = i % cols;
    uint8_t sb = scales[(r / 128) * scale_cols + c / 128];
    float s = sb == 0xff ? __int_as_float(0x7fc00000) : ldexpf(1.0f, int(sb) - 127);
    out[i] = e4m3_value(q[i]) * s;
}

status dequant_fp8_on_device(const uint8_t* q, const uint8_t* scales, int64_t rows, int64_t cols, float* out) {
    if (device_count() == 0) {
        return make_error(errc::unsupported, "no CUDA device");
    }
    int64_t scale_cols = (cols + 127) / 128, scale_rows = (rows + 127) / 128;
    uint8_t *dq = nullptr, *ds = nullptr;
    float* dout = nullptr;
    auto fail = [&](cudaError_t e) {
        cudaFree(dq);
        cudaFree(ds);
        cudaFree(dout);
        return make_error(errc::internal, std::string("CUDA: ") + cudaGetErrorString(e));
    };
    cudaError_t e;
    if ((e = cudaMalloc(&dq, size_t(rows * cols))) != cudaSuccess) return fail(e);
    if ((e = cudaMalloc(&ds, size_t(scale_rows * scale_cols))) != cudaSuccess) return fail(e);
    if ((e = cudaMalloc(&dout, size_t(rows * cols) * sizeof(float))) != cudaSuccess) return fail(e);
    cudaMemcpy(dq, q, size_t(rows * cols), cudaMemcpyHostToDevice);
    cudaMemcpy(ds, scales, size_t(scale_rows * scale_cols), cudaMemcpyHostToDevice);
    int64_t n = rows * cols;
    dequant_fp8_kernel<<<unsigned((n + 255) / 256), 256>>>(dq, ds, rows, cols, scale_cols, dout);
    if ((e = cudaGetLastError()) != cudaSuccess) return fail(e);
    if ((e = cudaMemcpy(out, dout, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost)) != cudaSuccess) return fail(e);
    cudaFree(dq);
    cudaFree(ds);
    cudaFree(dout);
    return ok_status();
}

} // namespace cachalot::cuda

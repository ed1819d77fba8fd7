// GPU check (label gpu): the CUDA FP8 dequantisation kernel gives exactly the CPU's values on
// a block-scaled matrix with partial edge blocks. Where no CUDA device is present it reports
// why and exits 77, which ctest counts as skipped.
#include <cstdio>
#include <vector>

#include "kernels/cuda/cuda_device.h"
#include "kernels/weight.h"

int main() {
    using namespace cachalot;
    if (cuda::device_count() == 0) {
        std::printf("skipped: %s\n", cuda::describe_device(0).c_str());
        return 77;
    }
    std::printf("device: %s\n", cuda::describe_device(0).c_str());
    const int64_t rows = 200, cols = 300;
    std::vector<uint8_t> q(size_t(rows * cols)), scales(2 * 3);
    for (size_t i = 0; i < q.size(); ++i) {
        q[i] = uint8_t((i * 37 + 11) % 256);
        if ((q[i] & 0x7f) == 0x7f) {
            q[i] = 0x10;
        }
    }
    for (size_t i = 0; i < scales.size(); ++i) {
        scales[i] = uint8_t(120 + i);
    }
    std::vector<float> gpu(static_cast<size_t>(rows * cols)), cpu(static_cast<size_t>(cols));
    if (auto s = cuda::dequant_fp8_on_device(q.data(), scales.data(), rows, cols, gpu.data()); !s) {
        std::printf("FAIL: %s\n", s.err().message.c_str());
        return 1;
    }
    weight_view w;
    w.type = dtype::f8_e4m3;
    w.rows = rows;
    w.cols = cols;
    w.data = q.data();
    w.scales = scales.data();
    w.scale_block_rows = 128;
    w.scale_block_cols = 128;
    w.scale_row_stride = 3;
    int64_t mismatches = 0;
    for (int64_t r = 0; r < rows; ++r) {
        dequant_row(w, r, cpu.data());
        for (int64_t c = 0; c < cols; ++c) {
            mismatches += gpu[size_t(r * cols + c)] != cpu[size_t(c)];
        }
    }
    std::printf("%lld mismatches of %lld\n", (long long)mismatches, (long long)(rows * cols));
    return mismatches == 0 ? 0 : 1;
}

// Loading and comparing logit files in the shared golden format (raw little-endian float32,
// row-major [rows][vocab]). One compare helper for every test: it reports the max abs and
// relative error, top-1 agreement and KL, and prints the first mismatching rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cachalot::test {

std::vector<float> read_f32_file(const std::string& path);
std::vector<int32_t> read_token_json(const std::string& path);

struct logit_comparison {
    int64_t rows = 0;
    double max_abs_diff = 0;
    double max_abs_golden = 0;
    double rel_max_diff = 0;     // max_abs_diff / max_abs_golden
    double top1_agreement = 0;   // fraction of rows with the same argmax
    double max_kl = 0;           // KL(golden || ours), per row, max
    double mean_kl = 0;
    bool all_finite = true;
    std::string report;          // human-readable summary + first mismatches
};

logit_comparison compare_logits(const std::vector<float>& golden, const std::vector<float>& ours, int64_t vocab);

} // namespace cachalot::test

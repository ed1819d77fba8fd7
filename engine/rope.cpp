// RoPE / YaRN frequency tables; see rope.h.
#include "engine/rope.h"

#include "kernels/rotary.h"

#include <algorithm>
#include <cmath>

namespace cachalot {

rope_table::rope_table(const model_config& cfg, int64_t ratio) {
    const int64_t dr = cfg.qk_rope_head_dim;
    const bool compressed = ratio > 0;
    const double theta = compressed ? cfg.compress_rope_theta : cfg.rope_theta;
    omega_.resize(size_t(dr / 2));
    for (int64_t i = 0; i < dr / 2; ++i) {
        omega_[size_t(i)] = std::pow(theta, -2.0 * double(i) / double(dr));
    }
    if (!compressed || !cfg.rope_scaling.yarn) {
        return;
    }
    const auto& ys = cfg.rope_scaling;
    const double L0 = double(ys.original_max_position_embeddings);
    auto corr = [&](double beta) { return double(dr) * std::log(L0 / (2.0 * M_PI * beta)) / (2.0 * std::log(theta)); };
    double low = std::max(std::floor(corr(ys.beta_fast)), 0.0);
    double high = std::min(std::ceil(corr(ys.beta_slow)), double(dr - 1));
    if (low == high) {
        high += 0.001;
    }
    for (int64_t i = 0; i < dr / 2; ++i) {
        double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
        double w = omega_[size_t(i)];
        omega_[size_t(i)] = w * (1.0 - ramp) + w / ys.factor * ramp;
    }
}

void rope_table::apply(float* v, int64_t pos, bool inverse) const {
    std::vector<double> cs(omega_.size() * 2);
    angles(pos, cs.data());
    rotate(v, cs.data(), inverse);
}

void rope_table::angles(int64_t pos, double* cs) const {
    rotary_angles(omega_.data(), int64_t(omega_.size()), pos, cs);
}

void rope_table::rotate(float* v, const double* cs, bool inverse) const {
    rotary_rotate(v, cs, int64_t(omega_.size()), inverse);
}

} // namespace cachalot

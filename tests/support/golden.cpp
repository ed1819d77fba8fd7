#include "tests/support/golden.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "tests/support/test_paths.h"

namespace cachalot::test {

std::vector<float> read_f32_file(const std::string& path) {
    std::string bytes = read_file(path);
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
}

std::vector<int32_t> read_token_json(const std::string& path) {
    std::string s = read_file(path);
    std::vector<int32_t> ids;
    long long cur = 0;
    bool in = false;
    for (char c : s) {
        if (c >= '0' && c <= '9') {
            cur = cur * 10 + (c - '0');
            in = true;
        } else if (in) {
            ids.push_back(int32_t(cur));
            cur = 0;
            in = false;
        }
    }
    return ids;
}

static int64_t argmax(const float* x, int64_t n) {
    return int64_t(std::max_element(x, x + n) - x);
}

static std::vector<double> log_softmax(const float* x, int64_t n) {
    double m = *std::max_element(x, x + n);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
        s += std::exp(double(x[i]) - m);
    }
    std::vector<double> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        out[size_t(i)] = double(x[i]) - m - std::log(s);
    }
    return out;
}

logit_comparison compare_logits(const std::vector<float>& golden, const std::vector<float>& ours, int64_t vocab) {
    logit_comparison c;
    std::ostringstream rep;
    if (golden.size() != ours.size() || golden.size() % size_t(vocab) != 0) {
        rep << "size mismatch: golden " << golden.size() << " floats, ours " << ours.size();
        c.report = rep.str();
        c.rel_max_diff = INFINITY;
        return c;
    }
    c.rows = int64_t(golden.size()) / vocab;
    int64_t agree = 0, shown = 0;
    double kl_sum = 0;
    for (int64_t r = 0; r < c.rows; ++r) {
        const float* g = golden.data() + r * vocab;
        const float* o = ours.data() + r * vocab;
        double row_max = 0;
        for (int64_t i = 0; i < vocab; ++i) {
            if (!std::isfinite(o[i])) {
                c.all_finite = false;
            }
            c.max_abs_golden = std::max(c.max_abs_golden, double(std::fabs(g[i])));
            row_max = std::max(row_max, double(std::fabs(g[i] - o[i])));
        }
        c.max_abs_diff = std::max(c.max_abs_diff, row_max);
        int64_t ag = argmax(g, vocab), ao = argmax(o, vocab);
        if (ag == ao) {
            ++agree;
        } else if (shown < 5) {
            rep << "  row " << r << ": argmax golden " << ag << " ours " << ao << " (max |diff| " << row_max << ")\n";
            ++shown;
        }
        auto lg = log_softmax(g, vocab), lo = log_softmax(o, vocab);
        double kl = 0;
        for (int64_t i = 0; i < vocab; ++i) {
            kl += std::exp(lg[size_t(i)]) * (lg[size_t(i)] - lo[size_t(i)]);
        }
        c.max_kl = std::max(c.max_kl, kl);
        kl_sum += kl;
    }
    c.top1_agreement = double(agree) / double(c.rows);
    c.mean_kl = kl_sum / double(c.rows);
    c.rel_max_diff = c.max_abs_diff / std::max(c.max_abs_golden, 1e-30);
    std::ostringstream head;
    head << c.rows << " rows: max|diff| " << c.max_abs_diff << " (" << c.rel_max_diff << " of max|golden| "
         << c.max_abs_golden << "), top-1 " << c.top1_agreement << ", KL max " << c.max_kl << " mean " << c.mean_kl
         << "\n";
    c.report = head.str() + rep.str();
    return c;
}

} // namespace cachalot::test

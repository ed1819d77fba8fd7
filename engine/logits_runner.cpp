// See logits_runner.h.
#include "engine/logits_runner.h"

#include <algorithm>

namespace cachalot {

result<int64_t> mtp_catch_up(const model& m, sequence_state& state, std::vector<float>& pending,
                             std::span<const int32_t> ids, float* logits, precision p) {
    const int64_t rows = state.n_past - 1 - state.mtp_n_past;
    if (rows <= 0) {
        return int64_t(0);
    }
    const int64_t nD = m.stream_width();
    if (int64_t(pending.size()) < rows * nD || int64_t(ids.size()) < state.n_past) {
        return make_error(errc::invalid_argument, "mtp_catch_up: fewer pending streams or ids than positions");
    }
    mtp_item mi{&state, pending.data(), ids.subspan(size_t(state.mtp_n_past + 1), size_t(rows)), logits};
    CACHALOT_TRY(m.forward_mtp(std::span<mtp_item>(&mi, 1), p));
    pending.erase(pending.begin(), pending.begin() + rows * nD);
    return rows;
}

result<std::vector<float>> compute_logits(const model& m, std::span<const int32_t> ids, int64_t chunk_size,
                                          logits_head head, precision p) {
    const int64_t n = int64_t(ids.size());
    const int64_t V = m.config().vocab_size, nD = m.stream_width();
    const bool mtp = head == logits_head::mtp;
    if (chunk_size <= 0) {
        return make_error(errc::invalid_argument, "chunk size must be positive");
    }
    if (n == 0 || (mtp && n < 2)) {
        return make_error(errc::invalid_argument, mtp ? "the MTP head needs at least 2 tokens" : "no tokens");
    }
    if (mtp && !m.has_mtp()) {
        return make_error(errc::unsupported, "this model has no MTP block loaded");
    }
    sequence_state st = m.new_sequence(p);
    std::vector<float> out(size_t((mtp ? n - 1 : n) * V));
    std::vector<float> pending; // trunk streams of positions mtp_n_past .. n_past-1
    int64_t out_rows = 0;
    for (int64_t p0 = 0; p0 < n; p0 += chunk_size) {
        const int64_t c = std::min(chunk_size, n - p0);
        forward_item item;
        item.state = &st;
        item.tokens = ids.subspan(size_t(p0), size_t(c));
        item.all_logits = true;
        std::vector<float> streams;
        if (mtp) {
            streams.resize(size_t(c * nD));
            item.streams = streams.data();
        } else {
            item.logits = out.data() + p0 * V;
        }
        CACHALOT_TRY(m.forward(std::span<forward_item>(&item, 1), p));
        if (!mtp) {
            continue;
        }
        pending.insert(pending.end(), streams.begin(), streams.end());
        auto rows = mtp_catch_up(m, st, pending, ids, out.data() + out_rows * V, p);
        if (!rows) {
            return std::move(rows).take_error();
        }
        out_rows += *rows;
    }
    return out;
}

} // namespace cachalot

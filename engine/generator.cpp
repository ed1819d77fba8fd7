// See generator.h. The loop keeps one invariant: `pending` is a sampled token the trunk has not
// processed yet, and state.last_streams are the trunk's streams at position n_past − 1.
#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include "engine/logits_runner.h"
#include "engine/speculative_accept.h"
#include "engine/stop_matcher.h"

namespace cachalot {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

/// Detokenizes, matches stop strings and delivers text; tracks why generation ended.
class output_sink {
public:
    output_sink(const tokenizer& tok, const sampling_params& sp, const text_callback& cb)
        : tok_(tok), stops_(sp.stop), cb_(cb) {}

    /// Returns false when generation must end (stop string, callback said stop).
    bool push(int32_t id) {
        std::string text = decoder_.feed(tok_, id);
        if (text.empty()) {
            return true;
        }
        auto r = stops_.push(text);
        if (!r.emit.empty() && !cb_(r.emit)) {
            return false;
        }
        return !r.stopped;
    }
    void finish() {
        std::string rest = decoder_.flush();
        if (!stops_.stopped()) {
            auto r = stops_.push(rest);
            std::string tail = r.emit + (r.stopped ? std::string() : stops_.flush());
            if (!tail.empty()) {
                cb_(tail);
            }
        }
    }

private:
    const tokenizer& tok_;
    stream_decoder decoder_;
    stop_matcher stops_;
    const text_callback& cb_;
};

bool is_stop_token(const model_config& cfg, const sampling_params& sp, int32_t id) {
    if (std::find(sp.stop_token_ids.begin(), sp.stop_token_ids.end(), id) != sp.stop_token_ids.end()) {
        return true;
    }
    return !sp.ignore_eos && std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), int64_t(id)) !=
                                 cfg.eos_token_ids.end();
}

} // namespace

result<generation_stats> generate(const model& m, const tokenizer& tok, std::span<const int32_t> prompt,
                                  const generate_options& opts, const text_callback& on_text) {
    const auto& cfg = m.config();
    const int64_t V = cfg.vocab_size, nD = m.stream_width();
    if (prompt.empty()) {
        return make_error(errc::invalid_argument, "the prompt is empty");
    }
    if (int64_t(prompt.size()) >= cfg.max_position_embeddings) {
        return make_error(errc::invalid_argument, "the prompt has " + std::to_string(prompt.size()) +
                                                      " tokens; the model's context is " +
                                                      std::to_string(cfg.max_position_embeddings));
    }
    if (opts.use_mtp && !m.has_mtp()) {
        return make_error(errc::unsupported, "MTP speculative decoding needs a checkpoint with an mtp.0 block");
    }
    auto smp = sampler::create(opts.sampling, prompt);
    if (!smp) {
        return std::move(smp).take_error();
    }
    sampler& s = *smp;
    const int64_t room = cfg.max_position_embeddings - int64_t(prompt.size());
    const int64_t max_new = std::min(opts.sampling.max_tokens.value_or(room), room);

    generation_stats stats;
    stats.n_prompt_tokens = int64_t(prompt.size());
    sequence_state st = m.new_sequence(opts.prec);
    std::vector<float> logits(static_cast<size_t>(V));

    auto t0 = clock_type::now();
    const int64_t chunk = std::max<int64_t>(1, opts.prefill_chunk);
    // With MTP the block also sees every prompt position, so its window is complete when
    // drafting starts; it lags the trunk by one position (the next token must be known).
    std::vector<float> mtp_streams, chunk_streams;
    for (size_t p0 = 0; p0 < prompt.size(); p0 += size_t(chunk)) {
        size_t c = std::min(prompt.size() - p0, size_t(chunk));
        if (opts.use_mtp) {
            chunk_streams.resize(c * size_t(nD));
        }
        forward_item item{&st, prompt.subspan(p0, c), false, p0 + c == prompt.size() ? logits.data() : nullptr,
                          opts.use_mtp ? chunk_streams.data() : nullptr};
        CACHALOT_TRY(m.forward(std::span<forward_item>(&item, 1), opts.prec));
        if (opts.use_mtp) {
            mtp_streams.insert(mtp_streams.end(), chunk_streams.begin(), chunk_streams.end());
            CACHALOT_TRY(mtp_catch_up(m, st, mtp_streams, prompt, nullptr, opts.prec));
        }
    }
    stats.prefill_seconds = seconds_since(t0);
    auto t1 = clock_type::now();

    output_sink sink(tok, opts.sampling, on_text);
    bool done = false;
    auto emit = [&](int32_t id) {
        stats.tokens.push_back(id);
        ++stats.n_generated_tokens;
        if (is_stop_token(cfg, opts.sampling, id)) {
            stats.finish = finish_reason::stop;
            done = true;
            return;
        }
        if (!sink.push(id)) {
            stats.finish = finish_reason::stop;
            done = true;
            return;
        }
        if (stats.n_generated_tokens >= max_new) {
            stats.finish = finish_reason::length;
            done = true;
        }
    };

    auto first = s.sample(logits);
    if (!first) {
        return std::move(first).take_error();
    }
    s.accept(first->token);
    int32_t pending = first->token;
    emit(pending);

    // MTP bookkeeping: mtp_streams holds the trunk streams of the positions the MTP block has
    // not processed yet (from mtp_n_past to n_past − 1), mtp_next the tokens after them.
    std::vector<int32_t> mtp_next; // the token after each of those positions, once known
    std::vector<float> verify_logits(static_cast<size_t>(2 * V)), verify_streams(static_cast<size_t>(2 * nD));
    speculative_options spec;
    spec.eos_token_id = cfg.eos_token_ids.empty() ? -1 : int32_t(cfg.eos_token_ids[0]);

    while (!done) {
        if (!opts.use_mtp || st.n_past + 2 > cfg.max_position_embeddings) {
            forward_item item{&st, std::span<const int32_t>(&pending, 1), false, logits.data(), nullptr};
            CACHALOT_TRY(m.forward(std::span<forward_item>(&item, 1), opts.prec));
            ++stats.n_trunk_steps;
            auto r = s.sample(logits);
            if (!r) {
                return std::move(r).take_error();
            }
            s.accept(r->token);
            pending = r->token;
            emit(pending);
            continue;
        }
        // 1. Draft: the MTP block catches up on accepted positions, then proposes from
        //    (streams at n_past − 1, pending).
        mtp_next.push_back(pending);
        const int64_t m_rows = int64_t(mtp_next.size());
        std::vector<float> all_mtp_logits(size_t(m_rows * V));
        mtp_item mi{&st, mtp_streams.data(), std::span<const int32_t>(mtp_next), all_mtp_logits.data()};
        CACHALOT_TRY(m.forward_mtp(std::span<mtp_item>(&mi, 1), opts.prec));
        const float* dl = all_mtp_logits.data() + (m_rows - 1) * V;
        int32_t draft = opts.draft_policy ? opts.draft_policy(st.n_past + 1, std::span<const float>(dl, size_t(V)))
                                          : int32_t(std::max_element(dl, dl + V) - dl);
        if (draft < 0 || draft >= V) {
            return make_error(errc::invalid_argument, "draft policy returned token " + std::to_string(draft));
        }
        mtp_streams.clear();
        mtp_next.clear();

        // 2. Verify [pending, draft] in one trunk step.
        const int64_t base = st.n_past;
        int32_t pair[2] = {pending, draft};
        forward_item item{&st, std::span<const int32_t>(pair, 2), true, verify_logits.data(), verify_streams.data()};
        CACHALOT_TRY(m.forward(std::span<forward_item>(&item, 1), opts.prec));
        ++stats.n_trunk_steps;
        ++stats.n_drafted;

        // 3. Accept exactly.
        spec.max_new_tokens = max_new - stats.n_generated_tokens;
        auto acc = accept_draft(s, verify_logits, size_t(V), std::span<const int32_t>(&draft, 1), {}, spec);
        if (!acc) {
            return std::move(acc).take_error();
        }
        const bool kept = acc->n_accepted_drafts == 1;
        stats.n_accepted += int64_t(acc->n_accepted_drafts);
        if (!kept) {
            st.truncate(base + 1); // the draft's position is discarded
            std::copy(verify_streams.begin(), verify_streams.begin() + nD, st.last_streams.begin());
        }
        // Positions processed and not yet seen by the MTP block: base (pending) and, if kept,
        // base + 1 (draft), whose next token is known.
        mtp_streams.assign(verify_streams.begin(), verify_streams.begin() + nD);
        if (kept) {
            mtp_next.push_back(draft);
            mtp_streams.insert(mtp_streams.end(), verify_streams.begin() + nD, verify_streams.end());
        }
        for (int32_t id : acc->tokens) {
            if (!done) {
                emit(id);
            }
        }
        pending = acc->tokens.back();
        if (acc->hit_stop_token) {
            done = true;
            stats.finish = finish_reason::stop;
        }
    }
    sink.finish();
    stats.decode_seconds = seconds_since(t1);
    return stats;
}

} // namespace cachalot

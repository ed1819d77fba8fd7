// Speculative acceptance (see speculative_accept.h for the rule). The residual draw scans ids in
// ascending order with one uniform from the sequence's generator, like sampler::sample, so a seed
// fixes the outcome on any machine. Tokens are scored for logprobs before they are accept()ed,
// so the reported logprobs match those of sequential decoding.
#include "engine/speculative_accept.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace cachalot {
namespace {

// Draws from weights (not necessarily normalised, total > 0) in id order.
token_id draw(std::span<const double> weights, double total, double u) {
    const double target = u * total;
    double cum = 0.0;
    token_id last = -1;
    for (std::size_t i = 0; i < weights.size(); ++i) {
        if (weights[i] > 0.0) {
            cum += weights[i];
            last = static_cast<token_id>(i);
            if (target < cum) {
                return last;
            }
        }
    }
    return last; // rounding left target at or past the final sum
}

} // namespace

result<speculative_result> accept_draft(sampler& s, std::span<const float> target_logits, std::size_t n_vocab,
                                        std::span<const token_id> draft, std::span<const float> draft_probs,
                                        const speculative_options& opts) {
    const std::size_t k = draft.size();
    if (n_vocab == 0) {
        return make_error(errc::invalid_argument, "accept_draft: n_vocab is 0");
    }
    if (target_logits.size() != (k + 1) * n_vocab) {
        return make_error(errc::invalid_argument,
                          "accept_draft: target_logits has " + std::to_string(target_logits.size()) +
                              " values, expected (k + 1) * V = " + std::to_string((k + 1) * n_vocab));
    }
    if (!draft_probs.empty() && draft_probs.size() != k * n_vocab) {
        return make_error(errc::invalid_argument, "accept_draft: draft_probs has " +
                                                      std::to_string(draft_probs.size()) +
                                                      " values, expected k * V = " + std::to_string(k * n_vocab) +
                                                      " or none for a greedy draft");
    }
    for (std::size_t j = 0; j < k; ++j) {
        if (draft[j] < 0 || static_cast<std::size_t>(draft[j]) >= n_vocab) {
            return make_error(errc::invalid_argument, "accept_draft: draft token " + std::to_string(j) + " (" +
                                                          std::to_string(draft[j]) + ") is outside the vocabulary of " +
                                                          std::to_string(n_vocab));
        }
    }
    for (std::size_t i = 0; i < draft_probs.size(); ++i) {
        if (!(draft_probs[i] >= 0.0f) || !std::isfinite(draft_probs[i])) {
            return make_error(errc::invalid_argument, "accept_draft: draft probability at row " +
                                                          std::to_string(i / n_vocab) + ", token " +
                                                          std::to_string(i % n_vocab) + " is negative or not finite");
        }
    }
    if (opts.max_new_tokens == 0) {
        return make_error(errc::invalid_argument, "accept_draft: max_new_tokens is 0");
    }

    const sampling_params& params = s.params();
    speculative_result out;
    auto is_stop = [&](token_id t) {
        if (t == opts.eos_token_id && !params.ignore_eos) {
            return true;
        }
        return std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), t) != params.stop_token_ids.end();
    };
    // Records t; returns true when the chain must end here.
    auto emit = [&](sample_result r) {
        const token_id t = r.token;
        s.accept(t);
        out.tokens.push_back(t);
        out.samples.push_back(std::move(r));
        if (is_stop(t)) {
            out.hit_stop_token = true;
            return true;
        }
        return opts.max_new_tokens > 0 && static_cast<std::int64_t>(out.tokens.size()) >= opts.max_new_tokens;
    };
    auto scored = [&](std::span<const float> row, token_id t) -> result<sample_result> {
        if (!params.logprobs) {
            sample_result r;
            r.token = t;
            return r;
        }
        return s.score(row, t);
    };

    std::vector<double> residual;
    for (std::size_t j = 0; j <= k; ++j) {
        const auto row = target_logits.subspan(j * n_vocab, n_vocab);
        if (j == k || params.is_greedy()) {
            // Bonus token, or greedy: sample() is the argmax then and draws nothing.
            auto r = s.sample(row);
            CACHALOT_TRY(r);
            const bool matches = j < k && r->token == draft[j];
            if (matches) {
                ++out.n_accepted_drafts;
            }
            if (emit(std::move(r).value()) || !matches) {
                break;
            }
            continue;
        }

        const token_id d = draft[j];
        auto probs = s.probabilities(row);
        CACHALOT_TRY(probs);
        const std::vector<float>& p = *probs;
        const std::span<const float> q =
            draft_probs.empty() ? std::span<const float>() : draft_probs.subspan(j * n_vocab, n_vocab);
        const double q_d = q.empty() ? 1.0 : q[d];
        // Accept with probability min(1, p/q); u * q < p also rejects p = q = 0.
        if (s.next_uniform() * q_d < static_cast<double>(p[d])) {
            auto r = scored(row, d);
            CACHALOT_TRY(r);
            ++out.n_accepted_drafts;
            if (emit(std::move(r).value())) {
                break;
            }
            continue;
        }

        residual.assign(n_vocab, 0.0);
        double total = 0.0;
        for (std::size_t i = 0; i < n_vocab; ++i) {
            const double qi = q.empty() ? (static_cast<token_id>(i) == d ? 1.0 : 0.0) : q[i];
            residual[i] = std::max(static_cast<double>(p[i]) - qi, 0.0);
            total += residual[i];
        }
        if (!(total > 0.0)) {
            // Only reachable through rounding (a rejection needs p(d) < q(d), hence mass
            // elsewhere); p itself is then the closest correct choice.
            for (std::size_t i = 0; i < n_vocab; ++i) {
                residual[i] = p[i];
                total += residual[i];
            }
        }
        const token_id t = draw(residual, total, s.next_uniform());
        auto r = scored(row, t);
        CACHALOT_TRY(r);
        emit(std::move(r).value());
        break;
    }
    return out;
}

} // namespace cachalot

// Exact speculative acceptance for one draft chain (Leviathan et al. 2023; Chen et al. 2023):
// given k draft tokens (from MTP or any draft model) and the target model's k+1 logits rows for
// them, decide which drafts the sequence keeps and which one token the target adds, so that the
// emitted tokens are distributed exactly as if the target had sampled them one at a time.
//   greedy (temperature 0): keep drafts while each equals the target's argmax; the first mismatch
//     is replaced by the argmax; when all match, the argmax of the last row is a bonus token.
//   sampling: target distribution p (the sampler's final distribution, truncation included), draft
//     distribution q; keep draft d with probability min(1, p(d)/q(d)); on a rejection draw from
//     normalize(max(p - q, 0)) and stop; when all are kept, draw a bonus token from the last row.
//     A greedy draft is q one-hot at d: keep with probability p(d), else draw from p without d.
// Every random number comes from the sequence's own sampler, so seeded runs reproduce; every
// emitted token is accept()ed into the sampler before the next row is processed, so penalties see
// the drafts kept so far exactly as sequential decoding would. Not here: running the draft or the
// target, KV cache rollback of rejected positions, batching chains of many sequences.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/sampler.h"
#include "kernels/result.h"

namespace cachalot {

struct speculative_options {
    /// EOS ends the chain after it is emitted, unless params.ignore_eos; -1 = no EOS.
    token_id eos_token_id = -1;
    /// Most tokens to emit (what is left of max_tokens); -1 = no cap. Must not be 0.
    std::int64_t max_new_tokens = -1;
};

struct speculative_result {
    /// Kept drafts, then the target's correction or bonus token (fewer at a stop or the cap).
    std::vector<token_id> tokens;
    std::size_t n_accepted_drafts = 0;
    /// One per emitted token; logprob and top_logprobs are filled when params.logprobs.
    std::vector<sample_result> samples;
    /// The last token is a stop token id or EOS: the sequence is over.
    bool hit_stop_token = false;
};

/// Decides one chain and records the emitted tokens in s (s.accept()).
/// V = n_vocab, k = draft.size()
/// target_logits: [k + 1, V]; row j is the target's logits after the sequence plus draft[0..j).
/// draft_probs: [k, V], the draft's sampling distribution at each draft position, or empty when
///   the draft was greedy (one-hot at each draft token). Ignored when the sampler is greedy.
/// Fails (invalid_argument) on shapes that do not match, draft ids outside [0, V), negative or
/// non-finite draft probabilities, or a bad logits row.
[[nodiscard]] result<speculative_result> accept_draft(sampler& s, std::span<const float> target_logits,
                                                      std::size_t n_vocab, std::span<const token_id> draft,
                                                      std::span<const float> draft_probs,
                                                      const speculative_options& opts = {});

} // namespace cachalot

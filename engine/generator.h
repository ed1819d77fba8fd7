// generate(): the single-sequence generation loop — chunked prefill, then decode with
// sampling, stop strings/ids, max tokens and incremental detokenization, optionally with MTP
// speculative decoding (one draft per step from the mtp.0 block, verified by the trunk in one
// batched step, accepted exactly: greedy output is identical with and without MTP, sampling
// keeps the target distribution). Text is delivered through a callback as it becomes final.
// Not here: batching many sequences (the decode actor will drive model::forward directly).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace cachalot {

struct generate_options {
    sampling_params sampling;
    bool use_mtp = false;            // speculative decoding with the MTP block
    precision prec = precision::fast;
    int64_t prefill_chunk = 512;     // tokens per prefill step
    /// Picks the draft for position `pos` from the MTP block's logits; empty = argmax. Lets
    /// callers plug in other drafting policies (and tests force acceptances and rejections).
    std::function<int32_t(int64_t pos, std::span<const float> mtp_logits)> draft_policy;
};

enum class finish_reason { stop, length };

struct generation_stats {
    int64_t n_prompt_tokens = 0;
    int64_t n_generated_tokens = 0;
    int64_t n_drafted = 0;  // MTP drafts proposed
    int64_t n_accepted = 0; // MTP drafts kept
    int64_t n_trunk_steps = 0;
    double prefill_seconds = 0;
    double decode_seconds = 0;
    finish_reason finish = finish_reason::length;
    std::vector<int32_t> tokens; // generated ids, the stop token included (stop strings cut text only)

    double acceptance_rate() const { return n_drafted ? double(n_accepted) / double(n_drafted) : 0.0; }
};

/// Called with each piece of final text; return false to stop early (finish = stop).
using text_callback = std::function<bool(std::string_view)>;

[[nodiscard]] result<generation_stats> generate(const model& m, const tokenizer& tok, std::span<const int32_t> prompt,
                                                const generate_options& opts, const text_callback& on_text);

} // namespace cachalot

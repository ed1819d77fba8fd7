// Token sampling for one sequence: the request's sampling parameters (OpenAI/vLLM semantics), a
// seeded random generator of our own (so that a seed gives the same tokens on any machine and any
// standard library), the penalty counters, and the step that turns one row of logits into a token,
// its logprob and the top alternatives. The whole mutable state is a plain `sampler_state` that
// can be serialised and handed to another machine, where the sequence continues exactly as it
// would have here. This file knows nothing about the model or the tokenizer: it sees a logits row
// of vocabulary size V and token ids. Stop strings are matched elsewhere (engine/stop_matcher.h);
// stop token ids and max_tokens are carried here but enforced by the decode loop.
//
// Processing order of one step (sampler::sample):
//   1. penalties on a copy of the logits: repetition (HF/vLLM, over prompt + output tokens:
//      logit > 0 -> logit / r, else logit * r), then frequency and presence (OpenAI, over output
//      tokens only: logit -= frequency * count + presence * [count > 0]);
//   2. logprobs are the log-softmax of these penalised logits, before temperature and truncation
//      (what the model, penalties included, thinks of each token; vLLM's "processed" logits less
//      temperature);
//   3. temperature == 0 (below 1e-5, as in vLLM) -> greedy: the largest penalised logit, the lower
//      id on ties; no random number is drawn;
//   4. divide by temperature, softmax;
//   5. top-k: keep tokens whose logit is at least the k-th largest (ties at the boundary kept,
//      as in HF and vLLM);
//   6. top-p: keep the smallest prefix of the survivors, by probability descending (lower id first
//      on ties), whose mass reaches top_p of the survivors' mass;
//   7. min-p: keep tokens with probability >= min_p * the largest probability;
//   8. draw one uniform double and pick from the renormalised survivors, scanned in id order.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernels/result.h"

namespace cachalot {

using token_id = std::int32_t;

/// One request's sampling parameters. Defaults are OpenAI's; each "off" value disables its step.
struct sampling_params {
    float temperature = 1.0f;               // [0, 2]; 0 = greedy
    std::int32_t top_k = 0;                 // 0 or -1 = off, else >= 1
    float top_p = 1.0f;                     // (0, 1]; 1 = off
    float min_p = 0.0f;                     // [0, 1]; 0 = off
    std::optional<std::uint64_t> seed;      // a JSON integer, negative ones cast; none = random
    float presence_penalty = 0.0f;          // [-2, 2], over output tokens
    float frequency_penalty = 0.0f;         // [-2, 2], over output tokens
    float repetition_penalty = 1.0f;        // > 0, over prompt + output tokens; 1 = off
    std::vector<std::string> stop;          // stop strings, each non-empty (engine/stop_matcher.h)
    std::vector<token_id> stop_token_ids;   // ids that end the sequence besides EOS
    std::optional<std::int64_t> max_tokens; // >= 1; none = the rest of the context
    bool logprobs = false;                  // report the sampled token's logprob
    std::int32_t top_logprobs = 0;          // [0, 20] alternatives per token; needs logprobs
    bool ignore_eos = false;                // keep going after EOS (benchmarks)

    /// Checks every field against its range; the message names the field and the range.
    [[nodiscard]] status validate() const;
    bool is_greedy() const;
};

/// Everything a sampler changes as a sequence goes on. Copy it, ship it (serialize()), and
/// sampler::restore() with the same params continues the sequence exactly.
struct sampler_state {
    std::array<std::uint64_t, 4> rng{}; // xoshiro256** state
    /// Sorted, unique prompt ids; kept only when repetition_penalty != 1 (the only user).
    std::vector<token_id> prompt_tokens;
    /// (token, count) of output tokens so far, sorted by token.
    std::vector<std::pair<token_id, std::int32_t>> output_counts;
    std::int64_t n_output_tokens = 0;

    bool operator==(const sampler_state&) const = default;

    /// A little-endian byte string, the same on every machine.
    std::string serialize() const;
    /// Parses serialize()'s output; bad_format naming the problem on a short or corrupt string.
    [[nodiscard]] static result<sampler_state> deserialize(std::string_view bytes);
};

/// xoshiro256** (Blackman and Vigna), seeded through splitmix64: fixed arithmetic, so a seed
/// yields the same numbers everywhere (std::uniform_real_distribution does not).
class sampler_rng {
public:
    explicit sampler_rng(std::uint64_t seed);
    explicit sampler_rng(const std::array<std::uint64_t, 4>& state) : s_(state) {}

    std::uint64_t next_u64();
    /// Uniform in [0, 1), 53 random bits.
    double next_double();
    const std::array<std::uint64_t, 4>& state() const { return s_; }

private:
    std::array<std::uint64_t, 4> s_;
};

struct sample_result {
    token_id token = -1;
    float logprob = 0.0f; // log-softmax of the penalised logits (step 2 above)
    /// The top_logprobs highest (token, logprob), highest first, lower id first on ties;
    /// empty unless params.logprobs.
    std::vector<std::pair<token_id, float>> top_logprobs;
};

/// Samples one sequence's tokens. Not thread-safe; one per sequence. sample() draws from the RNG
/// but does not record the token: call accept() with every token the sequence keeps (sampled or
/// accepted from a draft) so that the penalties see it.
class sampler {
public:
    /// Validates params; prompt feeds the repetition penalty.
    [[nodiscard]] static result<sampler> create(const sampling_params& params, std::span<const token_id> prompt);
    /// Continues a sequence from a state taken from sampler::state() (here or elsewhere).
    [[nodiscard]] static result<sampler> restore(const sampling_params& params, sampler_state state);

    /// One step on a logits row of size V. Fails (invalid_argument) on an empty row, a NaN or
    /// +inf logit, or a row with no finite logit.
    [[nodiscard]] result<sample_result> sample(std::span<const float> logits);
    /// The distribution sample() would draw from for these logits (after every step above;
    /// one-hot at the argmax when greedy), size V, summing to 1. Draws nothing.
    [[nodiscard]] result<std::vector<float>> probabilities(std::span<const float> logits);
    /// Logprob and top alternatives of a given token under these logits (step 2), as sample()
    /// would report them; for tokens chosen elsewhere (speculative acceptance, prompt echo).
    [[nodiscard]] result<sample_result> score(std::span<const float> logits, token_id token);

    /// Records an output token: penalty counters and the output count.
    void accept(token_id token);
    /// A uniform double in [0, 1) from this sequence's generator (speculative acceptance).
    double next_uniform() { return rng_.next_double(); }

    const sampling_params& params() const { return params_; }
    /// A copy of the whole mutable state.
    sampler_state state() const;
    std::int64_t n_output_tokens() const { return n_output_tokens_; }

private:
    sampler(const sampling_params& params, sampler_state state);

    // Copies logits into logits_ and applies penalties; checks the row.
    status prepare(std::span<const float> logits);
    token_id greedy_token() const;
    // Fills weights_ (unnormalised probabilities, 0 = masked) and kept_ (surviving ids,
    // ascending) from logits_; returns the survivors' total weight.
    double truncated_distribution();
    // Narrows kept_ to the top-p set (ids stay ascending).
    void apply_top_p();
    void fill_logprobs(token_id token, sample_result& out) const;

    sampling_params params_;
    sampler_rng rng_;
    std::vector<token_id> prompt_tokens_;
    std::vector<std::pair<token_id, std::int32_t>> output_counts_;
    std::int64_t n_output_tokens_ = 0;

    // Scratch, reused across steps; not state.
    std::vector<float> logits_;
    std::vector<float> weights_;
    std::vector<token_id> kept_;
};

} // namespace cachalot

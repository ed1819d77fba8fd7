// model: a loaded DeepSeek-V4 checkpoint (config, mapped weights, rope tables) and its forward
// pass. forward() runs a batch of sequences together, each contributing a chunk of new tokens
// at its own positions, so that weights are streamed once per step for the whole batch and
// chunked prefill, token-by-token decode and batched decode are one code path.
// Not here: sampling, tokenization, scheduling (callers decide what goes in a batch).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/model_weights.h"
#include "engine/rope.h"
#include "engine/safetensors.h"
#include "engine/sequence_state.h"
#include "kernels/ops.h"

namespace cachalot {

struct load_options {
    bool with_mtp = true;
    // Repack the matmul weights for the `fast` CPU kernel at load (pack_fast_weights). Off only for
    // a process that runs nothing but `exact`, which reads the stored form.
    bool pack_for_fast = true;
};

/// One sequence's part of a trunk step.
struct forward_item {
    sequence_state* state = nullptr;
    std::span<const int32_t> tokens; // new tokens at positions state->n_past ...
    bool all_logits = false;         // logits for every token (else only the last)
    float* logits = nullptr;         // [rows][vocab], rows = tokens.size() or 1; may be null
    float* streams = nullptr;        // optional [tokens][hc·D]: final streams before HCHead
};

/// One sequence's part of an MTP step: the block runs at positions state->mtp_n_past ...
struct mtp_item {
    sequence_state* state = nullptr;
    const float* streams = nullptr;       // [n][hc·D]: trunk streams at those positions
    std::span<const int32_t> next_tokens; // [n]: the token after each position
    float* logits = nullptr;              // [n][vocab]
};

class model {
public:
    [[nodiscard]] static result<std::unique_ptr<model>> load(const std::string& dir, const load_options& opts = {});

    const model_config& config() const { return config_; }
    const model_weights& weights() const { return weights_; }
    const std::string& dir() const { return dir_; }
    bool has_mtp() const { return !weights_.mtp.empty(); }
    int64_t stream_width() const { return config_.hc_mult * config_.hidden_size; }

    /// A fresh sequence for forward() at precision p (its keys are stored for that precision).
    sequence_state new_sequence(precision p, int64_t spec_slack = 8) const {
        return sequence_state::create(config_, p, spec_slack);
    }

    /// Runs every item's tokens through the trunk and advances each state. Errors (a token out
    /// of the vocabulary, a position past the context) leave every state unchanged.
    [[nodiscard]] status forward(std::span<forward_item> items, precision p) const;
    /// Runs the MTP block (mtp.0) and advances each state's mtp_n_past.
    [[nodiscard]] status forward_mtp(std::span<mtp_item> items, precision p) const;

private:
    model() = default;
    std::string dir_;
    model_config config_;
    checkpoint checkpoint_;
    model_weights weights_;
    std::vector<rope_table> rope_; // per trunk layer, then per MTP block
};

} // namespace cachalot

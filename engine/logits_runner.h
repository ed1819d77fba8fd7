// compute_logits: feeds a whole token sequence through a model in chunks of a given size and
// collects the logits of every position, from the trunk head or the MTP block. It is what
// `cachalot logits` and the golden tests run, so every feeding mode (one prefill, token by
// token, chunks of N) is exercised through the same path serving uses.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/model.h"

namespace cachalot {

enum class logits_head { main, mtp };

/// Runs the MTP block over every position whose next token has been fed to the trunk: positions
/// state.mtp_n_past .. state.n_past − 2. `pending` holds the trunk streams of positions
/// state.mtp_n_past .. state.n_past − 1 ([hc·D] each); the rows run are removed from its front.
/// ids[p] is the token at position p. Logits, when not null, get [rows][vocab]. Returns rows run.
[[nodiscard]] result<int64_t> mtp_catch_up(const model& m, sequence_state& state, std::vector<float>& pending,
                                           std::span<const int32_t> ids, float* logits, precision p);

/// Returns [rows][vocab] floats: rows = n for the main head (row i after ids[0..i]); n - 1 for
/// the MTP head (row i predicts ids[i+2] from the trunk after ids[0..i] and ids[i+1]).
/// chunk_size = n is one prefill, 1 is token-by-token decode.
[[nodiscard]] result<std::vector<float>> compute_logits(const model& m, std::span<const int32_t> ids, int64_t chunk_size,
                                                        logits_head head, precision p);

} // namespace cachalot

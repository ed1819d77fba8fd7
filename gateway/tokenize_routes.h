// POST /tokenize and POST /detokenize against the served model's tokenizer (DESIGN.md §10).
// /tokenize takes either a "prompt", tokenized as Hugging Face tokenizers does (added tokens
// matched in the text, BOS first unless "add_special_tokens" is false), or chat "messages" (with
// "tools" and the thinking fields), rendered and encoded exactly as a chat request would be, BOS
// from the template; it answers {"tokens", "count", "max_model_len"} and tokenizes prompts longer
// than the context too, so clients can measure them. /detokenize turns {"tokens"} back into
// {"prompt"}. Failures are OpenAI error objects: 400 for bad JSON or fields, 404 for another model.
// These routes run no model computation and answer on the I/O thread that received the request.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "engine/tokenizer.h"
#include "gateway/model_info.h"
#include "gateway/router.h"

namespace cachalot::gateway {

/// Adds POST /tokenize and POST /detokenize. `bos_id` is what a "prompt" gets in front unless
/// add_special_tokens is false; nullopt takes the tokenizer's own bos_id() (none: nothing added).
/// The routes keep `model` and a copy of `tok` (copies share the tables) for the router's life.
void add_tokenize_routes(router& routes, std::shared_ptr<const model_state> model, tokenizer tok,
                         std::optional<int32_t> bos_id = std::nullopt);

} // namespace cachalot::gateway

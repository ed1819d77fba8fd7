// model_config: the architecture hyper-parameters of a DeepSeek-V4 checkpoint, read from its
// config.json (Hugging Face field names, spec §1.2) and validated once at load. Every field the
// forward pass uses comes from here; nothing is assumed from the released models' sizes.
// Not handled: V4.1's composite config (model_type deepseek_v41) is rejected with a message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/result.h"

namespace cachalot {

struct rope_scaling_config {
    bool yarn = false;
    double factor = 1.0;
    int64_t original_max_position_embeddings = 0;
    double beta_fast = 32.0;
    double beta_slow = 1.0;
};

struct model_config {
    std::string model_type;
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;              // D
    int64_t num_hidden_layers = 0;
    int64_t num_nextn_predict_layers = 0; // MTP blocks mtp.0.*
    int64_t num_attention_heads = 0;      // H
    int64_t head_dim = 0;                 // d
    int64_t qk_rope_head_dim = 0;         // dr
    int64_t q_lora_rank = 0;
    int64_t o_groups = 0;
    int64_t o_lora_rank = 0;
    int64_t sliding_window = 0;           // W
    std::vector<int64_t> compress_ratios; // one per layer, then one per MTP block
    double rope_theta = 10000.0;
    double compress_rope_theta = 160000.0;
    rope_scaling_config rope_scaling;
    int64_t max_position_embeddings = 0;
    int64_t index_n_heads = 0;
    int64_t index_head_dim = 0;
    int64_t index_topk = 0;
    int64_t hc_mult = 0;
    int64_t hc_sinkhorn_iters = 0;
    double hc_eps = 0.0;
    int64_t n_routed_experts = 0;
    int64_t n_shared_experts = 0;
    int64_t num_experts_per_tok = 0;
    int64_t moe_intermediate_size = 0;
    int64_t num_hash_layers = 0;
    double routed_scaling_factor = 1.0;
    double swiglu_limit = 0.0; // 0 = no clamp
    double rms_norm_eps = 1e-6;
    bool norm_topk_prob = true;
    int64_t bos_token_id = 0;
    std::vector<int64_t> eos_token_ids;
    std::vector<int64_t> weight_block_size = {128, 128};

    int64_t rope_dims() const { return qk_rope_head_dim; }
    int64_t nope_dims() const { return head_dim - qk_rope_head_dim; }
    /// compress ratio of trunk layer `layer`, or of MTP block `layer - num_hidden_layers`.
    int64_t ratio(int64_t layer) const { return compress_ratios[size_t(layer)]; }
};

/// Parses and validates config.json text; errors name the field and the accepted values.
[[nodiscard]] result<model_config> parse_model_config(std::string_view json);
/// Reads DIR/config.json.
[[nodiscard]] result<model_config> load_model_config(const std::string& model_dir);

} // namespace cachalot

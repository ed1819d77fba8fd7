// config.json parsing and validation; see model_config.h.
#include "engine/model_config.h"

#include <simdjson.h>

#include <fstream>
#include <sstream>

namespace cachalot {

namespace {

using simdjson::dom::element;

struct reader {
    element root;
    std::string error;

    bool has(const char* key) const { return root[key].error() == simdjson::SUCCESS; }

    bool get_int(const char* key, int64_t& out, bool required = true) {
        auto v = root[key];
        if (v.error()) {
            if (required && error.empty()) {
                error = std::string("config.json: missing field '") + key + "'";
            }
            return false;
        }
        int64_t i;
        double d;
        if (!v.get_int64().get(i)) {
            out = i;
        } else if (!v.get_double().get(d) && d == double(int64_t(d))) {
            out = int64_t(d);
        } else if (error.empty()) {
            error = std::string("config.json: field '") + key + "' must be an integer";
        }
        return true;
    }
    bool get_double(const char* key, double& out, bool required = true) {
        auto v = root[key];
        if (v.error()) {
            if (required && error.empty()) {
                error = std::string("config.json: missing field '") + key + "'";
            }
            return false;
        }
        double d;
        int64_t i;
        if (!v.get_double().get(d)) {
            out = d;
        } else if (!v.get_int64().get(i)) {
            out = double(i);
        } else if (error.empty()) {
            error = std::string("config.json: field '") + key + "' must be a number";
        }
        return true;
    }
    bool get_string(const char* key, std::string& out, bool required = true) {
        auto v = root[key];
        if (v.error()) {
            if (required && error.empty()) {
                error = std::string("config.json: missing field '") + key + "'";
            }
            return false;
        }
        std::string_view s;
        if (v.get_string().get(s)) {
            if (error.empty()) {
                error = std::string("config.json: field '") + key + "' must be a string";
            }
            return true;
        }
        out = std::string(s);
        return true;
    }
    void get_bool(const char* key, bool& out) {
        auto v = root[key];
        if (v.error()) {
            return;
        }
        bool b;
        if (v.get_bool().get(b)) {
            if (error.empty()) {
                error = std::string("config.json: field '") + key + "' must be true or false";
            }
            return;
        }
        out = b;
    }
    bool get_int_list(element v, const char* key, std::vector<int64_t>& out) {
        simdjson::dom::array arr;
        int64_t one;
        if (!v.get_int64().get(one)) {
            out = {one};
            return true;
        }
        if (v.get_array().get(arr)) {
            if (error.empty()) {
                error = std::string("config.json: field '") + key + "' must be a list of integers";
            }
            return false;
        }
        out.clear();
        for (auto x : arr) {
            int64_t i;
            if (x.get_int64().get(i)) {
                if (error.empty()) {
                    error = std::string("config.json: field '") + key + "' must be a list of integers";
                }
                return false;
            }
            out.push_back(i);
        }
        return true;
    }
};

std::string fail_value(const char* field, const std::string& got, const char* expected) {
    return std::string("config.json: unsupported ") + field + " '" + got + "' (cachalot supports " + expected + ")";
}

} // namespace

result<model_config> parse_model_config(std::string_view json) {
    simdjson::dom::parser parser;
    simdjson::padded_string padded(json);
    element root;
    if (auto e = parser.parse(padded).get(root)) {
        return make_error(errc::bad_format, std::string("config.json is not valid JSON: ") + simdjson::error_message(e));
    }
    if (!root.is_object()) {
        return make_error(errc::bad_format, "config.json: the top level must be an object");
    }
    reader r{root, {}};
    model_config c;
    r.get_string("model_type", c.model_type);
    if (!r.error.empty()) {
        return make_error(errc::bad_format, r.error);
    }
    if (c.model_type != "deepseek_v4") {
        return make_error(errc::unsupported,
                          fail_value("model_type", c.model_type,
                                     "'deepseek_v4' (DeepSeek-V4-Flash, V4-Pro and their -Base and re-releases)"));
    }
    r.get_int("vocab_size", c.vocab_size);
    r.get_int("hidden_size", c.hidden_size);
    r.get_int("num_hidden_layers", c.num_hidden_layers);
    if (!r.get_int("num_nextn_predict_layers", c.num_nextn_predict_layers, false)) {
        c.num_nextn_predict_layers = 0;
    }
    r.get_int("num_attention_heads", c.num_attention_heads);
    int64_t kv_heads = 1;
    r.get_int("num_key_value_heads", kv_heads, false);
    r.get_int("head_dim", c.head_dim);
    r.get_int("qk_rope_head_dim", c.qk_rope_head_dim);
    r.get_int("q_lora_rank", c.q_lora_rank);
    r.get_int("o_groups", c.o_groups);
    r.get_int("o_lora_rank", c.o_lora_rank);
    r.get_int("sliding_window", c.sliding_window);
    r.get_double("rope_theta", c.rope_theta);
    r.get_double("compress_rope_theta", c.compress_rope_theta);
    r.get_int("max_position_embeddings", c.max_position_embeddings);
    r.get_int("index_n_heads", c.index_n_heads);
    r.get_int("index_head_dim", c.index_head_dim);
    r.get_int("index_topk", c.index_topk);
    r.get_int("hc_mult", c.hc_mult);
    r.get_int("hc_sinkhorn_iters", c.hc_sinkhorn_iters);
    r.get_double("hc_eps", c.hc_eps);
    r.get_int("n_routed_experts", c.n_routed_experts);
    r.get_int("n_shared_experts", c.n_shared_experts);
    r.get_int("num_experts_per_tok", c.num_experts_per_tok);
    r.get_int("moe_intermediate_size", c.moe_intermediate_size);
    r.get_int("num_hash_layers", c.num_hash_layers);
    r.get_double("routed_scaling_factor", c.routed_scaling_factor);
    r.get_double("swiglu_limit", c.swiglu_limit, false);
    r.get_double("rms_norm_eps", c.rms_norm_eps);
    r.get_bool("norm_topk_prob", c.norm_topk_prob);
    r.get_int("bos_token_id", c.bos_token_id, false);
    if (r.has("eos_token_id")) {
        r.get_int_list(root["eos_token_id"].value_unsafe(), "eos_token_id", c.eos_token_ids);
    }
    element ratios;
    if (root["compress_ratios"].get(ratios)) {
        r.error = r.error.empty() ? "config.json: missing field 'compress_ratios'" : r.error;
    } else {
        r.get_int_list(ratios, "compress_ratios", c.compress_ratios);
    }
    std::string s;
    if (r.get_string("scoring_func", s, false) && s != "sqrtsoftplus" && r.error.empty()) {
        r.error = fail_value("scoring_func", s, "'sqrtsoftplus'");
    }
    if (r.get_string("topk_method", s, false) && s != "noaux_tc" && r.error.empty()) {
        r.error = fail_value("topk_method", s, "'noaux_tc'");
    }
    if (r.get_string("hidden_act", s, false) && s != "silu" && r.error.empty()) {
        r.error = fail_value("hidden_act", s, "'silu'");
    }
    if (r.get_string("expert_dtype", s, false) && s != "fp4" && s != "fp8" && r.error.empty()) {
        r.error = fail_value("expert_dtype", s, "'fp4' or 'fp8'");
    }
    bool tie = false;
    r.get_bool("tie_word_embeddings", tie);
    element rs;
    if (!root["rope_scaling"].get(rs) && rs.is_object()) {
        reader rr{rs, {}};
        std::string type;
        if (!rr.get_string("type", type, false)) {
            rr.get_string("rope_type", type, false);
        }
        if (type == "yarn") {
            c.rope_scaling.yarn = true;
            rr.get_double("factor", c.rope_scaling.factor);
            rr.get_int("original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings);
            rr.get_double("beta_fast", c.rope_scaling.beta_fast, false);
            rr.get_double("beta_slow", c.rope_scaling.beta_slow, false);
        } else if (!type.empty() && r.error.empty()) {
            r.error = fail_value("rope_scaling.type", type, "'yarn'");
        }
        if (!rr.error.empty() && r.error.empty()) {
            r.error = "config.json: rope_scaling: " + rr.error.substr(13);
        }
    }
    element qc;
    if (!root["quantization_config"].get(qc) && qc.is_object()) {
        element wbs;
        if (!qc["weight_block_size"].get(wbs)) {
            r.get_int_list(wbs, "quantization_config.weight_block_size", c.weight_block_size);
        }
    }
    if (!r.error.empty()) {
        return make_error(errc::bad_format, r.error);
    }

    // Structural checks: each names the field a user would have to fix.
    auto bad = [](const std::string& msg) { return make_error(errc::bad_format, "config.json: " + msg); };
    auto positive = [&](const char* name, int64_t v) -> bool { return v > 0 || (void(name), false); };
    struct named {
        const char* name;
        int64_t value;
    };
    for (named n : {named{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                    {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
                    {"head_dim", c.head_dim}, {"qk_rope_head_dim", c.qk_rope_head_dim}, {"q_lora_rank", c.q_lora_rank},
                    {"o_groups", c.o_groups}, {"o_lora_rank", c.o_lora_rank}, {"sliding_window", c.sliding_window},
                    {"hc_mult", c.hc_mult}, {"hc_sinkhorn_iters", c.hc_sinkhorn_iters},
                    {"n_routed_experts", c.n_routed_experts}, {"num_experts_per_tok", c.num_experts_per_tok},
                    {"moe_intermediate_size", c.moe_intermediate_size},
                    {"max_position_embeddings", c.max_position_embeddings}}) {
        if (!positive(n.name, n.value)) {
            return bad(std::string("field '") + n.name + "' must be positive, got " + std::to_string(n.value));
        }
    }
    if (kv_heads != 1) {
        return bad("num_key_value_heads must be 1 (V4 shares one K=V head), got " + std::to_string(kv_heads));
    }
    if (c.qk_rope_head_dim % 2 != 0 || c.qk_rope_head_dim >= c.head_dim) {
        return bad("qk_rope_head_dim must be even and smaller than head_dim");
    }
    if (c.num_attention_heads % c.o_groups != 0) {
        return bad("num_attention_heads (" + std::to_string(c.num_attention_heads) + ") must be divisible by o_groups (" +
                   std::to_string(c.o_groups) + ")");
    }
    if (c.num_experts_per_tok > c.n_routed_experts) {
        return bad("num_experts_per_tok exceeds n_routed_experts");
    }
    if (c.n_shared_experts < 0 || c.n_shared_experts > 1) {
        return bad("n_shared_experts must be 0 or 1, got " + std::to_string(c.n_shared_experts));
    }
    if (c.num_hash_layers < 0 || c.num_hash_layers > c.num_hidden_layers) {
        return bad("num_hash_layers must be between 0 and num_hidden_layers");
    }
    if (int64_t(c.compress_ratios.size()) < c.num_hidden_layers + c.num_nextn_predict_layers) {
        return bad("compress_ratios has " + std::to_string(c.compress_ratios.size()) + " entries; need one per layer (" +
                   std::to_string(c.num_hidden_layers) + ") plus one per MTP block (" +
                   std::to_string(c.num_nextn_predict_layers) + ")");
    }
    bool any_csa = false;
    for (size_t i = 0; i < c.compress_ratios.size(); ++i) {
        int64_t v = c.compress_ratios[i];
        if (v < 0 || v == 1 || v == 2 || (v > 0 && v != 4 && v % 4 != 0)) {
            return bad("compress_ratios[" + std::to_string(i) + "] = " + std::to_string(v) +
                       " is not supported (0 = sliding window, 4 = CSA, a multiple of 4 above 4 = HCA)");
        }
        any_csa = any_csa || v == 4;
    }
    if (any_csa) {
        if (c.index_n_heads <= 0 || c.index_head_dim <= c.qk_rope_head_dim || c.index_topk <= 0) {
            return bad("CSA layers (ratio 4) need positive index_n_heads, index_topk and index_head_dim > qk_rope_head_dim");
        }
    }
    if (c.weight_block_size.size() != 2 || c.weight_block_size[0] <= 0 || c.weight_block_size[1] <= 0) {
        return bad("quantization_config.weight_block_size must be two positive integers");
    }
    if (tie) {
        return bad("tie_word_embeddings = true is not a V4 layout (V4 has separate embed and head)");
    }
    if (c.eos_token_ids.empty()) {
        c.eos_token_ids = {1};
    }
    return c;
}

result<model_config> load_model_config(const std::string& model_dir) {
    std::string path = model_dir + "/config.json";
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        return make_error(errc::not_found, "cannot open " + path + " (is this a Hugging Face checkpoint directory?)");
    }
    std::stringstream ss;
    ss << f.rdbuf();
    auto r = parse_model_config(ss.str());
    if (!r) {
        return make_error(r.err().code, path + ": " + r.err().message);
    }
    return r;
}

} // namespace cachalot

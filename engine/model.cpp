// Loading a checkpoint directory into a model; see model.h.
#include "engine/model.h"

namespace cachalot {

result<std::unique_ptr<model>> model::load(const std::string& dir, const load_options& opts) {
    auto cfg = load_model_config(dir);
    if (!cfg) {
        return std::move(cfg).take_error();
    }
    auto ck = checkpoint::open(dir);
    if (!ck) {
        return std::move(ck).take_error();
    }
    std::unique_ptr<model> m(new model());
    m->dir_ = dir;
    m->config_ = std::move(*cfg);
    m->checkpoint_ = std::move(*ck);
    auto w = load_model_weights(m->checkpoint_, m->config_, opts.with_mtp);
    if (!w) {
        return make_error(w.err().code, dir + ": " + w.err().message);
    }
    m->weights_ = std::move(*w);
    if (opts.pack_for_fast) {
        pack_fast_weights(m->weights_);
    }
    const auto& c = m->config_;
    for (int64_t l = 0; l < c.num_hidden_layers + c.num_nextn_predict_layers; ++l) {
        m->rope_.emplace_back(c, c.ratio(l));
    }
    return m;
}

} // namespace cachalot

// The engine honours every config.json value, not the fixture's: a checkpoint with other
// shapes (3 mHC streams, 7 Sinkhorn iterations, a 16-token window, 3 output groups, ratios 16 and
// an MTP block with its own CSA compressor and indexer) loads, and every feeding mode gives the
// same logits as one prefill, for the trunk and for the MTP head.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "engine/checkpoint_writer.h"
#include "engine/logits_runner.h"
#include "engine/model.h"
#include "tests/support/golden.h"
#include "tests/support/test_paths.h"

using namespace cachalot;
using namespace cachalot::test;

TEST_CASE("a checkpoint with other shapes and ratios runs identically in every feeding mode") {
    v4_model_config c;
    c.vocab_size = 1024;
    c.hidden_size = 192;
    c.num_hidden_layers = 5;
    c.num_hash_layers = 1;
    c.num_attention_heads = 6;
    c.head_dim = 64;
    c.qk_rope_head_dim = 16;
    c.q_lora_rank = 96;
    c.o_groups = 3;
    c.o_lora_rank = 48;
    c.index_n_heads = 8;
    c.index_head_dim = 32;
    c.index_topk = 5;
    c.moe_intermediate_size = 64;
    c.n_routed_experts = 6;
    c.num_experts_per_tok = 3;
    c.compress_ratios = {4, 0, 16, 4, 128, 4};
    c.hc_mult = 3;
    c.hc_sinkhorn_iters = 7;
    c.sliding_window = 16;
    c.routed_scaling_factor = 2.5;
    c.swiglu_limit = 7.0;
    std::string dir = make_temp_dir("cachalot-shapes");
    make_model_options o;
    o.out_dir = dir;
    o.seed = 7;
    auto st = make_random_checkpoint(c, o);
    REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.err().message));

    auto m = model::load(dir);
    REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.err().message));
    CHECK((*m)->config().hc_mult == 3);
    CHECK((*m)->config().sliding_window == 16);

    std::vector<int32_t> ids;
    uint32_t s = 12345;
    for (int i = 0; i < 150; ++i) {
        s = s * 1103515245u + 12345u;
        ids.push_back(int32_t((s >> 8) % 1024));
    }
    const int64_t V = 1024;
    for (logits_head head : {logits_head::main, logits_head::mtp}) {
        auto whole = compute_logits(**m, ids, int64_t(ids.size()), head, precision::exact);
        REQUIRE(whole.ok());
        for (float v : *whole) {
            REQUIRE(std::isfinite(v));
        }
        for (int64_t chunk : {int64_t(1), int64_t(5), int64_t(33)}) {
            CAPTURE(chunk);
            auto part = compute_logits(**m, ids, chunk, head, precision::exact);
            REQUIRE(part.ok());
            auto cmp = compare_logits(*whole, *part, V);
            INFO(cmp.report);
            CHECK(cmp.rel_max_diff <= 1e-6);
            CHECK(cmp.top1_agreement == 1.0);
        }
        auto fast = compute_logits(**m, ids, 64, head, precision::fast);
        REQUIRE(fast.ok());
        auto cmp = compare_logits(*whole, *fast, V);
        INFO(cmp.report);
        CHECK(cmp.all_finite);
        CHECK(cmp.top1_agreement >= 0.9);
    }
    std::filesystem::remove_all(dir);
}

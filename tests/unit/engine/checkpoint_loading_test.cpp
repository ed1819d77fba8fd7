// Bad checkpoints fail at load with the tensor or field named; they never crash later.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/checkpoint_writer.h"
#include "engine/logits_runner.h"
#include "engine/model.h"
#include "tests/support/test_paths.h"

using namespace cachalot;
using namespace cachalot::test;
namespace fs = std::filesystem;

namespace {

/// A copy of the tiny checkpoint whose config and safetensors header can be edited.
struct checkpoint_copy {
    std::string dir = make_temp_dir("cachalot-ckpt");
    std::string config = read_file(tiny_model_dir() + "/config.json");
    std::string st = read_file(tiny_model_dir() + "/model.safetensors");

    ~checkpoint_copy() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string header() const {
        uint64_t n;
        std::memcpy(&n, st.data(), 8);
        return st.substr(8, n);
    }
    void set_header(const std::string& h) {
        uint64_t n = h.size();
        std::string data = st.substr(8 + size_t(header().size()));
        st.assign(reinterpret_cast<const char*>(&n), 8);
        st += h + data;
    }
    void replace_in_header(const std::string& from, const std::string& to) {
        std::string h = header();
        auto pos = h.find(from);
        REQUIRE(pos != std::string::npos);
        h.replace(pos, from.size(), to);
        set_header(h);
    }
    std::string load_error() {
        std::ofstream(dir + "/config.json", std::ios::binary) << config;
        std::ofstream(dir + "/model.safetensors", std::ios::binary) << st;
        auto m = model::load(dir);
        return m.ok() ? std::string() : m.err().message;
    }
};

} // namespace

TEST_CASE("an untouched copy of the tiny checkpoint loads") {
    checkpoint_copy c;
    CHECK(c.load_error().empty());
}

TEST_CASE("a missing tensor is named at load") {
    checkpoint_copy c;
    c.replace_in_header("\"layers.2.attn.wkv.weight\"", "\"layers.2.attn.wkv.weight_renamed\"");
    std::string e = c.load_error();
    CHECK(e.find("layers.2.attn.wkv.weight") != std::string::npos);
    CHECK(e.find("missing") != std::string::npos);
}

TEST_CASE("a tensor whose shape disagrees with the config is named at load") {
    checkpoint_copy c;
    // 8 routed experts in the file; claiming 9 makes every gate tensor the wrong shape.
    auto pos = c.config.find("\"n_routed_experts\": 8");
    REQUIRE(pos != std::string::npos);
    c.config.replace(pos, 21, "\"n_routed_experts\": 9");
    std::string e = c.load_error();
    CHECK(e.find("layers.0.ffn.gate") != std::string::npos);
    CHECK(e.find("shape") != std::string::npos);
}

TEST_CASE("a truncated safetensors file is reported with the file and tensor") {
    checkpoint_copy c;
    c.st.resize(c.st.size() - 1000);
    std::string e = c.load_error();
    CHECK(e.find("model.safetensors") != std::string::npos);
    CHECK(e.find("truncated") != std::string::npos);
}

TEST_CASE("an unsupported model_type or config value is refused with the field named") {
    checkpoint_copy c;
    auto pos = c.config.find("\"deepseek_v4\"");
    c.config.replace(pos, 13, "\"deepseek_v3\"");
    CHECK(c.load_error().find("model_type") != std::string::npos);

    checkpoint_copy d;
    pos = d.config.find("\"sqrtsoftplus\"");
    d.config.replace(pos, 14, "\"softmax\"");
    CHECK(d.load_error().find("scoring_func") != std::string::npos);

    checkpoint_copy f;
    pos = f.config.find("\"hidden_size\": 256");
    f.config.replace(pos, 18, "\"hidden_size\": \"x\"");
    CHECK(f.load_error().find("hidden_size") != std::string::npos);
}

TEST_CASE("a weight stored in an unexpected dtype is named at load") {
    checkpoint_copy c;
    std::string h = c.header();
    auto at = h.find("\"layers.1.attn.wq_a.weight\"");
    REQUIRE(at != std::string::npos);
    auto dt = h.find("F8_E4M3", at);
    // Same byte size, wrong kind: an I64-free swap keeps offsets valid.
    h.replace(dt, 7, "F8_E8M0");
    c.set_header(h);
    std::string e = c.load_error();
    CHECK(e.find("layers.1.attn.wq_a.weight") != std::string::npos);
}

TEST_CASE("a sharded checkpoint with an index loads and gives the logits of the single file") {
    auto single = checkpoint::open(tiny_model_dir());
    REQUIRE(single.ok());
    // Alternate tensors between two shards so that weights and their .scale siblings land in
    // different files.
    std::vector<safetensors_tensor> shards[2];
    std::string weight_map;
    size_t i = 0;
    for (const auto& [name, t] : single->tensors()) {
        safetensors_tensor st;
        st.name = name;
        st.dtype = std::string(dtype_name(t.type));
        st.shape = t.shape;
        st.data.assign(t.data, t.data + t.size_bytes);
        int s = int(i++ % 2);
        weight_map += std::string(weight_map.empty() ? "" : ",") + "\"" + name + "\": \"model-0000" +
                      std::to_string(s + 1) + "-of-00002.safetensors\"";
        shards[s].push_back(std::move(st));
    }
    std::string dir = make_temp_dir("cachalot-sharded");
    for (int s = 0; s < 2; ++s) {
        REQUIRE(write_safetensors(dir + "/model-0000" + std::to_string(s + 1) + "-of-00002.safetensors", shards[s]).ok());
    }
    std::ofstream(dir + "/model.safetensors.index.json") << "{\"metadata\": {}, \"weight_map\": {" << weight_map << "}}";
    fs::copy_file(tiny_model_dir() + "/config.json", dir + "/config.json");

    auto sharded = model::load(dir);
    REQUIRE_MESSAGE(sharded.ok(), (sharded.ok() ? "" : sharded.err().message));
    auto whole = model::load(tiny_model_dir());
    REQUIRE(whole.ok());
    std::vector<int32_t> ids = {0, 17, 300, 5, 999, 42, 7, 128};
    auto a = compute_logits(**whole, ids, 8, logits_head::main, precision::exact);
    auto b = compute_logits(**sharded, ids, 8, logits_head::main, precision::exact);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(*a == *b);

    // An index naming a tensor its shard lacks fails at load with the tensor named.
    std::ofstream(dir + "/model.safetensors.index.json")
        << "{\"weight_map\": {" << weight_map << ", \"ghost.weight\": \"model-00001-of-00002.safetensors\"}}";
    auto ghost = model::load(dir);
    REQUIRE_FALSE(ghost.ok());
    CHECK(ghost.err().message.find("ghost.weight") != std::string::npos);
    fs::remove_all(dir);
}

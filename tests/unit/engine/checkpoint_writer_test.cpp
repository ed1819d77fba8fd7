// Tests of the safetensors writer and the random V4 checkpoint generator: the written header must
// list exactly the tensors (names, shapes, dtypes) of the shared tiny-v4 fixture, quantised values
// must dequantise to the floats they were made from, output must be a function of the seed, and
// an existing checkpoint must not be overwritten without force. Headers are read back with
// simdjson, independently of the project's own loader.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/checkpoint_writer.h"
#include "kernels/dtype.h"
#include "tests/support/test_paths.h"

using namespace cachalot;
namespace fs = std::filesystem;

namespace {

struct tensor_info {
    std::string dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0;
    uint64_t end = 0;
};

/// A safetensors file read whole, its header parsed with simdjson.
struct st_file {
    std::string bytes;
    uint64_t header_len = 0;
    std::map<std::string, tensor_info> tensors;
    std::map<std::string, std::string> metadata;

    const uint8_t* data(const std::string& name) const {
        return reinterpret_cast<const uint8_t*>(bytes.data()) + 8 + header_len + tensors.at(name).begin;
    }
};

st_file read_st(const std::string& path) {
    st_file f;
    f.bytes = test::read_file(path);
    REQUIRE(f.bytes.size() >= 8);
    for (int i = 0; i < 8; ++i) {
        f.header_len |= uint64_t(uint8_t(f.bytes[size_t(i)])) << (8 * i);
    }
    REQUIRE(8 + f.header_len <= f.bytes.size());
    simdjson::dom::parser parser;
    simdjson::padded_string json(f.bytes.data() + 8, size_t(f.header_len));
    simdjson::dom::object root;
    REQUIRE(parser.parse(json).get(root) == simdjson::SUCCESS);
    for (auto field : root) {
        std::string key(field.key);
        // Views are bound to locals: iterating a temporary simdjson_result's value dangles.
        if (key == "__metadata__") {
            simdjson::dom::object meta;
            REQUIRE(field.value.get(meta) == simdjson::SUCCESS);
            for (auto m : meta) {
                std::string_view v;
                REQUIRE(m.value.get(v) == simdjson::SUCCESS);
                f.metadata[std::string(m.key)] = std::string(v);
            }
            continue;
        }
        tensor_info t;
        std::string_view dtype;
        simdjson::dom::array shape, offs;
        REQUIRE(field.value["dtype"].get(dtype) == simdjson::SUCCESS);
        REQUIRE(field.value["shape"].get(shape) == simdjson::SUCCESS);
        REQUIRE(field.value["data_offsets"].get(offs) == simdjson::SUCCESS);
        t.dtype = std::string(dtype);
        for (auto d : shape) {
            int64_t v = 0;
            REQUIRE(d.get(v) == simdjson::SUCCESS);
            t.shape.push_back(v);
        }
        REQUIRE(offs.size() == 2);
        REQUIRE(offs.at(0).get(t.begin) == simdjson::SUCCESS);
        REQUIRE(offs.at(1).get(t.end) == simdjson::SUCCESS);
        f.tensors[key] = t;
    }
    return f;
}

std::string make_checkpoint(const std::string& prefix, uint64_t seed) {
    std::string dir = test::make_temp_dir(prefix);
    make_model_options o;
    o.preset = "demo";
    o.out_dir = dir;
    o.seed = seed;
    status st = make_random_checkpoint(o);
    REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.err().message));
    return dir;
}

/// A canonical text of a JSON value (object keys sorted, numbers as doubles) for semantic equality.
std::string canonical(simdjson::dom::element e) {
    using simdjson::dom::element_type;
    switch (e.type()) {
    case element_type::OBJECT: {
        std::map<std::string, std::string> kv;
        simdjson::dom::object obj = e.get_object().value_unsafe();
        for (auto f : obj) {
            kv[std::string(f.key)] = canonical(f.value);
        }
        std::string out = "{";
        for (auto& [k, v] : kv) {
            out += k + ":" + v + ",";
        }
        return out + "}";
    }
    case element_type::ARRAY: {
        std::string out = "[";
        simdjson::dom::array arr = e.get_array().value_unsafe();
        for (auto v : arr) {
            out += canonical(v) + ",";
        }
        return out + "]";
    }
    case element_type::STRING: return "s:" + std::string(e.get_string().value());
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "n:%.17g", double(e.get_double().value()));
        return buf;
    }
    case element_type::BOOL: return e.get_bool().value() ? "true" : "false";
    case element_type::NULL_VALUE: return "null";
    }
    return "?";
}

std::string canonical_file(const std::string& path) {
    simdjson::dom::parser parser;
    auto text = simdjson::padded_string::load(path);
    REQUIRE(text.error() == simdjson::SUCCESS);
    simdjson::dom::element doc;
    REQUIRE(parser.parse(text.value()).get(doc) == simdjson::SUCCESS);
    return canonical(doc);
}

/// Parameters a tensor list stands for: packed FP4 bytes count twice; block scales and the
/// tid2eid routing tables (integers, not weights) not at all.
uint64_t logical_params(const std::vector<safetensors_entry>& entries) {
    uint64_t total = 0;
    for (const auto& e : entries) {
        if (e.dtype == "F8_E8M0" || e.dtype == "I64") {
            continue;
        }
        uint64_t n = 1;
        for (auto d : e.shape) {
            n *= uint64_t(d);
        }
        total += e.dtype == "I8" ? 2 * n : n;
    }
    return total;
}

float e4m3_times_scale(uint8_t code, uint8_t scale) { return e4m3_to_f32(code) * e8m0_to_f32(scale); }

} // namespace

TEST_CASE("checkpoint writer produces the fixture's tensor names, shapes and dtypes") {
    std::string dir = make_checkpoint("cachalot-mm-names", 0);
    st_file ours = read_st(dir + "/model.safetensors");
    st_file fixture = read_st(test::tiny_model_dir() + "/model.safetensors");

    CHECK(ours.metadata == std::map<std::string, std::string>{{"format", "pt"}});
    CHECK(ours.tensors.size() == fixture.tensors.size());
    for (const auto& [name, t] : fixture.tensors) {
        auto it = ours.tensors.find(name);
        if (it == ours.tensors.end()) {
            FAIL_CHECK("missing tensor " << name);
            continue;
        }
        CHECK_MESSAGE(it->second.dtype == t.dtype, name);
        CHECK_MESSAGE(it->second.shape == t.shape, name);
    }
    for (const auto& [name, t] : ours.tensors) {
        CHECK_MESSAGE(fixture.tensors.count(name) == 1, "extra tensor " << name);
    }

    // Data is packed back to back, 8-byte aligned after the header, and fills the file exactly.
    CHECK(ours.header_len % 8 == 0);
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const auto& [name, t] : ours.tensors) {
        ranges.push_back({t.begin, t.end});
    }
    std::sort(ranges.begin(), ranges.end());
    uint64_t pos = 0;
    for (auto [b, e] : ranges) {
        CHECK(b == pos);
        pos = e;
    }
    CHECK(8 + ours.header_len + pos == ours.bytes.size());
    fs::remove_all(dir);
}

TEST_CASE("checkpoint writer's tensor list matches the header it writes and scales with the config") {
    auto demo = v4_preset("demo");
    REQUIRE(demo.ok());
    auto list = v4_tensor_list(*demo);
    REQUIRE(list.ok());
    st_file fixture = read_st(test::tiny_model_dir() + "/model.safetensors");
    CHECK(list->size() == fixture.tensors.size());

    auto bench = v4_preset("bench");
    REQUIRE(bench.ok());
    auto big = v4_tensor_list(*bench);
    REQUIRE(big.ok());
    std::map<std::string, safetensors_entry> by_name;
    for (const auto& e : *big) {
        by_name[e.name] = e;
    }
    CHECK(by_name.at("embed.weight").shape == std::vector<int64_t>{32768, 512});
    CHECK(by_name.at("layers.0.attn.wq_b.weight").shape == std::vector<int64_t>{8 * 512, 128});
    CHECK(by_name.at("layers.0.attn.wq_b.scale").shape == std::vector<int64_t>{32, 1});
    CHECK(by_name.at("layers.2.ffn.gate.tid2eid").shape == std::vector<int64_t>{32768, 6});
    CHECK(by_name.count("layers.3.ffn.gate.tid2eid") == 0);
    CHECK(by_name.at("layers.3.ffn.gate.bias").shape == std::vector<int64_t>{64});
    CHECK(by_name.at("layers.12.ffn.experts.63.w2.weight").shape == std::vector<int64_t>{512, 128});
    CHECK(by_name.at("layers.3.attn.compressor.ape").shape == std::vector<int64_t>{128, 512});
    CHECK(by_name.count("layers.3.attn.indexer.wq_b.weight") == 0);
    CHECK(by_name.at("layers.4.attn.indexer.wq_b.weight").shape == std::vector<int64_t>{8 * 128, 128});
    CHECK(by_name.count("mtp.0.attn.compressor.wkv.weight") == 0); // the MTP block's ratio is 0
    CHECK(by_name.count("layers.13.attn_norm.weight") == 0);
    // Logical parameters (FP4 unpacked, scales excluded) as make_tiny_checkpoint.py counts them:
    // 424,373,547 in the trunk plus 29,699,331 in the MTP block.
    CHECK(logical_params(*big) == 454'072'878);

    // The demo count agrees with the fixture's own record of its parameters.
    simdjson::dom::parser parser;
    auto info_text = simdjson::padded_string::load(test::tiny_model_dir() + "/checkpoint_info.json");
    REQUIRE(info_text.error() == simdjson::SUCCESS);
    simdjson::dom::element info;
    REQUIRE(parser.parse(info_text.value()).get(info) == simdjson::SUCCESS);
    uint64_t fixture_total = 0;
    REQUIRE(info["logical_params"]["total_incl_mtp"].get(fixture_total) == simdjson::SUCCESS);
    CHECK(logical_params(*list) == fixture_total);
}

TEST_CASE("checkpoint writer's config.json equals the fixture's config.json") {
    std::string dir = make_checkpoint("cachalot-mm-config", 0);
    CHECK(canonical_file(dir + "/config.json") == canonical_file(test::tiny_model_dir() + "/config.json"));
    CHECK(canonical_file(dir + "/generation_config.json") ==
          canonical_file(test::tiny_model_dir() + "/generation_config.json"));
    CHECK(canonical_file(dir + "/tokenizer_config.json") ==
          canonical_file(test::tiny_model_dir() + "/tokenizer_config.json"));
    CHECK(test::read_file(dir + "/tokenizer.json") == test::read_file(test::tiny_model_dir() + "/tokenizer.json"));
    // Nothing temporary is left behind.
    for (const auto& e : fs::directory_iterator(dir)) {
        CHECK_MESSAGE(e.path().extension() != ".tmp", e.path().string());
    }
    fs::remove_all(dir);
}

TEST_CASE("checkpoint writer's FP8 weights dequantise to the floats they were drawn from") {
    const uint64_t seed = 7;
    std::string dir = make_checkpoint("cachalot-mm-fp8", seed);
    st_file f = read_st(dir + "/model.safetensors");
    for (std::string name : {"layers.0.attn.wq_b", "layers.1.attn.wo_a", "mtp.0.e_proj"}) {
        CAPTURE(name);
        const auto& w = f.tensors.at(name + ".weight");
        const auto& s = f.tensors.at(name + ".scale");
        REQUIRE(w.dtype == "F8_E4M3");
        REQUIRE(s.dtype == "F8_E8M0");
        int64_t rows = w.shape[0], cols = w.shape[1], sb_cols = s.shape[1];
        REQUIRE(s.shape[0] == (rows + 127) / 128);
        REQUIRE(sb_cols == (cols + 127) / 128);
        auto want = random_normal(seed, name + ".weight", size_t(rows * cols), 0.0f, 0.02f);
        const uint8_t* codes = f.data(name + ".weight");
        const uint8_t* scales = f.data(name + ".scale");
        std::vector<float> block_amax(size_t(s.shape[0] * sb_cols), 0.0f);
        double max_rel = 0;
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) {
                size_t b = size_t((r / 128) * sb_cols + c / 128);
                float x = want[size_t(r * cols + c)];
                float scale = e8m0_to_f32(scales[b]);
                float got = e4m3_times_scale(codes[r * cols + c], scales[b]);
                // Half an e4m3 ulp: 2^-4 relative for normals, 2^-10 * scale for subnormals.
                float tol = std::max(std::fabs(x) / 16.0f, scale / 1024.0f) * 1.0001f;
                REQUIRE(std::fabs(got - x) <= tol);
                max_rel = std::max(max_rel, double(std::fabs(got - x)) / std::max(1e-3, double(std::fabs(x))));
                block_amax[b] = std::max(block_amax[b], std::fabs(x));
            }
        }
        // Each scale is the smallest power of two that fits the block's amax in 448.
        for (size_t b = 0; b < block_amax.size(); ++b) {
            float scale = e8m0_to_f32(scales[b]);
            CHECK(block_amax[b] <= 448.0f * scale);
            CHECK(block_amax[b] > 224.0f * scale);
        }
        CHECK(max_rel < 0.07);
    }
    fs::remove_all(dir);
}

TEST_CASE("checkpoint writer's FP4 experts pack the even element in the low nibble") {
    SUBCASE("hand-made row") {
        // One row of 32: amax 6 gives scale 1, so each value is its own code.
        std::vector<float> w(32, 0.0f);
        w[0] = 0.5f;   // code 1
        w[1] = -3.0f;  // code 13
        w[2] = 6.0f;   // code 7
        w[3] = 1.5f;   // code 3
        w[31] = -0.5f; // code 9
        auto q = quantize_fp4_group(w, 1, 32);
        REQUIRE(q.packed.size() == 16);
        REQUIRE(q.scales.size() == 1);
        CHECK(q.scales[0] == 127); // 2^0
        CHECK(q.packed[0] == (1 | (13 << 4)));
        CHECK(q.packed[1] == (7 | (3 << 4)));
        CHECK(q.packed[15] == (0 | (9 << 4)));
        for (size_t i = 2; i < 15; ++i) {
            CHECK(q.packed[i] == 0);
        }
    }
    SUBCASE("codes round to the nearest level and never store negative zero") {
        CHECK(f32_to_fp4(0.0f) == 0);
        CHECK(f32_to_fp4(-0.1f) == 0);
        CHECK(f32_to_fp4(0.26f) == 1);
        CHECK(f32_to_fp4(2.6f) == 5);
        CHECK(f32_to_fp4(-4.9f) == (6 | 8));
        CHECK(f32_to_fp4(100.0f) == 7);
        for (int k = 0; k < 16; ++k) {
            if (k != 8) {
                CHECK(f32_to_fp4(k_fp4_values[size_t(k)]) == k);
            }
        }
    }
    SUBCASE("written experts dequantise to their source floats") {
        const uint64_t seed = 11;
        std::string dir = make_checkpoint("cachalot-mm-fp4", seed);
        st_file f = read_st(dir + "/model.safetensors");
        for (std::string name : {"layers.0.ffn.experts.3.w1", "layers.2.ffn.experts.7.w2"}) {
            CAPTURE(name);
            const auto& w = f.tensors.at(name + ".weight");
            REQUIRE(w.dtype == "I8");
            int64_t rows = w.shape[0], cols = 2 * w.shape[1];
            REQUIRE(f.tensors.at(name + ".scale").shape == std::vector<int64_t>{rows, cols / 32});
            auto want = random_normal(seed, name + ".weight", size_t(rows * cols), 0.0f, 0.02f);
            const uint8_t* packed = f.data(name + ".weight");
            const uint8_t* scales = f.data(name + ".scale");
            for (int64_t r = 0; r < rows; ++r) {
                for (int64_t c = 0; c < cols; ++c) {
                    uint8_t byte = packed[(r * cols + c) / 2];
                    uint8_t nib = (c % 2 == 0) ? (byte & 0xf) : (byte >> 4);
                    float scale = e8m0_to_f32(scales[r * (cols / 32) + c / 32]);
                    float got = k_fp4_values[nib] * scale;
                    float x = want[size_t(r * cols + c)];
                    // Half the gap between neighbouring levels: .25 up to 2, .5 up to 4, 1 above.
                    float a = std::fabs(x) / scale;
                    float tol = (a <= 2.0f ? 0.25f : a <= 4.0f ? 0.5f : 1.0f) * scale * 1.0001f;
                    REQUIRE(std::fabs(got - x) <= tol);
                    REQUIRE(a <= 6.0f);
                }
            }
        }
        fs::remove_all(dir);
    }
}

TEST_CASE("checkpoint writer output depends only on the seed") {
    std::string a = make_checkpoint("cachalot-mm-seed-a", 42);
    std::string b = make_checkpoint("cachalot-mm-seed-b", 42);
    std::string c = make_checkpoint("cachalot-mm-seed-c", 43);
    std::string fa = test::read_file(a + "/model.safetensors");
    std::string fb = test::read_file(b + "/model.safetensors");
    std::string fc = test::read_file(c + "/model.safetensors");
    CHECK(fa == fb);
    CHECK(fa.size() == fc.size());
    CHECK(fa != fc);
    // Same layout, different values: the header is the same and nearly every tensor differs.
    st_file sa = read_st(a + "/model.safetensors");
    st_file sc = read_st(c + "/model.safetensors");
    CHECK(sa.header_len == sc.header_len);
    CHECK(fa.compare(0, 8 + sa.header_len, fc, 0, 8 + sc.header_len) == 0);
    // Block scales follow the (seed-independent) amax of same-distribution weights and may
    // coincide; every value tensor must differ.
    for (const auto& [name, t] : sa.tensors) {
        if (t.dtype != "F8_E8M0") {
            CHECK_MESSAGE(std::memcmp(sa.data(name), sc.data(name), t.end - t.begin) != 0, name);
        }
    }
    for (const auto& d : {a, b, c}) {
        fs::remove_all(d);
    }
}

TEST_CASE("checkpoint writer refuses to overwrite a checkpoint without force") {
    std::string dir = make_checkpoint("cachalot-mm-force", 1);
    std::string before = test::read_file(dir + "/model.safetensors");
    make_model_options o;
    o.out_dir = dir;
    o.seed = 2;
    status st = make_random_checkpoint(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find("--force") != std::string::npos);
    CHECK(st.err().message.find(dir) != std::string::npos);
    CHECK(test::read_file(dir + "/model.safetensors") == before);

    o.force = true;
    st = make_random_checkpoint(o);
    REQUIRE(st.ok());
    CHECK(test::read_file(dir + "/model.safetensors") != before);
    CHECK(fs::exists(dir + "/config.json"));

    fs::remove_all(dir);
}

TEST_CASE("checkpoint writer counts a lone safetensors file as a checkpoint") {
    std::string dir = test::make_temp_dir("cachalot-mm-force-st");
    std::ofstream(dir + "/weights.safetensors") << "x";
    make_model_options o;
    o.out_dir = dir;
    status st = make_random_checkpoint(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find("weights.safetensors") != std::string::npos);
    CHECK_FALSE(fs::exists(dir + "/config.json"));
    fs::remove_all(dir);
}

TEST_CASE("checkpoint writer names an unknown preset and creates nothing") {
    std::string dir = test::make_temp_dir("cachalot-mm-preset");
    make_model_options o;
    o.preset = "huge";
    o.out_dir = dir + "/sub";
    status st = make_random_checkpoint(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find("huge") != std::string::npos);
    CHECK_FALSE(fs::exists(dir + "/sub"));
    fs::remove_all(dir);
}

TEST_CASE("checkpoint writer's tid2eid rows hold distinct valid expert ids") {
    std::string dir = make_checkpoint("cachalot-mm-tid2eid", 5);
    st_file f = read_st(dir + "/model.safetensors");
    auto cfg = v4_preset("demo");
    REQUIRE(cfg.ok());
    for (int64_t l = 0; l < cfg->num_hidden_layers; ++l) {
        std::string name = "layers." + std::to_string(l) + ".ffn.gate.tid2eid";
        CAPTURE(name);
        if (l >= cfg->num_hash_layers) {
            CHECK(f.tensors.count(name) == 0);
            continue;
        }
        const auto& t = f.tensors.at(name);
        REQUIRE(t.dtype == "I64");
        REQUIRE(t.shape == std::vector<int64_t>{cfg->vocab_size, cfg->num_experts_per_tok});
        const uint8_t* p = f.data(name);
        std::vector<int> hits(size_t(cfg->n_routed_experts), 0);
        for (int64_t r = 0; r < t.shape[0]; ++r) {
            std::set<int64_t> row;
            for (int64_t k = 0; k < t.shape[1]; ++k) {
                int64_t id;
                std::memcpy(&id, p + 8 * (r * t.shape[1] + k), 8);
                REQUIRE(id >= 0);
                REQUIRE(id < cfg->n_routed_experts);
                row.insert(id);
                ++hits[size_t(id)];
            }
            REQUIRE(row.size() == size_t(t.shape[1]));
        }
        // Uniform-ish: every expert serves some tokens.
        for (int h : hits) {
            CHECK(h > 0);
        }
    }
    fs::remove_all(dir);
}

TEST_CASE("safetensors writer pads the header and rejects inconsistent tensors") {
    std::string dir = test::make_temp_dir("cachalot-mm-st");
    std::vector<safetensors_tensor> ts = {
        {"a", "F32", {2}, {0, 0, 128, 63, 0, 0, 0, 64}},
        {"b", "BF16", {1, 1}, {0x80, 0x3f}},
        {"c", "I64", {}, {1, 0, 0, 0, 0, 0, 0, 0}},
    };
    REQUIRE(write_safetensors(dir + "/t.safetensors", ts).ok());
    st_file f = read_st(dir + "/t.safetensors");
    CHECK(f.header_len % 8 == 0);
    CHECK(f.bytes[8 + f.header_len - 1] != '\0');
    CHECK(f.tensors.at("a").begin == 0);
    CHECK(f.tensors.at("b").begin == 8);
    CHECK(f.tensors.at("c").shape.empty());
    CHECK(f.tensors.at("c").end == 18);
    float a1;
    std::memcpy(&a1, f.data("a") + 4, 4);
    CHECK(a1 == 2.0f);

    auto bad = ts;
    bad[1].data.push_back(0);
    CHECK_FALSE(write_safetensors(dir + "/bad.safetensors", bad).ok());
    auto dup = ts;
    dup[2].name = "a";
    auto st = write_safetensors(dir + "/dup.safetensors", dup);
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find("twice") != std::string::npos);
    auto unknown = ts;
    unknown[0].dtype = "F7";
    CHECK_FALSE(write_safetensors(dir + "/unknown.safetensors", unknown).ok());
    fs::remove_all(dir);
}

TEST_CASE("checkpoint writer rounds block scales up to powers of two") {
    CHECK(e8m0_ceil_pow2(1.0f) == 127);
    CHECK(e8m0_ceil_pow2(1.01f) == 128);
    CHECK(e8m0_ceil_pow2(0.5f) == 126);
    CHECK(e8m0_ceil_pow2(0.75f) == 127);
    CHECK(e8m0_ceil_pow2(0.0f) == 7); // clamped at 2^-120
    CHECK(e8m0_ceil_pow2(448.0f / 448.0f) == 127);
}

TEST_CASE("checkpoint writer validates configurations field by field") {
    auto cfg = v4_preset("demo");
    REQUIRE(cfg.ok());
    CHECK(validate(*cfg).ok());
    auto c = *cfg;
    c.hidden_size = 250;
    CHECK_FALSE(validate(c).ok());
    c = *cfg;
    c.compress_ratios = {0, 4};
    auto st = validate(c);
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find("compress_ratios") != std::string::npos);
    c = *cfg;
    c.compress_ratios[1] = 6;
    CHECK_FALSE(validate(c).ok());
    c.compress_ratios[1] = 2;
    CHECK_FALSE(validate(c).ok());
    c.compress_ratios[1] = 16;
    CHECK(validate(c).ok());
    c = *cfg;
    c.num_experts_per_tok = 9;
    CHECK_FALSE(validate(c).ok());
    c = *cfg;
    c.num_hash_layers = 5;
    CHECK_FALSE(validate(c).ok());
}

TEST_CASE("checkpoint writer leaves no complete-looking directory when a forced rewrite fails") {
    std::string dir = make_checkpoint("cachalot-mm-fail", 1);
    // A directory where the temporary weights file must go makes the write fail part-way.
    fs::create_directory(dir + "/model.safetensors.tmp");
    make_model_options o;
    o.out_dir = dir;
    o.force = true;
    status st = make_random_checkpoint(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find("model.safetensors.tmp") != std::string::npos);
    CHECK_FALSE(fs::exists(dir + "/config.json"));
    fs::remove_all(dir);
}

// Tests of engine/json: parsing (order, duplicates, escapes, numbers kept as written), the
// errors for malformed input and trailing documents, and both serialisers against what
// JSON.stringify and Python's json.dumps(ensure_ascii=False) print.
#include "engine/json.h"

#include <doctest/doctest.h>

#include <string>

using namespace cachalot;

namespace {

json_value must_parse(std::string_view text) {
    auto v = parse_json(text);
    REQUIRE_MESSAGE(v.ok(), (v.ok() ? "" : v.err().message));
    return std::move(v).value();
}

std::string parse_error(std::string_view text) {
    auto v = parse_json(text);
    REQUIRE_FALSE(v.ok());
    return v.err().message;
}

} // namespace

TEST_CASE("json objects keep insertion order and a duplicate key keeps its first place") {
    json_value v = must_parse(R"({"z": 1, "a": 2, "m": {"y": true, "b": null}, "z": 3})");
    REQUIRE(v.is_object());
    REQUIRE(v.size() == 3);
    CHECK(v.as_object()[0].first == "z");
    CHECK(v.find("z")->as_int64() == 3);
    CHECK(v.dump_compact() == R"({"z":3,"a":2,"m":{"y":true,"b":null}})");
    CHECK(v.dump_python() == R"({"z": 3, "a": 2, "m": {"y": true, "b": null}})");
    CHECK(v.find("missing") == nullptr);
    CHECK(v.find("m")->find("y")->as_bool());
}

TEST_CASE("json round-trips compactly with numbers written as in the input") {
    const char* docs[] = {
        R"({"a":[1,2.50,1e5,-0,1E-7,123456789012345678901234],"b":"x"})",
        R"([])",
        R"({})",
        R"("only a string")",
        R"([true,false,null,{"k":[{}]}])",
        R"(18446744073709551615)",
    };
    for (const char* d : docs) {
        CAPTURE(d);
        json_value v = must_parse(d);
        CHECK(v.dump_compact() == d);
        CHECK(must_parse(v.dump_compact()) == v);
        CHECK(must_parse(v.dump_python()) == v);
    }
    json_value big = must_parse("18446744073709551615");
    CHECK(big.is_uint64());
    CHECK(big.as_uint64() == 18446744073709551615ull);
    CHECK_FALSE(big.is_int64());
}

TEST_CASE("python dump writes floats and integers as Python's json.dumps does") {
    json_value v = must_parse(R"([1.0, 2.50, 1e5, 1e16, 1e-5, 0.0001, -0, 1E400, 123456789012345678901234, 3])");
    CHECK(v.dump_python() == "[1.0, 2.5, 100000.0, 1e+16, 1e-05, 0.0001, 0, Infinity, 123456789012345678901234, 3]");
    CHECK(python_float_repr(0.1) == "0.1");
    CHECK(python_float_repr(1e15) == "1000000000000000.0");
    CHECK(python_float_repr(-0.0) == "-0.0");
    CHECK(python_float_repr(1.5e-7) == "1.5e-07");
    CHECK(js_number_string(1e21) == "1e+21");
    CHECK(js_number_string(1e-7) == "1e-7");
    CHECK(js_number_string(0.000001) == "0.000001");
    CHECK(js_number_string(100.0) == "100");
    CHECK(json_value(2.0).dump_compact() == "2");
    CHECK(json_value(2.0).dump_python() == "2.0");
}

TEST_CASE("json strings escape like Python and JSON.stringify and keep non-ASCII raw") {
    json_value v = must_parse(R"(["q\"b\\s\/n\nr\rt\tb\bf\f\u0001\u001f\u007f", "é東京🐋", "\u00e9\ud83d\udc0b"])");
    std::string expected = R"(["q\"b\\s/n\nr\rt\tb\bf\f\u0001\u001f)" "\x7f" R"(", "é東京🐋", "é🐋"])";
    CHECK(v.dump_python() == expected);
    CHECK(v[1].as_string() == "é東京🐋");
    CHECK(v[2].as_string() == "é🐋");
    // A lone surrogate has no UTF-8 form and becomes U+FFFD.
    CHECK(must_parse(R"("\ud800x")").as_string() == "\xEF\xBF\xBDx");
}

TEST_CASE("malformed json is refused with its position") {
    CHECK(parse_error("{} {}").find("byte 3") != std::string::npos);
    CHECK(parse_error("1 2").find("after the JSON value") != std::string::npos);
    CHECK(parse_error("[1,").find("end of input") != std::string::npos);
    CHECK(parse_error("{\"a\" 1}").find("':'") != std::string::npos);
    CHECK(parse_error("{\n  \"a\": tru }").find("line 2, column 8") != std::string::npos);
    CHECK(parse_error("01").find("leading zeros") != std::string::npos);
    CHECK(parse_error("[1,]").find("expected a value") != std::string::npos);
    CHECK(parse_error("\"a\nb\"").find("control character") != std::string::npos);
    CHECK(parse_error("\"\\x\"").find("bad escape") != std::string::npos);
    CHECK(parse_error("").find("end of input") != std::string::npos);
    CHECK(parse_error("\"\xff\"").find("UTF-8") != std::string::npos);
    CHECK(parse_error(std::string(600, '[') + std::string(600, ']')).find("nesting") != std::string::npos);
    CHECK(parse_error("NaN").find("unexpected character") != std::string::npos);
}

TEST_CASE("json builders make values that serialise as written") {
    json_value v = json_value::object({{"role", "assistant"}, {"n", 3}, {"ok", true}, {"x", nullptr}});
    v.set("list", json_value::array({1, "two", 3.5}));
    v.set("n", 4);
    v.find("list")->push_back(json_value::object());
    CHECK(v.dump_compact() == R"({"role":"assistant","n":4,"ok":true,"x":null,"list":[1,"two",3.5,{}]})");
    CHECK(v.erase("x"));
    CHECK_FALSE(v.erase("x"));
    CHECK(v.size() == 4);
    json_value grown;
    grown.set("k", "v");
    CHECK(grown.dump_python() == R"({"k": "v"})");
    CHECK(json_value(int64_t(-5)).as_int64() == -5);
    CHECK(json_value(uint64_t(7)).is_int64());
}

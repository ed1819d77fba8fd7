// Unit tests of engine/tokenizer: loading (and its error messages), encode against ids that
// Hugging Face's tokenizer gives for the tiny-v4 fixture, BPE rules on small hand-made
// tokenizers (rank order, ties, string and array merges, ignore_merges), the added-token rules of
// the Rust crate (lstrip, rstrip, single_word, normalized=false first), decode with U+FFFD and
// unknown ids, the streaming decoder, thread safety and speed. The broad agreement check against
// Hugging Face over thousands of strings is tests/js/tokenizer_hf_compare.mjs.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "engine/tokenizer.h"
#include "tests/support/test_paths.h"

using cachalot::stream_decoder;
using cachalot::tokenizer;

namespace {

const tokenizer& tiny() {
    static const tokenizer tok = [] {
        auto r = tokenizer::load(cachalot::test::tiny_model_dir());
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
        return r.value();
    }();
    return tok;
}

using ids_t = std::vector<int32_t>;

// A small byte-level tokenizer.json: single-byte pieces for every printable ASCII char plus Ġ,
// then `extra_vocab` (ids from 100), the given merges JSON and added tokens JSON.
std::string small_tokenizer_json(const std::vector<std::string>& extra_vocab, const std::string& merges_json,
                                 const std::string& added_json = "[]", const std::string& model_extra = "") {
    std::string vocab = "{";
    int id = 0;
    for (char c = '!'; c <= '~'; ++c) {
        std::string s(1, c);
        if (c == '"' || c == '\\') {
            s = std::string("\\") + c;
        }
        vocab += "\"" + s + "\":" + std::to_string(id++) + ",";
    }
    vocab += "\"\xC4\xA0\":" + std::to_string(id++); // Ġ, the byte-level space
    int next = 100;
    for (const auto& v : extra_vocab) {
        vocab += ",\"" + v + "\":" + std::to_string(next++);
    }
    vocab += "}";
    return R"({"version":"1.0","added_tokens":)" + added_json +
           R"(,"normalizer":null,"pre_tokenizer":{"type":"Sequence","pretokenizers":[)"
           R"({"type":"Split","pattern":{"Regex":"\\s+|[^\\s]+"},"behavior":"Isolated","invert":false},)"
           R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]},)"
           R"("decoder":{"type":"ByteLevel"},"model":{"type":"BPE")" +
           model_extra + R"(,"vocab":)" + vocab + R"(,"merges":)" + merges_json + "}}";
}

tokenizer make(const std::string& json) {
    auto r = tokenizer::from_json(json, "test.json");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
    return r.value();
}

std::string load_error(const std::string& json) {
    auto r = tokenizer::from_json(json, "bad.json");
    REQUIRE_FALSE(r.ok());
    return r.err().message;
}

} // namespace

TEST_CASE("tokenizer loads the tiny-v4 tokenizer with its size, special tokens, BOS and EOS") {
    const tokenizer& tok = tiny();
    CHECK(tok.size() == 1024);
    CHECK(tok.bos_id() == std::optional<int32_t>(0));
    CHECK(tok.eos_id() == std::optional<int32_t>(1));
    CHECK(tok.token_id("<｜User｜>") == std::optional<int32_t>(1008));
    CHECK(tok.token_id("Ġthe") == std::optional<int32_t>(270));
    CHECK_FALSE(tok.token_id("no such piece").has_value());
    CHECK(tok.token_text(1009) == "<｜Assistant｜>");
    CHECK(tok.token_text(270) == "Ġthe");
    CHECK(tok.token_text(-1).empty());
    CHECK(tok.token_text(99999).empty());
    CHECK(tok.is_special(0));
    CHECK(tok.is_special(1008));
    CHECK_FALSE(tok.is_special(1010)); // <think> is an added token but not special
    CHECK(tok.is_added(1010));
    CHECK_FALSE(tok.is_added(270));
    CHECK(tok.token_bytes(270) == " the");
}

TEST_CASE("tokenizer encodes text to the ids Hugging Face gives") {
    const tokenizer& tok = tiny();
    // Reference ids from @huggingface/tokenizers, encode(text, {add_special_tokens: false}).
    CHECK(tok.encode("Hello world") == ids_t{75, 104, 358, 114, 293, 266, 733});
    CHECK(tok.encode("<think>hi</think>") == ids_t{1010, 107, 108, 1011});
    CHECK(tok.encode("The license of 2024.\n\n  x") == ids_t{87, 423, 502, 284, 35, 655, 55, 387, 35, 35, 123});
    CHECK(tok.encode("<｜User｜>你好<｜Assistant｜>") == ids_t{1008, 231, 192, 163, 232, 168, 192, 1009});
    CHECK(tok.encode("😀") == ids_t{243, 162, 155, 131});
    // U+0085 is whitespace to Oniguruma's \s; U+FEFF is not.
    CHECK(tok.encode("a\u0085b c\ufeffd") == ids_t{100, 197, 136, 101, 279, 242, 190, 194, 103});
    CHECK(tok.encode("").empty());
}

TEST_CASE("tokenizer round-trips decode(encode(text)) over varied text") {
    const tokenizer& tok = tiny();
    const std::vector<std::string> texts = {
        "plain ASCII text, with punctuation!!! and   spaces",
        "Ünïcödé ñ café naïve résumé Straße",
        "Москва Ελλάδα עברית العربية हिन्दी ไทย",
        "東京タワーはひらがなとカタカナ한국어",
        "emoji 👨‍👩‍👧‍👦 👍🏽 🇯🇵 1️⃣",
        "digits 1234567890 3.14159 ٠١٢٣",
        "tabs\tand\nnewlines\r\nand\r\n\r\nCRLF   \n\n\n",
        "\x01\x02 control \x1f\x7f chars",
        "code: for (int i = 0; i < n; ++i) { x[i] = y[i] * 2; }",
        "<｜User｜>hello<｜Assistant｜><think>why</think>answer<｜end▁of▁sentence｜>",
        "<｜User", // a partial added token
        " ",
        "e\u0301 combining",
    };
    for (const auto& text : texts) {
        CAPTURE(text);
        CHECK(tok.decode(tok.encode(text, true)) == text);
        CHECK(tok.decode(tok.encode(text, false)) == text);
    }
}

TEST_CASE("tokenizer matches added tokens in text only when asked to") {
    const tokenizer& tok = tiny();
    const std::string text = "x<｜User｜>hi<think>";
    ids_t matched = tok.encode(text, true);
    ids_t plain = tok.encode(text, false);
    CHECK(std::count(matched.begin(), matched.end(), 1008) == 1);
    CHECK(std::count(matched.begin(), matched.end(), 1010) == 1);
    for (int32_t id : plain) {
        CHECK_FALSE(tok.is_added(id));
    }
    CHECK(tok.decode(plain) == text);
    // Without matching, the whole string is ordinary text, so it equals encoding it piecewise.
    ids_t x = tok.encode("x", false);
    CHECK(std::equal(x.begin(), x.end(), plain.begin()));
}

TEST_CASE("tokenizer replaces invalid UTF-8 input by U+FFFD before encoding") {
    const tokenizer& tok = tiny();
    CHECK(tok.encode("a\xff"
                     "b") == tok.encode("a\uFFFD"
                                        "b"));
    CHECK(tok.encode("\xe4\xbd") == tok.encode("\uFFFD"));
}

TEST_CASE("tokenizer decode replaces invalid UTF-8 by U+FFFD and skips unknown ids") {
    const tokenizer& tok = tiny();
    ids_t emoji = tok.encode("😀");
    REQUIRE(emoji.size() == 4);
    // Three of the four bytes: one maximal invalid subsequence, one U+FFFD.
    CHECK(tok.decode(ids_t(emoji.begin(), emoji.begin() + 3)) == "\uFFFD");
    CHECK(tok.decode(ids_t{emoji[1], emoji[2]}) == "\uFFFD\uFFFD"); // stray continuation bytes
    CHECK(tok.decode(ids_t{-5, 100, 5000, 101, INT32_MAX}) == "ab");
    CHECK(tok.decode(ids_t{0, 1010, 104, 1, 1008}, true) == "<think>e");
    CHECK(tok.decode(ids_t{0, 104}, false) == "<｜begin▁of▁sentence｜>e");
    CHECK(tok.decode(ids_t{}).empty());
}

TEST_CASE("utf8_append_lossy follows the maximal-subpart rule and can hold back a tail") {
    auto lossy = [](std::string_view s, bool final = true) {
        std::string out;
        size_t used = cachalot::utf8_append_lossy(s, out, final);
        return std::make_pair(out, used);
    };
    CHECK(lossy("abc").first == "abc");
    CHECK(lossy("\xF0\x9F\x98").first == "\uFFFD");
    CHECK(lossy("\xE0\x80\x80").first == "\uFFFD\uFFFD\uFFFD"); // overlong: E0 needs A0..BF next
    CHECK(lossy("\xED\xA0\x80").first == "\uFFFD\uFFFD\uFFFD"); // surrogate
    CHECK(lossy("a\xC3(b").first == "a\uFFFD(b");
    CHECK(lossy("\xF4\x90\x80\x80").first == "\uFFFD\uFFFD\uFFFD\uFFFD"); // above U+10FFFF
    CHECK(lossy("\xC0\xAF").first == "\uFFFD\uFFFD");
    auto held = lossy("ok\xF0\x9F\x98", false);
    CHECK(held.first == "ok");
    CHECK(held.second == 2);
    auto bad_tail = lossy("ok\xF0(", false);
    CHECK(bad_tail.first == "ok\uFFFD(");
    CHECK(bad_tail.second == 4);
}

TEST_CASE("stream decoder holds back an emoji split across byte tokens") {
    const tokenizer& tok = tiny();
    const std::string text = "hi 😀 there 👨‍👩‍👧!";
    ids_t ids = tok.encode(text);
    stream_decoder dec;
    std::string streamed;
    size_t empty_feeds = 0;
    for (int32_t id : ids) {
        std::string piece = dec.feed(tok, id);
        if (piece.empty()) {
            ++empty_feeds;
        }
        // Every emitted piece is valid UTF-8 by itself.
        std::string check;
        CHECK(cachalot::utf8_append_lossy(piece, check, true) == piece.size());
        CHECK(check == piece);
        streamed += piece;
    }
    streamed += dec.flush();
    CHECK(streamed == text);
    CHECK(empty_feeds > 0); // some bytes of the emoji had to wait
    CHECK(dec.pending().empty());
}

TEST_CASE("stream decoder state can be copied and resumed mid-character") {
    const tokenizer& tok = tiny();
    ids_t ids = tok.encode("x😀y");
    stream_decoder dec;
    std::string first;
    size_t cut = 0;
    for (; cut < ids.size(); ++cut) {
        first += dec.feed(tok, ids[cut]);
        if (!dec.pending().empty()) {
            ++cut;
            break;
        }
    }
    REQUIRE_FALSE(dec.pending().empty());
    stream_decoder copy = dec;                                                     // same process
    stream_decoder resumed(std::string(dec.pending()), dec.skip_special_tokens()); // another machine
    std::string rest_a = copy.feed(tok, std::span<const int32_t>(ids).subspan(cut));
    rest_a += copy.flush();
    std::string rest_b = resumed.feed(tok, std::span<const int32_t>(ids).subspan(cut));
    rest_b += resumed.flush();
    CHECK(first + rest_a == "x😀y");
    CHECK(rest_a == rest_b);
}

TEST_CASE("stream decoder output equals decode for any ids, special tokens skipped or not") {
    const tokenizer& tok = tiny();
    // Deterministic pseudo-random id sequences, including unknown ids and lone UTF-8 bytes.
    uint32_t state = 12345;
    auto next = [&] {
        state = state * 1664525u + 1013904223u;
        return state >> 8;
    };
    for (int round = 0; round < 200; ++round) {
        ids_t ids;
        size_t n = next() % 30;
        for (size_t i = 0; i < n; ++i) {
            ids.push_back(static_cast<int32_t>(next() % 1100) - 20);
        }
        for (bool skip : {false, true}) {
            stream_decoder dec(skip);
            std::string streamed;
            for (int32_t id : ids) {
                streamed += dec.feed(tok, id);
            }
            streamed += dec.flush();
            CHECK(streamed == tok.decode(ids, skip));
        }
    }
}

TEST_CASE("tokenizer load reports malformed tokenizer.json by file and field") {
    auto missing = tokenizer::load("/nonexistent/dir/tokenizer.json");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.err().message.find("/nonexistent/dir/tokenizer.json") != std::string::npos);

    CHECK(load_error("{not json").find("bad.json") != std::string::npos);
    CHECK(load_error("[1,2]").find("not a JSON object") != std::string::npos);
    CHECK(load_error("{}").find("model") != std::string::npos);
    const std::string good = small_tokenizer_json({"ab"}, R"(["a b"])");
    CHECK(make(good).size() == 101);

    CHECK(load_error(small_tokenizer_json({"ab"}, R"(["a x y"])")).find("model.merges[0]") != std::string::npos);
    CHECK(load_error(small_tokenizer_json({"ab"}, R"(["a b", "q \u00e9"])")).find("model.merges[1]") !=
          std::string::npos);
    CHECK(load_error(small_tokenizer_json({}, R"(["a b"])")).find("not in model.vocab") != std::string::npos);
    CHECK(load_error(small_tokenizer_json({"ab"}, R"([["a"]])")).find("model.merges[0]") != std::string::npos);
    CHECK(load_error(small_tokenizer_json({"ab"}, R"("a b")")).find("model.merges") != std::string::npos);
    CHECK(load_error(small_tokenizer_json({"ab"}, "[]", R"([{"content":"x"}])")).find("added_tokens[0].id") !=
          std::string::npos);
    CHECK(load_error(small_tokenizer_json({"ab"}, "[]", R"([{"id":7}])")).find("added_tokens[0].content") !=
          std::string::npos);
    CHECK(load_error(small_tokenizer_json({"ab"}, "[]", R"([{"id":7,"content":"x","lstrip":"yes"}])"))
              .find("added_tokens[0].lstrip") != std::string::npos);

    std::string bad_vocab = good;
    bad_vocab.replace(bad_vocab.find("\"ab\":100"), 8, "\"ab\":\"x\"");
    CHECK(load_error(bad_vocab).find("model.vocab") != std::string::npos);

    std::string bad_regex = good;
    bad_regex.replace(bad_regex.find(R"(\\s+|[^\\s]+)"), 12, "(unclosed");
    CHECK(load_error(bad_regex).find("pre_tokenizer.pretokenizers[0].pattern") != std::string::npos);

    std::string unknown_pre = good;
    unknown_pre.replace(unknown_pre.find("\"Split\""), 7, "\"Whitespace\"");
    auto r = tokenizer::from_json(unknown_pre, "bad.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().code == cachalot::errc::unsupported);
    CHECK(r.err().message.find("Whitespace") != std::string::npos);
}

TEST_CASE("tokenizer accepts merges in both string and array form") {
    tokenizer a = make(small_tokenizer_json({"ab", "abc",
                                             "\xC4\xA0"
                                             "c"},
                                            R"(["a b", "ab c", "Ġ c"])"));
    tokenizer b = make(small_tokenizer_json({"ab", "abc",
                                             "\xC4\xA0"
                                             "c"},
                                            R"([["a","b"], ["ab","c"], ["Ġ","c"]])"));
    for (const char* text : {"abc", "abcab c", "cab  abc"}) {
        CAPTURE(text);
        CHECK(a.encode(text) == b.encode(text));
    }
    CHECK(a.encode("abc") == ids_t{101});
    CHECK(a.encode("ab c") == ids_t{100, *a.token_id("Ġ"), *a.token_id("c")}); // the split keeps " " apart
}

TEST_CASE("tokenizer applies BPE merges by rank, leftmost first on ties") {
    // "b c" outranks "a b": abc -> a + bc, not ab + c.
    tokenizer t = make(small_tokenizer_json({"ab", "bc"}, R"(["b c", "a b"])"));
    const int32_t a = *t.token_id("a");
    CHECK(t.encode("abc") == ids_t{a, 101});
    // Equal pairs overlap: the leftmost merges first.
    tokenizer u = make(small_tokenizer_json({"aa"}, R"(["a a"])"));
    CHECK(u.encode("aaa") == ids_t{100, a});
    CHECK(u.encode("aaaa") == ids_t{100, 100});
}

TEST_CASE("tokenizer honours ignore_merges for whole pre-tokens in the vocab") {
    // "abc" is in the vocab but no merge path reaches it.
    const std::string merges = R"(["a b"])";
    tokenizer off = make(small_tokenizer_json({"ab", "abc"}, merges));
    tokenizer on = make(small_tokenizer_json({"ab", "abc"}, merges, "[]", R"(,"ignore_merges":true)"));
    CHECK(off.encode("abc") == ids_t{100, *off.token_id("c")});
    CHECK(on.encode("abc") == ids_t{101});
    CHECK(on.encode("abcd") == off.encode("abcd"));
}

TEST_CASE("added tokens follow the lstrip, rstrip and single_word rules of the Rust crate") {
    const std::string added = R"([
        {"id":200,"content":"[L]","lstrip":true,"special":true},
        {"id":201,"content":"[R]","rstrip":true,"special":true},
        {"id":202,"content":"tok","single_word":true,"special":false,"normalized":false}])";
    tokenizer t =
        make(small_tokenizer_json({"\xC3\xAF", "\xC2\xBB", "\xC2\xBF"}, "[]", added)); // ï » ¿: U+FEFF's bytes
    const int32_t a = *t.token_id("a");
    const int32_t b = *t.token_id("b");
    const int32_t sp = *t.token_id("Ġ");
    CHECK(t.encode("a  [L]b") == ids_t{a, 200, b});
    CHECK(t.encode("a[R] \t b") == ids_t{a, 201, b});
    CHECK(t.encode("a \u0085[L]") == ids_t{a, 200});               // U+0085 is White_Space
    CHECK(t.encode("a\ufeff[L]") == ids_t{a, 100, 101, 102, 200}); // U+FEFF is not
    // single_word: only between non-word characters.
    CHECK(t.encode("a tok b") == ids_t{a, sp, 202, sp, b});
    ids_t inside = t.encode("atok b");
    CHECK(std::find(inside.begin(), inside.end(), 202) == inside.end());
    ids_t before_digit = t.encode("tok1");
    CHECK(std::find(before_digit.begin(), before_digit.end(), 202) == before_digit.end());
    CHECK(t.encode("tok.") == ids_t{202, *t.token_id(".")});
}

TEST_CASE("added tokens with normalized=false are matched before the normalized ones") {
    // "bc" (not normalized) is found first on the raw text, so "abc" (normalized) never matches
    // inside "abcd", although leftmost-longest over all tokens at once would pick it.
    const std::string added = R"([
        {"id":300,"content":"abc","normalized":true},
        {"id":301,"content":"bc","normalized":false}])";
    tokenizer t = make(small_tokenizer_json({}, "[]", added));
    CHECK(t.encode("abcd") == ids_t{*t.token_id("a"), 301, *t.token_id("d")});
    CHECK(t.encode("abc", false) == ids_t{*t.token_id("a"), *t.token_id("b"), *t.token_id("c")});
    // Leftmost-longest within one pass.
    const std::string nested = R"([
        {"id":300,"content":"<t>","normalized":false},
        {"id":301,"content":"<t>x","normalized":false}])";
    tokenizer n = make(small_tokenizer_json({}, "[]", nested));
    CHECK(n.encode("<t>x<t>") == ids_t{301, 300});
}

TEST_CASE("tokenizer encodes from several threads at once with the same results") {
    const tokenizer& tok = tiny();
    std::vector<std::string> texts;
    for (int i = 0; i < 200; ++i) {
        texts.push_back("text number " + std::to_string(i * 7919) + " with 東京 and 😀 <think>" +
                        std::string(size_t(i % 5), ' '));
    }
    std::vector<ids_t> expected;
    for (const auto& s : texts) {
        expected.push_back(tok.encode(s));
    }
    std::vector<int> failures(4, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int rep = 0; rep < 5; ++rep) {
                for (size_t i = 0; i < texts.size(); ++i) {
                    if (tok.encode(texts[i]) != expected[i]) {
                        ++failures[size_t(t)];
                    }
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    CHECK(failures == std::vector<int>(4, 0));
}

TEST_CASE("tokenizer encodes a megabyte of varied text in well under a second") {
    const tokenizer& tok = tiny();
    const std::vector<std::string> parts = {"the ", "license",      " software", "\n", "你好世界", "Москва ", "1234567",
                                            "!! ",  "😀👍🏽", "  ",        "\t", "naïve ",   "x=y+1;"};
    std::string text;
    uint32_t state = 7;
    while (text.size() < (1u << 20)) {
        state = state * 1664525u + 1013904223u;
        text += parts[(state >> 8) % parts.size()];
    }
    auto t0 = std::chrono::steady_clock::now();
    ids_t ids = tok.encode(text);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("encoded " << text.size() << " bytes into " << ids.size() << " ids in " << seconds << " s");
    CHECK(tok.decode(ids) == text);
    // About 0.3 s here; the bound leaves room for a loaded shared machine.
    CHECK(seconds < 2.0);
}

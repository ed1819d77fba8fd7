// Tests of engine/stop_matcher: hold-back of possible stop prefixes, matches spanning pushes,
// overlapping candidates, the earliest match winning, multi-byte UTF-8, flush and copies.
#include "engine/stop_matcher.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace cachalot;

namespace {

// Feeds pieces one by one; returns everything emitted (flushed at the end unless stopped).
std::string stream(stop_matcher& m, const std::vector<std::string>& pieces, bool& stopped) {
    std::string out;
    stopped = false;
    for (const auto& piece : pieces) {
        auto r = m.push(piece);
        out += r.emit;
        if (r.stopped) {
            stopped = true;
            return out;
        }
    }
    out += m.flush();
    return out;
}

// Every byte as its own piece: the harshest split of the same text.
std::vector<std::string> bytes_of(const std::string& s) {
    std::vector<std::string> out;
    for (char c : s) {
        out.emplace_back(1, c);
    }
    return out;
}

bool is_valid_utf8_prefix_free(const std::string& s) {
    // True when s does not end inside a multi-byte character.
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        if (i + len > s.size()) {
            return false;
        }
        i += len;
    }
    return true;
}

} // namespace

TEST_CASE("stop matcher with no stop strings passes text straight through") {
    stop_matcher m;
    auto r = m.push("hello ");
    CHECK(r.emit == "hello ");
    CHECK_FALSE(r.stopped);
    CHECK(m.push("world").emit == "world");
    CHECK(m.flush().empty());
    stop_matcher empty_only({""});
    CHECK(empty_only.push("abc").emit == "abc");
}

TEST_CASE("stop matcher holds back a possible prefix and releases it when it diverges") {
    stop_matcher m({"STOP"});
    auto r = m.push("abc ST");
    CHECK(r.emit == "abc ");
    CHECK(m.n_held_bytes() == 2);
    r = m.push("OX");
    CHECK(r.emit == "STOX");
    CHECK_FALSE(r.stopped);
    CHECK(m.n_held_bytes() == 0);
    r = m.push(" S");
    CHECK(r.emit == " ");
    CHECK(m.flush() == "S");
}

TEST_CASE("stop matcher emits the text before a stop string spanning many pushes") {
    stop_matcher m({"</answer>"});
    bool stopped = false;
    const std::string out = stream(m, {"The result", " is 4<", "/ans", "w", "er>", " trailing"}, stopped);
    CHECK(stopped);
    CHECK(out == "The result is 4");
    CHECK(m.stopped());
    CHECK(m.matched_index() == 0u);
    auto after = m.push("more");
    CHECK(after.stopped);
    CHECK(after.emit.empty());
    CHECK(m.flush().empty());
}

TEST_CASE("stop matcher finds the earliest of several overlapping stop strings") {
    SUBCASE("a later-listed stop that starts earlier wins") {
        stop_matcher m({"cd", "bcx", "abcz"});
        bool stopped = false;
        CHECK(stream(m, {"xxab", "cd"}, stopped) == "xxab");
        CHECK(stopped);
        CHECK(m.matched_index() == 0u);
    }
    SUBCASE("a held prefix of a long stop does not hide a short one inside it") {
        stop_matcher m({"abcd", "bc"});
        bool stopped = false;
        CHECK(stream(m, {"a", "b", "c", "d"}, stopped) == "a");
        CHECK(m.matched_index() == 1u);
    }
    SUBCASE("self-overlapping stop string") {
        stop_matcher m({"aab"});
        bool stopped = false;
        CHECK(stream(m, bytes_of("xaaaab!"), stopped) == "xaa");
        CHECK(stopped);
    }
    SUBCASE("same start: the first listed is reported") {
        stop_matcher m({"ab", "abc"});
        bool stopped = false;
        CHECK(stream(m, {"zabc"}, stopped) == "z");
        CHECK(m.matched_index() == 0u);
    }
}

TEST_CASE("stop matcher output is the same however the text is split") {
    const std::vector<std::string> stops{"\n\n", "User:", "éé"};
    const std::vector<std::string> texts{"Hello there.\nUser: hi",
                                         "no stop here at all",
                                         "a\nb\n\nc",
                                         "caf\xc3\xa9 \xc3\xa9\xc3\xa9 done",
                                         "Use User",
                                         "UseUser:"};
    for (const auto& text : texts) {
        CAPTURE(text);
        stop_matcher whole(stops);
        bool stopped_whole = false;
        const std::string want = stream(whole, {text}, stopped_whole);
        stop_matcher bytewise(stops);
        bool stopped_bytes = false;
        CHECK(stream(bytewise, bytes_of(text), stopped_bytes) == want);
        CHECK(stopped_bytes == stopped_whole);
    }
}

TEST_CASE("stop matcher never emits half of a multi-byte character") {
    stop_matcher m({"\xe2\x82\xac\xe2\x82\xac"}); // "€€"
    const std::string text = "price: 5\xe2\x82\xac, \xf0\x9f\x90\x8b whale \xe2\x82\xac\xe2\x82\xac rest";
    std::string out;
    bool stopped = false;
    for (const auto& b : bytes_of(text)) {
        auto r = m.push(b);
        CHECK(is_valid_utf8_prefix_free(r.emit));
        out += r.emit;
        if (r.stopped) {
            stopped = true;
            break;
        }
    }
    CHECK(stopped);
    CHECK(out == "price: 5\xe2\x82\xac, \xf0\x9f\x90\x8b whale ");

    stop_matcher plain;
    CHECK(plain.push("a\xe2\x82").emit == "a");
    CHECK(plain.flush() == "\xe2\x82");
}

TEST_CASE("stop matcher state copies and continues independently") {
    stop_matcher m({"END"});
    CHECK(m.push("xyz EN").emit == "xyz ");
    stop_matcher copy = m;
    auto a = m.push("D!");
    auto b = copy.push("Z!");
    CHECK(a.stopped);
    CHECK(a.emit.empty());
    CHECK_FALSE(b.stopped);
    CHECK(b.emit == "ENZ!");
}

// Loading tokenizer.json and encoding text (see tokenizer.h). The encode pipeline follows the
// Rust `tokenizers` crate step by step: (1) added tokens are found leftmost-longest, first those
// with normalized=false on the raw text, then those with normalized=true in the gaps (the only
// normalizer accepted is the empty one, so no text changes); (2) each remaining segment runs
// through the pre-tokenizer steps (Split with its behaviour, ByteLevel); (3) each pre-token is
// BPE-merged by rank over its bytes, with a shared per-pre-token cache. Decoding helpers are in
// tokenizer_decode.cpp and the regex layer in tokenizer_regex.cpp. Not handled: the
// post-processor (BOS is added by callers), truncation/padding, dropout, subword prefixes.
#include "engine/tokenizer.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <deque>
#include <fstream>
#include <filesystem>
#include <mutex>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "engine/tokenizer_regex.h"

namespace cachalot {

namespace {

// ---- GPT-2 byte <-> unicode mapping ---------------------------------------------------------

struct byte_level_tables {
    std::array<std::string, 256> byte_to_char; // UTF-8 of the char standing for each byte
    std::unordered_map<uint32_t, uint8_t> char_to_byte;
};

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

const byte_level_tables& byte_level() {
    static const byte_level_tables t = [] {
        byte_level_tables r;
        uint32_t next = 256;
        for (uint32_t b = 0; b < 256; ++b) {
            bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            uint32_t cp = printable ? b : next++;
            append_utf8(r.byte_to_char[b], cp);
            r.char_to_byte[cp] = static_cast<uint8_t>(b);
        }
        return r;
    }();
    return t;
}

// Decodes one code point from valid UTF-8 at s[i]; advances i.
uint32_t next_code_point(std::string_view s, size_t& i) {
    auto b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; k < len && i + k < s.size(); ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
    i += len;
    return cp;
}

std::string to_byte_level(std::string_view bytes) {
    const auto& t = byte_level();
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) {
        out += t.byte_to_char[static_cast<unsigned char>(c)];
    }
    return out;
}

// The ByteLevel decoder's view of a vocab piece: its chars mapped back to bytes, or the piece's
// own UTF-8 when any char is outside the byte alphabet (what the Rust decoder does).
std::string from_byte_level(std::string_view piece) {
    const auto& t = byte_level();
    std::string out;
    size_t i = 0;
    while (i < piece.size()) {
        uint32_t cp = next_code_point(piece, i);
        auto it = t.char_to_byte.find(cp);
        if (it == t.char_to_byte.end()) {
            return std::string(piece);
        }
        out += static_cast<char>(it->second);
    }
    return out;
}

// Strict UTF-8 check (no overlongs, surrogates or code points past U+10FFFF), without copying.
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    const size_t n = s.size();
    while (i < n) {
        auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            ++i;
            continue;
        }
        int len = 0;
        unsigned char lo = 0x80;
        unsigned char hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            lo = b == 0xE0 ? 0xA0 : 0x80;
            hi = b == 0xED ? 0x9F : 0xBF;
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            lo = b == 0xF0 ? 0x90 : 0x80;
            hi = b == 0xF4 ? 0x8F : 0xBF;
        } else {
            return false;
        }
        if (i + size_t(len) > n) {
            return false;
        }
        for (int k = 1; k < len; ++k) {
            auto c = static_cast<unsigned char>(s[i + size_t(k)]);
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) {
                return false;
            }
        }
        i += size_t(len);
    }
    return true;
}

// ---- added-token trie -----------------------------------------------------------------------

class token_trie {
public:
    void add(std::string_view s, int index) {
        int node = 0;
        for (char c : s) {
            auto b = static_cast<unsigned char>(c);
            int child = find_child(node, b);
            if (child < 0) {
                child = static_cast<int>(nodes_.size());
                nodes_.push_back({});
                nodes_[node].children.emplace_back(b, child);
            }
            node = child;
        }
        if (!s.empty()) {
            nodes_[node].token = index;
            first_byte_[static_cast<unsigned char>(s[0])] = true;
            empty_ = false;
        }
    }
    bool empty() const { return empty_; }

    /// The longest token starting at pos: {token index, length} or {-1, 0}.
    std::pair<int, size_t> longest_at(std::string_view text, size_t pos) const {
        if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
            return {-1, 0};
        }
        int node = 0;
        std::pair<int, size_t> best{-1, 0};
        for (size_t i = pos; i < text.size(); ++i) {
            node = find_child(node, static_cast<unsigned char>(text[i]));
            if (node < 0) {
                break;
            }
            if (nodes_[node].token >= 0) {
                best = {nodes_[node].token, i + 1 - pos};
            }
        }
        return best;
    }

private:
    struct node_t {
        std::vector<std::pair<unsigned char, int>> children;
        int token = -1;
    };
    int find_child(int node, unsigned char b) const {
        for (const auto& [k, v] : nodes_[node].children) {
            if (k == b) {
                return v;
            }
        }
        return -1;
    }
    std::vector<node_t> nodes_{1};
    std::array<bool, 256> first_byte_{};
    bool empty_ = true;
};

// ---- pre-tokenizer steps --------------------------------------------------------------------

enum class split_behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct pre_step {
    detail::tok_regex regex;
    split_behavior behavior = split_behavior::isolated;
    bool invert = false;
    bool use_regex = true;         // ByteLevel with use_regex=false splits nothing
    bool add_prefix_space = false; // ByteLevel only
};

struct added_token {
    std::string content;
    int32_t id = 0;
    bool special = false;
    bool normalized = false;
    bool lstrip = false;
    bool rstrip = false;
    bool single_word = false;
};

struct merge_value {
    int32_t rank;
    int32_t new_id;
};

uint64_t pair_key(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

constexpr uint8_t flag_known = 1;
constexpr uint8_t flag_added = 2;
constexpr uint8_t flag_special = 4;

// The GPT-2 pattern that ByteLevel applies when use_regex is true.
constexpr std::string_view gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr size_t max_cache_entries = 1 << 18;

} // namespace

struct tokenizer::impl {
    std::unordered_map<std::string, int32_t> vocab; // model vocab, byte-level spelling
    std::unordered_map<std::string, int32_t> added_by_content;
    std::vector<added_token> added;
    std::unordered_map<uint64_t, merge_value> merges;
    std::array<int32_t, 256> byte_ids{}; // initial BPE symbol per byte, -1 if absent
    std::vector<std::string> id_text;
    std::vector<std::string> id_bytes;
    std::vector<uint8_t> id_flags;
    token_trie raw_trie;        // added tokens with normalized=false
    token_trie normalized_trie; // added tokens with normalized=true
    std::vector<pre_step> steps;
    detail::tok_regex word_end;    // \w$ as the regex crate means it (single_word)
    detail::tok_regex word_start;  // ^\w
    detail::tok_regex space_end;   // \s*$ (lstrip)
    detail::tok_regex space_start; // ^\s* (rstrip)
    bool ignore_merges = false;
    std::optional<int32_t> unk_id;
    bool fuse_unk = false;
    std::optional<int32_t> bos;
    std::optional<int32_t> eos;

    mutable std::mutex cache_mu;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

    // One piece of the added-token split: a token id, or text (id < 0) to pre-tokenize.
    struct segment {
        int32_t id;
        size_t begin;
        size_t end;
    };
    void split_added(std::string_view text, const token_trie& trie, std::vector<segment>& out) const;
    void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
    void bpe(std::string_view piece, std::vector<int32_t>& out) const;
    void bpe_cached(std::string_view piece, std::vector<int32_t>& out) const;
};

// ---- loading --------------------------------------------------------------------------------

namespace {

using simdjson::dom::element;

struct json_reader {
    const std::string& source;
    error fail(const std::string& field, const std::string& what) const {
        return make_error(errc::bad_format, source + ": field '" + field + "' " + what);
    }
};

result<std::string> get_string(const json_reader& r, element e, const std::string& field) {
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) {
        return r.fail(field, "is not a string");
    }
    return std::string(s);
}

result<bool> get_bool_or(const json_reader& r, element obj, const char* key, bool fallback, const std::string& field) {
    element v;
    if (obj[key].get(v) != simdjson::SUCCESS || v.is_null()) {
        return fallback;
    }
    bool b = false;
    if (v.get_bool().get(b) != simdjson::SUCCESS) {
        return r.fail(field + "." + key, "is not a boolean");
    }
    return b;
}

result<pre_step> make_split_step(const json_reader& r, element cfg, const std::string& field) {
    pre_step step;
    element pat;
    if (cfg["pattern"].get(pat) != simdjson::SUCCESS) {
        return r.fail(field + ".pattern", "is missing");
    }
    std::string pcre;
    std::string_view s;
    if (pat["Regex"].get_string().get(s) == simdjson::SUCCESS) {
        pcre = detail::translate_onig_pattern(s);
    } else if (pat["String"].get_string().get(s) == simdjson::SUCCESS) {
        pcre = detail::quote_regex_literal(s);
    } else {
        return r.fail(field + ".pattern", "has neither a Regex nor a String");
    }
    auto re = detail::tok_regex::compile(pcre);
    if (!re) {
        return r.fail(field + ".pattern", re.err().message);
    }
    step.regex = std::move(re.value());
    std::string_view behavior = "Isolated";
    element b;
    if (cfg["behavior"].get(b) == simdjson::SUCCESS && b.get_string().get(behavior) != simdjson::SUCCESS) {
        return r.fail(field + ".behavior", "is not a string");
    }
    if (behavior == "Removed") {
        step.behavior = split_behavior::removed;
    } else if (behavior == "Isolated") {
        step.behavior = split_behavior::isolated;
    } else if (behavior == "MergedWithPrevious") {
        step.behavior = split_behavior::merged_with_previous;
    } else if (behavior == "MergedWithNext") {
        step.behavior = split_behavior::merged_with_next;
    } else if (behavior == "Contiguous") {
        step.behavior = split_behavior::contiguous;
    } else {
        return r.fail(field + ".behavior", "has unknown value '" + std::string(behavior) + "'");
    }
    auto inv = get_bool_or(r, cfg, "invert", false, field);
    CACHALOT_TRY(inv);
    step.invert = *inv;
    return step;
}

status add_pre_tokenizer(const json_reader& r, element cfg, const std::string& field, std::vector<pre_step>& steps,
                         bool& saw_byte_level) {
    std::string_view type;
    if (cfg["type"].get_string().get(type) != simdjson::SUCCESS) {
        return r.fail(field + ".type", "is missing or not a string");
    }
    if (type == "Sequence") {
        simdjson::dom::array list;
        if (cfg["pretokenizers"].get_array().get(list) != simdjson::SUCCESS) {
            return r.fail(field + ".pretokenizers", "is missing or not an array");
        }
        size_t i = 0;
        for (element sub : list) {
            CACHALOT_TRY(add_pre_tokenizer(r, sub, field + ".pretokenizers[" + std::to_string(i++) + "]", steps,
                                           saw_byte_level));
        }
        return ok_status();
    }
    if (saw_byte_level) {
        // Anything after ByteLevel would see byte-level text; this family never does that.
        return make_error(errc::unsupported,
                          r.source + ": field '" + field + "': pre-tokenizers after ByteLevel are not supported");
    }
    if (type == "Split") {
        auto step = make_split_step(r, cfg, field);
        CACHALOT_TRY(step);
        steps.push_back(std::move(step.value()));
        return ok_status();
    }
    if (type == "ByteLevel") {
        pre_step step;
        auto use_regex = get_bool_or(r, cfg, "use_regex", true, field);
        CACHALOT_TRY(use_regex);
        auto prefix = get_bool_or(r, cfg, "add_prefix_space", true, field);
        CACHALOT_TRY(prefix);
        step.use_regex = *use_regex;
        step.add_prefix_space = *prefix;
        auto re = detail::tok_regex::compile(detail::translate_onig_pattern(gpt2_pattern));
        CACHALOT_TRY(re);
        step.regex = std::move(re.value());
        steps.push_back(std::move(step));
        saw_byte_level = true;
        return ok_status();
    }
    return make_error(errc::unsupported, r.source + ": field '" + field + ".type': pre-tokenizer '" +
                                             std::string(type) +
                                             "' is not supported (only Sequence, Split and ByteLevel)");
}

// Reads bos_token / eos_token ("..." or {"content": "..."}) from tokenizer_config.json.
std::optional<std::string> config_token(element cfg, const char* key) {
    element v;
    if (cfg[key].get(v) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::string_view s;
    if (v.get_string().get(s) == simdjson::SUCCESS) {
        return std::string(s);
    }
    if (v["content"].get_string().get(s) == simdjson::SUCCESS) {
        return std::string(s);
    }
    return std::nullopt;
}

} // namespace

namespace {
result<std::shared_ptr<tokenizer::impl>> parse_tokenizer_json(std::string_view json_text, const std::string& source);
} // namespace

result<tokenizer> tokenizer::load(const std::string& path_in) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path path = path_in;
    if (fs::is_directory(path, ec)) {
        path /= "tokenizer.json";
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error(errc::not_found, "cannot open tokenizer file " + path.string());
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto parsed = parse_tokenizer_json(ss.str(), path.string());
    CACHALOT_TRY(parsed);
    std::shared_ptr<impl> p = std::move(parsed.value());
    auto lookup = [&p](const std::string& s) -> std::optional<int32_t> {
        if (auto it = p->added_by_content.find(s); it != p->added_by_content.end()) {
            return it->second;
        }
        if (auto it = p->vocab.find(s); it != p->vocab.end()) {
            return it->second;
        }
        return std::nullopt;
    };

    fs::path cfg_path = path.parent_path() / "tokenizer_config.json";
    if (fs::exists(cfg_path, ec)) {
        simdjson::dom::parser parser;
        element cfg;
        if (parser.load(cfg_path.string()).get(cfg) != simdjson::SUCCESS || !cfg.is_object()) {
            return make_error(errc::bad_format, cfg_path.string() + ": not a JSON object");
        }
        if (auto s = config_token(cfg, "bos_token")) {
            p->bos = lookup(*s);
        }
        if (auto s = config_token(cfg, "eos_token")) {
            p->eos = lookup(*s);
        }
    }
    return tokenizer(std::move(p));
}

result<tokenizer> tokenizer::from_json(std::string_view json_text, const std::string& source) {
    auto parsed = parse_tokenizer_json(json_text, source);
    CACHALOT_TRY(parsed);
    return tokenizer(std::move(parsed.value()));
}

namespace {

result<std::shared_ptr<tokenizer::impl>> parse_tokenizer_json(std::string_view json_text, const std::string& source) {
    using impl = tokenizer::impl;
    json_reader r{source};
    simdjson::dom::parser parser;
    simdjson::padded_string padded(json_text);
    element doc;
    if (auto err = parser.parse(padded).get(doc); err != simdjson::SUCCESS) {
        return make_error(errc::bad_format,
                          source + ": not valid JSON (" + std::string(simdjson::error_message(err)) + ")");
    }
    if (!doc.is_object()) {
        return make_error(errc::bad_format, source + ": the top level is not a JSON object");
    }
    auto p = std::make_shared<impl>();

    // Model.
    element model;
    if (doc["model"].get(model) != simdjson::SUCCESS || !model.is_object()) {
        return r.fail("model", "is missing or not an object");
    }
    std::string_view model_type = "BPE";
    element mt;
    if (model["type"].get(mt) == simdjson::SUCCESS && mt.get_string().get(model_type) != simdjson::SUCCESS) {
        return r.fail("model.type", "is not a string");
    }
    if (model_type != "BPE") {
        return make_error(errc::unsupported,
                          source + ": model.type '" + std::string(model_type) + "' is not supported (only BPE)");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        element v;
        std::string_view s;
        if (model[key].get(v) == simdjson::SUCCESS && !v.is_null() &&
            !(v.get_string().get(s) == simdjson::SUCCESS && s.empty())) {
            return make_error(errc::unsupported, source + ": model." + key + " is not supported");
        }
    }
    {
        element v;
        double d = 0;
        if (model["dropout"].get(v) == simdjson::SUCCESS && !v.is_null() &&
            !(v.get_double().get(d) == simdjson::SUCCESS && d == 0.0)) {
            return make_error(errc::unsupported,
                              source + ": model.dropout is not supported (inference is deterministic)");
        }
    }
    simdjson::dom::object vocab;
    if (model["vocab"].get_object().get(vocab) != simdjson::SUCCESS) {
        return r.fail("model.vocab", "is missing or not an object");
    }
    int32_t max_id = -1;
    for (auto field : vocab) {
        int64_t id = 0;
        if (field.value.get_int64().get(id) != simdjson::SUCCESS || id < 0 || id > INT32_MAX - 1) {
            return r.fail("model.vocab[\"" + std::string(field.key) + "\"]", "is not a valid token id");
        }
        p->vocab[std::string(field.key)] = static_cast<int32_t>(id);
        max_id = std::max(max_id, static_cast<int32_t>(id));
    }
    auto ig = get_bool_or(r, model, "ignore_merges", false, "model");
    CACHALOT_TRY(ig);
    p->ignore_merges = *ig;
    auto fu = get_bool_or(r, model, "fuse_unk", false, "model");
    CACHALOT_TRY(fu);
    p->fuse_unk = *fu;
    {
        element v;
        std::string_view s;
        if (model["unk_token"].get(v) == simdjson::SUCCESS && !v.is_null()) {
            if (v.get_string().get(s) != simdjson::SUCCESS) {
                return r.fail("model.unk_token", "is not a string");
            }
            auto it = p->vocab.find(std::string(s));
            if (it == p->vocab.end()) {
                return r.fail("model.unk_token", "names a token that is not in model.vocab");
            }
            p->unk_id = it->second;
        }
    }

    // Merges: "a b" strings (older files) or ["a", "b"] pairs (newer files).
    simdjson::dom::array merges;
    if (model["merges"].get_array().get(merges) != simdjson::SUCCESS) {
        return r.fail("model.merges", "is missing or not an array");
    }
    p->merges.reserve(merges.size());
    int32_t rank = 0;
    for (element m : merges) {
        auto field = [rank] { return "model.merges[" + std::to_string(rank) + "]"; };
        std::string a;
        std::string b;
        std::string_view s;
        simdjson::dom::array pair;
        if (m.get_string().get(s) == simdjson::SUCCESS) {
            size_t sp = s.find(' ');
            if (sp == std::string_view::npos || sp == 0 || sp + 1 == s.size() ||
                s.find(' ', sp + 1) != std::string_view::npos) {
                return r.fail(field(), "is not of the form \"left right\"");
            }
            a = s.substr(0, sp);
            b = s.substr(sp + 1);
        } else if (m.get_array().get(pair) == simdjson::SUCCESS) {
            std::string_view sa;
            std::string_view sb;
            if (pair.size() != 2 || pair.at(0).get_string().get(sa) != simdjson::SUCCESS ||
                pair.at(1).get_string().get(sb) != simdjson::SUCCESS) {
                return r.fail(field(), "is not a pair of two strings");
            }
            a = sa;
            b = sb;
        } else {
            return r.fail(field(), "is neither a string nor an array");
        }
        auto ia = p->vocab.find(a);
        auto ib = p->vocab.find(b);
        if (ia == p->vocab.end() || ib == p->vocab.end()) {
            return r.fail(field(), "names a token that is not in model.vocab");
        }
        auto inew = p->vocab.find(a + b);
        if (inew == p->vocab.end()) {
            return r.fail(field(), "merges into '" + a + b + "', which is not in model.vocab");
        }
        // A repeated pair keeps its first (best) rank; the Rust crate keeps the last insert, but
        // tokenizer files never repeat a merge.
        p->merges.try_emplace(pair_key(ia->second, ib->second), merge_value{rank, inew->second});
        ++rank;
    }

    // Added tokens.
    element added_el;
    if (doc["added_tokens"].get(added_el) == simdjson::SUCCESS && !added_el.is_null()) {
        simdjson::dom::array list;
        if (added_el.get_array().get(list) != simdjson::SUCCESS) {
            return r.fail("added_tokens", "is not an array");
        }
        size_t i = 0;
        for (element t : list) {
            std::string field = "added_tokens[" + std::to_string(i++) + "]";
            added_token at;
            int64_t id = 0;
            if (t["id"].get_int64().get(id) != simdjson::SUCCESS || id < 0 || id > INT32_MAX - 1) {
                return r.fail(field + ".id", "is missing or not a valid token id");
            }
            at.id = static_cast<int32_t>(id);
            element c;
            if (t["content"].get(c) != simdjson::SUCCESS) {
                return r.fail(field + ".content", "is missing");
            }
            auto content = get_string(r, c, field + ".content");
            CACHALOT_TRY(content);
            at.content = std::move(content.value());
            auto special = get_bool_or(r, t, "special", false, field);
            CACHALOT_TRY(special);
            at.special = *special;
            // The crate's default: special tokens are not normalized, others are.
            auto normalized = get_bool_or(r, t, "normalized", !at.special, field);
            CACHALOT_TRY(normalized);
            at.normalized = *normalized;
            auto lstrip = get_bool_or(r, t, "lstrip", false, field);
            CACHALOT_TRY(lstrip);
            at.lstrip = *lstrip;
            auto rstrip = get_bool_or(r, t, "rstrip", false, field);
            CACHALOT_TRY(rstrip);
            at.rstrip = *rstrip;
            auto single = get_bool_or(r, t, "single_word", false, field);
            CACHALOT_TRY(single);
            at.single_word = *single;
            max_id = std::max(max_id, at.id);
            p->added_by_content[at.content] = at.id;
            p->added.push_back(std::move(at));
        }
    }

    // Normalizer: only the empty one is exact here.
    element norm;
    if (doc["normalizer"].get(norm) == simdjson::SUCCESS && !norm.is_null()) {
        std::string_view type;
        simdjson::dom::array list;
        bool empty_sequence = norm["type"].get_string().get(type) == simdjson::SUCCESS && type == "Sequence" &&
                              norm["normalizers"].get_array().get(list) == simdjson::SUCCESS && list.size() == 0;
        if (!empty_sequence) {
            return make_error(errc::unsupported,
                              source + ": field 'normalizer' is not supported (only null or an empty Sequence)");
        }
    }

    // Pre-tokenizer.
    element pre;
    bool saw_byte_level = false;
    if (doc["pre_tokenizer"].get(pre) == simdjson::SUCCESS && !pre.is_null()) {
        CACHALOT_TRY(add_pre_tokenizer(r, pre, "pre_tokenizer", p->steps, saw_byte_level));
    }
    if (!saw_byte_level) {
        return make_error(errc::unsupported,
                          source + ": field 'pre_tokenizer' has no ByteLevel step; only byte-level BPE is supported");
    }

    // Decoder.
    element dec;
    if (doc["decoder"].get(dec) == simdjson::SUCCESS && !dec.is_null()) {
        std::string_view type;
        if (dec["type"].get_string().get(type) != simdjson::SUCCESS || type != "ByteLevel") {
            return make_error(errc::unsupported, source + ": field 'decoder' is not supported (only ByteLevel)");
        }
    }

    // Byte -> initial symbol.
    const auto& bl = byte_level();
    for (int b = 0; b < 256; ++b) {
        auto it = p->vocab.find(bl.byte_to_char[b]);
        p->byte_ids[b] = it == p->vocab.end() ? -1 : it->second;
    }

    // Id tables: added tokens win over the vocab (as in the crate's id_to_token).
    p->id_text.resize(size_t(max_id + 1));
    p->id_bytes.resize(size_t(max_id + 1));
    p->id_flags.assign(size_t(max_id + 1), 0);
    for (const auto& [piece, id] : p->vocab) {
        p->id_text[id] = piece;
        p->id_bytes[id] = from_byte_level(piece);
        p->id_flags[id] = flag_known;
    }
    for (const auto& at : p->added) {
        p->id_text[at.id] = at.content;
        p->id_bytes[at.id] = at.content; // added tokens bypass the byte-level decoder
        p->id_flags[at.id] = flag_known | flag_added | (at.special ? flag_special : 0);
    }
    for (size_t i = 0; i < p->added.size(); ++i) {
        (p->added[i].normalized ? p->normalized_trie : p->raw_trie).add(p->added[i].content, static_cast<int>(i));
    }

    // The regex crate's \w and \s, for single_word / lstrip / rstrip.
    auto compile = [](const char* pat) { return detail::tok_regex::compile(pat); };
    // \A and \z, not ^ and $: the regex crate's anchors see only the ends of the text.
    auto we = compile("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]\\z");
    auto ws = compile("\\A[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]");
    auto se = compile("\\p{White_Space}*\\z");
    auto ss = compile("\\A\\p{White_Space}*");
    CACHALOT_TRY(we);
    CACHALOT_TRY(ws);
    CACHALOT_TRY(se);
    CACHALOT_TRY(ss);
    p->word_end = std::move(we.value());
    p->word_start = std::move(ws.value());
    p->space_end = std::move(se.value());
    p->space_start = std::move(ss.value());

    return p;
}

} // namespace

// ---- encoding -------------------------------------------------------------------------------

void tokenizer::impl::split_added(std::string_view text, const token_trie& trie, std::vector<segment>& out) const {
    if (trie.empty()) {
        out.push_back({-1, 0, text.size()});
        return;
    }
    size_t start_offset = 0; // end of the previous accepted token
    size_t pos = 0;          // where the leftmost-longest scan resumes
    while (pos < text.size()) {
        auto [index, len] = trie.longest_at(text, pos);
        if (index < 0) {
            ++pos;
            continue;
        }
        size_t start = pos;
        size_t stop = pos + len;
        pos = stop; // matches do not overlap, even a discarded one
        const added_token& at = added[size_t(index)];
        if (at.single_word) {
            bool start_ok = start == 0 || !word_end.search(text.substr(0, start));
            bool stop_ok = stop == text.size() || !word_start.search(text.substr(stop));
            if (!start_ok || !stop_ok) {
                continue;
            }
        }
        if (at.lstrip) {
            size_t newstart = space_end.first_match(text.substr(0, start)).first;
            if (newstart == std::string_view::npos) {
                newstart = start;
            }
            start = std::max(newstart, start_offset);
        }
        if (at.rstrip) {
            auto m = space_start.first_match(text.substr(stop));
            if (m.first != std::string_view::npos) {
                stop += m.second;
            }
            pos = stop;
        }
        if (start_offset < start) {
            out.push_back({-1, start_offset, start});
        }
        out.push_back({at.id, start, stop});
        start_offset = stop;
    }
    if (start_offset < text.size()) {
        out.push_back({-1, start_offset, text.size()});
    }
}

void tokenizer::impl::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) {
        return;
    }
    std::vector<std::string_view> pieces{text};
    std::vector<std::string_view> next;
    std::vector<std::pair<size_t, size_t>> matches;
    std::vector<std::pair<std::pair<size_t, size_t>, bool>> parts; // (offsets, is_match)
    std::vector<std::pair<size_t, size_t>> kept;                   // offsets after the behaviour
    std::deque<std::string> arena;                                 // prefixed pieces
    for (const pre_step& step : steps) {
        next.clear();
        for (std::string_view piece : pieces) {
            if (step.add_prefix_space && (piece.empty() || piece[0] != ' ')) {
                arena.push_back(" " + std::string(piece));
                piece = arena.back();
            }
            if (!step.use_regex) {
                next.push_back(piece);
                continue;
            }
            matches.clear();
            step.regex.find_all(piece, matches);
            parts.clear();
            size_t prev = 0;
            for (auto [b, e] : matches) {
                if (prev < b) {
                    parts.push_back({{prev, b}, step.invert});
                }
                parts.push_back({{b, e}, !step.invert});
                prev = e;
            }
            if (prev < piece.size()) {
                parts.push_back({{prev, piece.size()}, step.invert});
            }
            // Apply the split behaviour exactly as the crate folds it.
            kept.clear();
            switch (step.behavior) {
            case split_behavior::isolated:
                for (auto& [off, m] : parts) {
                    kept.push_back(off);
                }
                break;
            case split_behavior::removed:
                for (auto& [off, m] : parts) {
                    if (!m) {
                        kept.push_back(off);
                    }
                }
                break;
            case split_behavior::merged_with_previous: {
                bool prev_match = false;
                for (auto& [off, m] : parts) {
                    if (m && !prev_match && !kept.empty()) {
                        kept.back().second = off.second;
                    } else {
                        kept.push_back(off);
                    }
                    prev_match = m;
                }
                break;
            }
            case split_behavior::merged_with_next: {
                bool prev_match = false;
                for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
                    if (it->second && !prev_match && !kept.empty()) {
                        kept.back().first = it->first.first;
                    } else {
                        kept.push_back(it->first);
                    }
                    prev_match = it->second;
                }
                std::reverse(kept.begin(), kept.end());
                break;
            }
            case split_behavior::contiguous: {
                bool prev_match = false;
                for (auto& [off, m] : parts) {
                    if (m == prev_match && !kept.empty()) {
                        kept.back().second = off.second;
                    } else {
                        kept.push_back(off);
                    }
                    prev_match = m;
                }
                break;
            }
            }
            for (auto [b, e] : kept) {
                if (e > b) {
                    next.push_back(piece.substr(b, e - b));
                }
            }
        }
        pieces.swap(next);
    }
    for (std::string_view piece : pieces) {
        bpe_cached(piece, out);
    }
}

void tokenizer::impl::bpe_cached(std::string_view piece, std::vector<int32_t>& out) const {
    // Short pieces are the common words worth caching; very long runs would only bloat it.
    bool cacheable = piece.size() <= 256;
    if (cacheable) {
        std::lock_guard lock(cache_mu);
        auto it = cache.find(std::string(piece));
        if (it != cache.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    size_t before = out.size();
    bpe(piece, out);
    if (cacheable) {
        std::lock_guard lock(cache_mu);
        if (cache.size() >= max_cache_entries) {
            cache.clear();
        }
        cache.emplace(std::string(piece), std::vector<int32_t>(out.begin() + std::ptrdiff_t(before), out.end()));
    }
}

void tokenizer::impl::bpe(std::string_view piece, std::vector<int32_t>& out) const {
    if (ignore_merges) {
        auto it = vocab.find(to_byte_level(piece));
        if (it != vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }
    if (piece.size() == 1) {
        int32_t id = byte_ids[static_cast<unsigned char>(piece[0])];
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    // Symbols as a doubly linked list over a vector; a min-heap of candidate merges ordered by
    // (rank, position), revalidated when popped, as the crate's Word::merge_all does.
    struct symbol {
        int32_t id;
        int32_t prev;
        int32_t next;
        bool alive;
    };
    std::vector<symbol> sym;
    sym.reserve(piece.size());
    for (char c : piece) {
        int32_t id = byte_ids[static_cast<unsigned char>(c)];
        if (id < 0) {
            if (!unk_id) {
                continue; // the crate drops characters it cannot represent when there is no unk
            }
            if (fuse_unk && !sym.empty() && sym.back().id == *unk_id) {
                continue;
            }
            id = *unk_id;
        }
        sym.push_back({id, int32_t(sym.size()) - 1, int32_t(sym.size()) + 1, true});
    }
    if (sym.empty()) {
        return;
    }
    sym.back().next = -1;

    struct candidate {
        int32_t rank;
        int32_t pos;
        int32_t new_id;
        bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
    auto push_pair = [&](int32_t pos) {
        int32_t nx = sym[size_t(pos)].next;
        if (nx < 0) {
            return;
        }
        auto it = merges.find(pair_key(sym[size_t(pos)].id, sym[size_t(nx)].id));
        if (it != merges.end()) {
            heap.push({it->second.rank, pos, it->second.new_id});
        }
    };
    for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) {
        push_pair(i);
    }
    while (!heap.empty()) {
        candidate top = heap.top();
        heap.pop();
        symbol& left = sym[size_t(top.pos)];
        if (!left.alive || left.next < 0) {
            continue;
        }
        symbol& right = sym[size_t(left.next)];
        auto it = merges.find(pair_key(left.id, right.id));
        if (it == merges.end() || it->second.new_id != top.new_id) {
            continue; // stale: one side changed since this candidate was pushed
        }
        left.id = top.new_id;
        right.alive = false;
        left.next = right.next;
        if (right.next >= 0) {
            sym[size_t(right.next)].prev = top.pos;
        }
        if (left.prev >= 0) {
            push_pair(left.prev);
        }
        push_pair(top.pos);
    }
    for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) {
        out.push_back(sym[size_t(i)].id);
    }
}

std::vector<int32_t> tokenizer::encode(std::string_view input, bool match_added_tokens) const {
    std::string repaired;
    std::string_view text = input;
    if (!valid_utf8(input)) {
        utf8_append_lossy(input, repaired, true);
        text = repaired;
    }
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    if (!match_added_tokens) {
        impl_->encode_plain(text, out);
        return out;
    }
    std::vector<impl::segment> outer;
    impl_->split_added(text, impl_->raw_trie, outer);
    std::vector<impl::segment> inner;
    for (const auto& seg : outer) {
        if (seg.id >= 0) {
            out.push_back(seg.id);
            continue;
        }
        std::string_view gap = text.substr(seg.begin, seg.end - seg.begin);
        inner.clear();
        impl_->split_added(gap, impl_->normalized_trie, inner);
        for (const auto& sub : inner) {
            if (sub.id >= 0) {
                out.push_back(sub.id);
            } else {
                impl_->encode_plain(gap.substr(sub.begin, sub.end - sub.begin), out);
            }
        }
    }
    return out;
}

// ---- lookups and decoding -------------------------------------------------------------------

std::string tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
    std::string bytes;
    for (int32_t id : ids) {
        if (!is_known(id) || (skip_special_tokens && is_special(id))) {
            continue;
        }
        bytes += impl_->id_bytes[size_t(id)];
    }
    std::string out;
    out.reserve(bytes.size());
    utf8_append_lossy(bytes, out, true);
    return out;
}

std::optional<int32_t> tokenizer::token_id(std::string_view piece) const {
    std::string key(piece);
    if (auto it = impl_->added_by_content.find(key); it != impl_->added_by_content.end()) {
        return it->second;
    }
    if (auto it = impl_->vocab.find(key); it != impl_->vocab.end()) {
        return it->second;
    }
    return std::nullopt;
}

std::string tokenizer::token_text(int32_t id) const {
    return is_known(id) ? impl_->id_text[size_t(id)] : std::string();
}

std::string_view tokenizer::token_bytes(int32_t id) const {
    return is_known(id) ? std::string_view(impl_->id_bytes[size_t(id)]) : std::string_view();
}

int32_t tokenizer::size() const {
    return static_cast<int32_t>(impl_->id_flags.size());
}

bool tokenizer::is_known(int32_t id) const {
    return id >= 0 && size_t(id) < impl_->id_flags.size() && (impl_->id_flags[size_t(id)] & flag_known) != 0;
}

bool tokenizer::is_special(int32_t id) const {
    return is_known(id) && (impl_->id_flags[size_t(id)] & flag_special) != 0;
}

bool tokenizer::is_added(int32_t id) const {
    return is_known(id) && (impl_->id_flags[size_t(id)] & flag_added) != 0;
}

std::optional<int32_t> tokenizer::bos_id() const {
    return impl_->bos;
}

std::optional<int32_t> tokenizer::eos_id() const {
    return impl_->eos;
}

} // namespace cachalot

// API key parsing and the per-key request buckets (see auth.h). The bucket holds up to `rpm`
// tokens and refills at rpm/60 per second, so a key may burst its whole minute at once and then
// proceeds at the average rate. Keys are compared in time independent of where they differ.
#include "gateway/auth.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace cachalot::gateway {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

std::vector<std::string_view> split_words(std::string_view s) {
    std::vector<std::string_view> words;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_space(s[i])) {
            ++i;
        }
        size_t start = i;
        while (i < s.size() && !is_space(s[i])) {
            ++i;
        }
        if (i > start) {
            words.push_back(s.substr(start, i - start));
        }
    }
    return words;
}

// Only a prefix of a key appears in messages: enough to find the line, not enough to use it.
std::string key_hint(std::string_view key) {
    return std::string(key.substr(0, std::min<size_t>(4, key.size()))) + "...";
}

bool valid_key_chars(std::string_view key) {
    return std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f && c != ','; });
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    unsigned diff = a.size() == b.size() ? 0u : 1u;
    for (size_t i = 0; i < a.size(); ++i) {
        diff |= unsigned(uint8_t(a[i]) ^ uint8_t(i < b.size() ? b[i] : 0));
    }
    return diff == 0;
}

} // namespace

result<std::vector<api_key_entry>> parse_api_keys_text(std::string_view text, std::string_view source) {
    std::vector<api_key_entry> entries;
    size_t line_no = 0;
    while (!text.empty()) {
        size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        ++line_no;
        auto where = [&] { return std::string(source) + " line " + std::to_string(line_no) + ": "; };

        line = trim(line);
        if (line.empty() || line.front() == '#') {
            continue;
        }
        auto words = split_words(line);
        api_key_entry entry;
        entry.key = std::string(words[0]);
        if (!valid_key_chars(entry.key)) {
            return make_error(errc::bad_format, where() + "the key contains characters outside printable ASCII or a comma");
        }
        bool seen_rpm = false;
        bool seen_tpm = false;
        for (size_t w = 1; w < words.size(); ++w) {
            std::string_view word = words[w];
            if (word.front() == '#') {
                break; // trailing comment
            }
            size_t eq = word.find('=');
            std::string_view name = word.substr(0, eq);
            if (eq == std::string_view::npos || (name != "rpm" && name != "tpm")) {
                return make_error(errc::bad_format, where() + "expected `rpm=N` or `tpm=N` after the key, got `" +
                                                        std::string(word) + "`");
            }
            bool& seen = name == "rpm" ? seen_rpm : seen_tpm;
            if (seen) {
                return make_error(errc::bad_format, where() + std::string(name) + " is given twice");
            }
            seen = true;
            std::string_view digits = word.substr(eq + 1);
            int64_t value = 0;
            auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
            if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || value <= 0) {
                return make_error(errc::bad_format, where() + std::string(name) +
                                                        " must be a positive integer, got `" + std::string(digits) + "`");
            }
            (name == "rpm" ? entry.rpm : entry.tpm) = value;
        }
        entries.push_back(std::move(entry));
    }
    return entries;
}

result<std::vector<api_key_entry>> read_api_keys_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error(errc::io_error, "cannot read the API keys file " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse_api_keys_text(text.str(), path);
}

result<std::vector<api_key_entry>> parse_api_keys_env(std::string_view value) {
    std::vector<api_key_entry> entries;
    size_t item = 0;
    while (true) {
        size_t comma = value.find(',');
        std::string_view key = trim(value.substr(0, comma));
        ++item;
        if (!key.empty()) {
            if (!valid_key_chars(key)) {
                return make_error(errc::bad_format, "CACHALOT_API_KEYS item " + std::to_string(item) +
                                                        ": a key may not contain spaces or control characters");
            }
            entries.push_back(api_key_entry{std::string(key), 0, 0});
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
    return entries;
}

status api_key_store::add(std::vector<api_key_entry> entries) {
    for (auto& e : entries) {
        if (index_.count(e.key) != 0) {
            return make_error(errc::invalid_argument, "the API key " + key_hint(e.key) + " is configured twice");
        }
        index_.emplace(e.key, entries_.size());
        entries_.push_back(std::move(e));
        buckets_.emplace_back();
    }
    return ok_status();
}

const api_key_entry* api_key_store::find(std::string_view key) const {
    // Walk every entry so that the time taken does not reveal which key came closest.
    const api_key_entry* found = nullptr;
    for (const auto& e : entries_) {
        if (constant_time_equal(e.key, key)) {
            found = &e;
        }
    }
    return found;
}

auth_decision api_key_store::check(std::string_view authorization_header, clock::time_point now) {
    if (!enabled()) {
        return {auth_outcome::allowed, 0};
    }
    std::string_view value = trim(authorization_header);
    if (value.empty()) {
        return {auth_outcome::missing_key, 0};
    }
    constexpr std::string_view scheme = "bearer";
    if (value.size() <= scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), value.begin(),
                    [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? char(b - 'A' + 'a') : b); }) ||
        !is_space(value[scheme.size()])) {
        return {auth_outcome::invalid_key, 0};
    }
    std::string_view key = trim(value.substr(scheme.size()));
    const api_key_entry* entry = find(key);
    if (entry == nullptr) {
        return {auth_outcome::invalid_key, 0};
    }
    if (entry->rpm <= 0) {
        return {auth_outcome::allowed, 0};
    }
    const size_t i = size_t(entry - entries_.data());
    const double capacity = double(entry->rpm);
    const double per_second = capacity / 60.0;
    std::lock_guard lock(mutex_);
    bucket& b = buckets_[i];
    if (!b.started) {
        b.started = true;
        b.tokens = capacity;
        b.last = now;
    } else if (now > b.last) {
        const double elapsed_s = std::chrono::duration<double>(now - b.last).count();
        b.tokens = std::min(capacity, b.tokens + elapsed_s * per_second);
        b.last = now;
    }
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return {auth_outcome::allowed, 0};
    }
    const double wait_s = (1.0 - b.tokens) / per_second;
    return {auth_outcome::rate_limited, std::max<int64_t>(1, int64_t(std::ceil(wait_s)))};
}

} // namespace cachalot::gateway

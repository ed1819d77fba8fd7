// API keys and per-key rate limits. Keys come from a file (one key a line, optionally followed by
// `rpm=N tpm=N`; blank lines and `#` comments ignored) or from CACHALOT_API_KEYS (comma-separated,
// no limits); the CLI reads both and hands the parsed entries here. The store checks a request's
// `Authorization: Bearer` key and spends one token of that key's requests-per-minute bucket.
// Tokens-per-minute is parsed and kept for the generation routes; nothing here counts tokens yet.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/result.h"

namespace cachalot::gateway {

struct api_key_entry {
    std::string key;
    int64_t rpm = 0; // requests per minute; 0 = unlimited
    int64_t tpm = 0; // tokens per minute; 0 = unlimited
};

/// Parses the text of an API keys file; `source` names the file in error messages, which also
/// give the 1-based line number of a malformed line.
[[nodiscard]] result<std::vector<api_key_entry>> parse_api_keys_text(std::string_view text, std::string_view source);

/// Reads and parses an API keys file.
[[nodiscard]] result<std::vector<api_key_entry>> read_api_keys_file(const std::string& path);

/// Parses CACHALOT_API_KEYS' value: comma-separated keys, surrounding spaces trimmed, empty items skipped.
[[nodiscard]] result<std::vector<api_key_entry>> parse_api_keys_env(std::string_view value);

enum class auth_outcome { allowed, missing_key, invalid_key, rate_limited };

struct auth_decision {
    auth_outcome outcome = auth_outcome::allowed;
    int64_t retry_after_s = 0; // for rate_limited: whole seconds until a request token is back
};

/// The configured keys and their token buckets. Thread-safe.
class api_key_store {
public:
    using clock = std::chrono::steady_clock;

    /// Adds keys before serving starts (not thread-safe against check()). Fails on a duplicate
    /// key, naming it by its first characters only so that logs do not leak it.
    [[nodiscard]] status add(std::vector<api_key_entry> entries);

    /// True when at least one key is configured (then every protected route needs one).
    [[nodiscard]] bool enabled() const { return !entries_.empty(); }
    [[nodiscard]] size_t size() const { return entries_.size(); }

    /// Checks an Authorization header value ("Bearer <key>") and, when the key is known, takes one
    /// request from its bucket. `now` is injectable for tests.
    [[nodiscard]] auth_decision check(std::string_view authorization_header, clock::time_point now = clock::now());

    /// The entry for `key`, or null.
    [[nodiscard]] const api_key_entry* find(std::string_view key) const;

private:
    struct bucket {
        double tokens = 0;
        clock::time_point last{};
        bool started = false;
    };
    std::vector<api_key_entry> entries_;
    std::unordered_map<std::string, size_t> index_;
    std::vector<bucket> buckets_;
    std::mutex mutex_;
};

} // namespace cachalot::gateway

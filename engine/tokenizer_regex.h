// Internal to the tokenizer: the regular expressions of tokenizer.json pre-tokenizers, compiled
// with PCRE2 (UTF + UCP, JIT when available). Hugging Face compiles these patterns with
// Oniguruma, whose escapes differ from PCRE2's in a few places (\s is White_Space, \h is a hex
// digit, \w is the Unicode word set, \uHHHH is a code point); translate_onig_pattern rewrites
// those so PCRE2 matches what Oniguruma matches. Not a general Oniguruma emulator: nested
// character classes and possessive/atomic subtleties are passed through unchanged.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernels/result.h"

struct pcre2_real_code_8;

namespace cachalot::detail {

/// Rewrites an Oniguruma (Ruby syntax) pattern into an equivalent PCRE2 pattern.
std::string translate_onig_pattern(std::string_view pattern);

/// Escapes a literal string so it matches itself.
std::string quote_regex_literal(std::string_view literal);

class tok_regex {
public:
    /// Compiles a PCRE2 pattern (already translated). The error names the pattern.
    [[nodiscard]] static result<tok_regex> compile(const std::string& pcre2_pattern);

    /// Appends [begin, end) byte offsets of the successive non-overlapping matches in subject,
    /// which must be valid UTF-8. An empty match advances by one character and is not reported.
    void find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const;

    /// True when the pattern matches somewhere in subject.
    bool search(std::string_view subject) const;
    /// The [begin, end) of the first match, or {npos, npos}.
    std::pair<size_t, size_t> first_match(std::string_view subject) const;

private:
    std::shared_ptr<pcre2_real_code_8> code_;
};

} // namespace cachalot::detail

// PCRE2 wrapper and Oniguruma-to-PCRE2 escape translation for the tokenizer's pre-tokenizer
// patterns (see tokenizer_regex.h). Matching uses one thread-local match-data block per thread so
// that concurrent encode() calls share the compiled code and allocate nothing per match.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/tokenizer_regex.h"

#include <cctype>

namespace cachalot::detail {

namespace {

// Oniguruma's \w (Unicode): letters and other alphabetics, marks, decimal digits, connector
// punctuation. PCRE2's UCP \w (10.42) leaves out marks and connectors.
constexpr std::string_view word_chars = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}";
constexpr std::string_view hex_chars = "0-9A-Fa-f";

bool is_hex(char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

struct match_data_holder {
    pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
    ~match_data_holder() { pcre2_match_data_free(md); }
};

pcre2_match_data* thread_match_data() {
    thread_local match_data_holder holder;
    return holder.md;
}

// Returns the pcre2_match rc; retries without JIT when the JIT stack is too small for a long run.
int run_match(const pcre2_code* code, std::string_view subject, size_t start, pcre2_match_data* md) {
    auto subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
    int rc = pcre2_match(code, subj, subject.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        rc = pcre2_match(code, subj, subject.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
    }
    return rc;
}

size_t next_char(std::string_view s, size_t i) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) {
        ++i;
    }
    return i;
}

} // namespace

std::string translate_onig_pattern(std::string_view p) {
    std::string out;
    out.reserve(p.size() + 32);
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            char e = p[i + 1];
            switch (e) {
            case 's':
                out += "\\p{White_Space}";
                break;
            case 'S':
                out += "\\P{White_Space}";
                break;
            case 'h':
                out += in_class ? std::string(hex_chars) : "[" + std::string(hex_chars) + "]";
                break;
            case 'H':
                if (in_class) {
                    out += "\\H"; // no in-class complement without nesting; rare enough to pass through
                } else {
                    out += "[^" + std::string(hex_chars) + "]";
                }
                break;
            case 'w':
                out += in_class ? std::string(word_chars) : "[" + std::string(word_chars) + "]";
                break;
            case 'W':
                if (in_class) {
                    out += "\\W";
                } else {
                    out += "[^" + std::string(word_chars) + "]";
                }
                break;
            case 'u':
                if (i + 5 < p.size() && is_hex(p[i + 2]) && is_hex(p[i + 3]) && is_hex(p[i + 4]) && is_hex(p[i + 5])) {
                    out += "\\x{";
                    out.append(p.substr(i + 2, 4));
                    out += "}";
                    i += 4;
                } else {
                    out += "\\u";
                }
                break;
            default:
                out += c;
                out += e;
                break;
            }
            ++i;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out += c;
            // A ']' right after '[' or '[^' is a literal in both dialects.
            if (i + 1 < p.size() && p[i + 1] == '^') {
                out += '^';
                ++i;
            }
            if (i + 1 < p.size() && p[i + 1] == ']') {
                out += "\\]";
                ++i;
            }
            continue;
        }
        if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
            size_t end = p.find(":]", i + 2);
            if (end != std::string_view::npos) {
                out.append(p.substr(i, end + 2 - i));
                i = end + 1;
                continue;
            }
        }
        if (in_class && c == ']') {
            in_class = false;
        }
        out += c;
    }
    return out;
}

std::string quote_regex_literal(std::string_view literal) {
    std::string out;
    for (char c : literal) {
        if (std::string_view("\\^$.|?*+()[]{}/-").find(c) != std::string_view::npos) {
            out += '\\';
        }
        out += c;
    }
    return out;
}

result<tok_regex> tok_regex::compile(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    pcre2_compile_context* ctx = pcre2_compile_context_create(nullptr);
    pcre2_set_newline(ctx, PCRE2_NEWLINE_LF);
    // Ruby syntax (Oniguruma's default in the tokenizers crate) treats ^ and $ as line anchors.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &err_offset, ctx);
    pcre2_compile_context_free(ctx);
    if (code == nullptr) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(err, buf, sizeof buf);
        return make_error(errc::bad_format, "regex pattern '" + pattern + "' does not compile at offset " +
                                                std::to_string(err_offset) + ": " + reinterpret_cast<char*>(buf));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); // the interpreter is the fallback if JIT is unavailable
    tok_regex r;
    r.code_ = std::shared_ptr<pcre2_real_code_8>(code, [](pcre2_code* c) { pcre2_code_free(c); });
    return r;
}

void tok_regex::find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const {
    pcre2_match_data* md = thread_match_data();
    size_t pos = 0;
    while (pos <= subject.size()) {
        int rc = run_match(code_.get(), subject, pos, md);
        if (rc < 0) {
            // No match (or a resource limit, which these linear patterns do not reach): the rest
            // of the subject is a gap.
            return;
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0];
        size_t e = ov[1];
        if (e == b) {
            if (b >= subject.size()) {
                return;
            }
            pos = next_char(subject, b);
            continue;
        }
        out.emplace_back(b, e);
        pos = e;
    }
}

bool tok_regex::search(std::string_view subject) const {
    return run_match(code_.get(), subject, 0, thread_match_data()) >= 0;
}

std::pair<size_t, size_t> tok_regex::first_match(std::string_view subject) const {
    pcre2_match_data* md = thread_match_data();
    if (run_match(code_.get(), subject, 0, md) < 0) {
        return {std::string_view::npos, std::string_view::npos};
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    return {ov[0], ov[1]};
}

} // namespace cachalot::detail

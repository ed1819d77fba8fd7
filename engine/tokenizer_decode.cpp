// Decoding side of the tokenizer: lossy UTF-8 assembly (U+FFFD per maximal invalid subsequence,
// Unicode Table 3-7 / WHATWG rules, as Rust's from_utf8_lossy and JS TextDecoder do) and the
// incremental stream_decoder. Token-to-bytes tables live in tokenizer.cpp; this file only joins
// bytes and decides where complete characters end.
#include "engine/tokenizer.h"

namespace cachalot {

namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD";

// For a lead byte: the sequence length (0 = never valid) and the allowed range of the 2nd byte.
struct lead_info {
    int length;
    unsigned char lo;
    unsigned char hi;
};

lead_info classify(unsigned char b) {
    if (b < 0x80) {
        return {1, 0, 0};
    }
    if (b >= 0xC2 && b <= 0xDF) {
        return {2, 0x80, 0xBF};
    }
    if (b == 0xE0) {
        return {3, 0xA0, 0xBF};
    }
    if (b == 0xED) {
        return {3, 0x80, 0x9F};
    }
    if (b >= 0xE1 && b <= 0xEF) {
        return {3, 0x80, 0xBF};
    }
    if (b == 0xF0) {
        return {4, 0x90, 0xBF};
    }
    if (b >= 0xF1 && b <= 0xF3) {
        return {4, 0x80, 0xBF};
    }
    if (b == 0xF4) {
        return {4, 0x80, 0x8F};
    }
    return {0, 0, 0};
}

} // namespace

size_t utf8_append_lossy(std::string_view bytes, std::string& out, bool final) {
    size_t i = 0;
    const size_t n = bytes.size();
    while (i < n) {
        auto b = static_cast<unsigned char>(bytes[i]);
        if (b < 0x80) {
            // Copy an ASCII run at once; most text is mostly ASCII.
            size_t j = i + 1;
            while (j < n && static_cast<unsigned char>(bytes[j]) < 0x80) {
                ++j;
            }
            out.append(bytes.substr(i, j - i));
            i = j;
            continue;
        }
        lead_info li = classify(b);
        if (li.length == 0) {
            out += replacement;
            ++i;
            continue;
        }
        int k = 1;
        bool bad = false;
        while (k < li.length) {
            if (i + k >= n) {
                break;
            }
            auto c = static_cast<unsigned char>(bytes[i + k]);
            unsigned char lo = k == 1 ? li.lo : 0x80;
            unsigned char hi = k == 1 ? li.hi : 0xBF;
            if (c < lo || c > hi) {
                bad = true;
                break;
            }
            ++k;
        }
        if (bad) {
            out += replacement;
            i += k;
            continue;
        }
        if (k < li.length) {
            // Ran out of input inside a sequence that could still complete.
            if (!final) {
                return i;
            }
            out += replacement;
            i += k;
            continue;
        }
        out.append(bytes.substr(i, k));
        i += k;
    }
    return i;
}

std::string stream_decoder::feed(const tokenizer& tok, int32_t id) {
    return feed(tok, std::span<const int32_t>(&id, 1));
}

std::string stream_decoder::feed(const tokenizer& tok, std::span<const int32_t> ids) {
    for (int32_t id : ids) {
        if (skip_special_ && tok.is_special(id)) {
            continue;
        }
        pending_.append(tok.token_bytes(id));
    }
    std::string out;
    size_t used = utf8_append_lossy(pending_, out, false);
    pending_.erase(0, used);
    return out;
}

std::string stream_decoder::flush() {
    std::string out;
    utf8_append_lossy(pending_, out, true);
    pending_.clear();
    return out;
}

} // namespace cachalot

// The byte-level BPE tokenizer of the DeepSeek family, read from a Hugging Face tokenizer.json:
// added-token matching (leftmost-longest, with the lstrip/rstrip/single_word rules of the Rust
// `tokenizers` crate), Split pre-tokenizers run with PCRE2 (Oniguruma escapes translated), the
// ByteLevel byte-to-unicode mapping, rank-ordered BPE merges, and the ByteLevel decoder with
// U+FFFD for invalid UTF-8. encode() equals HF `encode(text, add_special_tokens=False)`; it never
// adds BOS (that is the chat encoder's or the gateway's job). It does not implement normalizers
// other than the empty one, non-ByteLevel decoders, or WordPiece/Unigram models: load() says so.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/result.h"

namespace cachalot {

/// An immutable tokenizer. Copies share the loaded tables; every const method is thread-safe.
class tokenizer {
public:
    /// Reads a tokenizer.json (or a model directory holding one). A tokenizer_config.json beside
    /// it, when present, supplies the BOS/EOS strings. Errors name the file and the field.
    [[nodiscard]] static result<tokenizer> load(const std::string& tokenizer_json_path);
    /// The same from the text of a tokenizer.json; `source` names it in error messages.
    [[nodiscard]] static result<tokenizer> from_json(std::string_view json_text,
                                                     const std::string& source = "tokenizer.json");

    /// HF `encode(text, add_special_tokens=False)` when match_added_tokens is true. When false,
    /// added-token strings in the text are ordinary text and go through BPE (user text in chat
    /// prompts, so users cannot inject control tokens). Invalid UTF-8 in `text` is first replaced
    /// by U+FFFD, as a lossy decode of the bytes would.
    std::vector<int32_t> encode(std::string_view text, bool match_added_tokens = true) const;

    /// HF `decode(ids, skip_special_tokens)`: the ids' bytes joined, invalid UTF-8 replaced by
    /// U+FFFD (one per maximal invalid subsequence). Ids that name no token (negative, past the
    /// end, holes) are skipped, as the Rust tokenizers crate skips them; this never fails.
    std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

    /// The id of a piece by its string: an added token's content, else a vocab entry in its
    /// byte-level spelling ("Ġthe").
    std::optional<int32_t> token_id(std::string_view piece) const;
    /// The piece an id stands for (HF id_to_token); empty when the id names no token.
    std::string token_text(int32_t id) const;
    /// The raw bytes an id contributes to decoded text (possibly part of a UTF-8 sequence).
    std::string_view token_bytes(int32_t id) const;

    /// max id + 1 over vocab and added tokens.
    int32_t size() const;
    bool is_known(int32_t id) const;
    bool is_special(int32_t id) const;
    bool is_added(int32_t id) const;

    /// From tokenizer_config.json's bos_token / eos_token, when it was found.
    std::optional<int32_t> bos_id() const;
    std::optional<int32_t> eos_id() const;

    struct impl;

private:
    explicit tokenizer(std::shared_ptr<const impl> p) : impl_(std::move(p)) {}
    std::shared_ptr<const impl> impl_;
};

/// Incremental detokenizer: feed ids one at a time and get the text that is complete so far.
/// Bytes of a UTF-8 sequence split across tokens are held back until the sequence completes;
/// bytes that can never complete become U+FFFD at once. The concatenation of every feed() and
/// the final flush() equals tokenizer::decode() of all the ids. The state is plain data (the
/// held bytes and one flag), so it can be copied, serialised and resumed on another machine
/// against the same tokenizer.
class stream_decoder {
public:
    explicit stream_decoder(bool skip_special_tokens = false) : skip_special_(skip_special_tokens) {}
    /// Resumes from state saved with pending() and skip_special_tokens().
    stream_decoder(std::string pending_bytes, bool skip_special_tokens)
        : pending_(std::move(pending_bytes)), skip_special_(skip_special_tokens) {}

    /// Adds one id and returns the newly completed text (possibly empty).
    std::string feed(const tokenizer& tok, int32_t id);
    /// Adds several ids; returns the newly completed text.
    std::string feed(const tokenizer& tok, std::span<const int32_t> ids);
    /// Ends the stream: held-back bytes become U+FFFD. The decoder is empty afterwards.
    std::string flush();

    /// The held-back bytes: at most 3, a proper prefix of a UTF-8 sequence.
    const std::string& pending() const { return pending_; }
    bool skip_special_tokens() const { return skip_special_; }

private:
    std::string pending_;
    bool skip_special_ = false;
};

/// Appends `bytes` to `out` as UTF-8, each maximal invalid subsequence replaced by U+FFFD (the
/// rule of Rust's from_utf8_lossy and the WHATWG decoder). When `final` is false an incomplete
/// sequence at the end is left unconsumed. Returns the number of bytes consumed.
size_t utf8_append_lossy(std::string_view bytes, std::string& out, bool final = true);

} // namespace cachalot

// Stop strings on streamed text: the decode loop pushes each piece of newly detokenized text and
// gets back the text that is safe to send to the client now. Text that could still be the start
// of a stop string is held back until it either completes one or cannot; on a match the text
// before the stop string is emitted and the stop string itself is not (OpenAI's behaviour). A
// trailing incomplete UTF-8 sequence is held back too, so that emitted text never ends inside a
// character. Matching is on bytes, so multi-byte characters need no special case. The state is a
// plain copyable value (it travels with a sequence). Stop token ids, EOS and max_tokens are the
// decode loop's business, not this file's.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachalot {

struct stop_match_result {
    std::string emit;     // text to send now, possibly empty
    bool stopped = false; // a stop string matched; nothing more will be emitted
};

class stop_matcher {
public:
    stop_matcher() = default;
    /// Empty strings in stops are ignored (sampling_params::validate rejects them earlier).
    explicit stop_matcher(std::vector<std::string> stops);

    /// Feeds the next piece of text. After a stop, returns {"", true} and ignores the text.
    stop_match_result push(std::string_view text);
    /// At the end of generation (EOS, max_tokens): the held-back text, and nothing after it.
    /// Returns "" after a stop.
    std::string flush();

    bool stopped() const { return stopped_; }
    /// Index into the stops given at construction of the one that matched: the one starting
    /// earliest in the text, the first listed when several start at the same byte.
    std::optional<std::size_t> matched_index() const { return matched_; }
    /// Bytes currently held back.
    std::size_t n_held_bytes() const { return held_.size(); }

private:
    std::vector<std::string> stops_;
    std::vector<std::size_t> stop_index_; // position of stops_[i] in the constructor's list
    std::string held_;
    bool stopped_ = false;
    std::optional<std::size_t> matched_;
};

} // namespace cachalot

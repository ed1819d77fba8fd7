// Stop-string matching on streamed text (see stop_matcher.h). Each push appends to the held-back
// tail, looks for the earliest complete stop string, and otherwise emits everything except the
// longest tail that is a proper prefix of some stop string or an unfinished UTF-8 character.
// The held tail stays shorter than the longest stop string plus three bytes, so a push costs
// O((held + new text) * total stop length) at worst; stop lists are short.
#include "engine/stop_matcher.h"

#include <algorithm>

namespace cachalot {
namespace {

// Start of a trailing UTF-8 sequence that is not finished yet, or text.size() when the text ends
// on a character boundary. Bytes that are not valid UTF-8 are left alone (emitted as they are).
std::size_t incomplete_utf8_start(std::string_view text) {
    const std::size_t n = text.size();
    for (std::size_t back = 1; back <= 4 && back <= n; ++back) {
        const auto c = static_cast<unsigned char>(text[n - back]);
        if ((c & 0xC0) == 0x80) {
            continue; // continuation byte: keep looking for the lead byte
        }
        std::size_t need = 1;
        if ((c & 0xE0) == 0xC0) {
            need = 2;
        } else if ((c & 0xF0) == 0xE0) {
            need = 3;
        } else if ((c & 0xF8) == 0xF0) {
            need = 4;
        }
        return need > back ? n - back : n;
    }
    return n;
}

} // namespace

stop_matcher::stop_matcher(std::vector<std::string> stops) {
    for (std::size_t i = 0; i < stops.size(); ++i) {
        if (!stops[i].empty()) {
            stops_.push_back(std::move(stops[i]));
            stop_index_.push_back(i);
        }
    }
}

stop_match_result stop_matcher::push(std::string_view text) {
    stop_match_result out;
    if (stopped_) {
        out.stopped = true;
        return out;
    }
    held_.append(text);

    std::size_t best = std::string::npos;
    std::size_t best_stop = 0;
    for (std::size_t i = 0; i < stops_.size(); ++i) {
        const std::size_t pos = held_.find(stops_[i]);
        if (pos < best) {
            best = pos;
            best_stop = i;
        }
    }
    if (best != std::string::npos) {
        out.emit = held_.substr(0, best);
        out.stopped = true;
        held_.clear();
        stopped_ = true;
        matched_ = stop_index_[best_stop];
        return out;
    }

    const std::string_view held = held_;
    std::size_t keep_from = held.size();
    for (const std::string& stop : stops_) {
        const std::size_t longest = std::min(stop.size() - 1, held.size());
        for (std::size_t len = longest; len > 0 && held.size() - len < keep_from; --len) {
            if (held.substr(held.size() - len) == std::string_view(stop).substr(0, len)) {
                keep_from = held.size() - len;
                break;
            }
        }
    }
    keep_from = std::min(keep_from, incomplete_utf8_start(held));
    out.emit = held_.substr(0, keep_from);
    held_.erase(0, keep_from);
    return out;
}

std::string stop_matcher::flush() {
    std::string out;
    if (!stopped_) {
        out.swap(held_);
    }
    held_.clear();
    return out;
}

} // namespace cachalot

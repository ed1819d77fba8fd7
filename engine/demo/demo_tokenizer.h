// The demo tokenizer (a copy of the tiny-v4 fixture's tokenizer.json) embedded in the binary, so
// `cachalot make-model` can write a complete checkpoint with no files beside the executable. The
// definition is generated at build time by embed.cmake; nothing here parses the JSON.
#pragma once

#include <string_view>

namespace cachalot {

/// The bytes of engine/demo/tokenizer.json (UTF-8 JSON); static storage, never freed.
std::string_view demo_tokenizer_json();

} // namespace cachalot

// Where tests find the shared fixtures and the built binary (environment first, then defaults
// relative to the source tree).
#pragma once

#include <string>

namespace cachalot::test {

/// ../shared beside the project, or $CACHALOT_SHARED.
std::string shared_dir();
/// shared_dir() + "/fixtures/tiny-v4".
std::string tiny_model_dir();
/// The `cachalot` executable ($CACHALOT_BINARY, else build/cachalot).
std::string cachalot_binary();
/// A fresh empty directory under the system temp dir, removed by the caller if it likes.
std::string make_temp_dir(const std::string& prefix);
/// Reads a whole file; throws std::runtime_error when it cannot.
std::string read_file(const std::string& path);

} // namespace cachalot::test

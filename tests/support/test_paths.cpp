#include "tests/support/test_paths.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace cachalot::test {

static std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

std::string shared_dir() {
    const char* src = std::getenv("CACHALOT_SOURCE_DIR");
    std::string base = src && *src ? std::string(src) + "/../shared" : "../shared";
    return env_or("CACHALOT_SHARED", base);
}

std::string tiny_model_dir() { return shared_dir() + "/fixtures/tiny-v4"; }

std::string cachalot_binary() { return env_or("CACHALOT_BINARY", "build/cachalot"); }

std::string make_temp_dir(const std::string& prefix) {
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
        auto p = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(rd()));
        if (std::filesystem::create_directory(p)) {
            return p.string();
        }
    }
    throw std::runtime_error("cannot create a temp dir");
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        throw std::runtime_error("cannot open " + path);
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

} // namespace cachalot::test

// safetensors parsing over mmap; see safetensors.h.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace cachalot {

class mapped_file {
public:
    ~mapped_file() {
        if (base_ && base_ != MAP_FAILED) {
            munmap(base_, size_);
        }
    }
    static result<std::unique_ptr<mapped_file>> open(const std::string& path) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            return make_error(errc::not_found, "cannot open " + path + ": " + std::strerror(errno));
        }
        struct stat st {};
        if (fstat(fd, &st) != 0) {
            int e = errno;
            ::close(fd);
            return make_error(errc::io_error, "cannot stat " + path + ": " + std::strerror(e));
        }
        auto f = std::unique_ptr<mapped_file>(new mapped_file());
        f->size_ = size_t(st.st_size);
        if (f->size_ > 0) {
            f->base_ = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (f->base_ == MAP_FAILED) {
                int e = errno;
                ::close(fd);
                return make_error(errc::io_error, "cannot mmap " + path + ": " + std::strerror(e));
            }
        }
        ::close(fd);
        return f;
    }
    const uint8_t* data() const { return static_cast<const uint8_t*>(base_); }
    size_t size() const { return size_; }

private:
    mapped_file() = default;
    void* base_ = nullptr;
    size_t size_ = 0;
};

std::string tensor_info::describe() const {
    std::string s(dtype_name(type));
    s += " [";
    for (size_t i = 0; i < shape.size(); ++i) {
        s += (i ? ", " : "") + std::to_string(shape[i]);
    }
    return s + "]";
}

checkpoint::checkpoint() = default;
checkpoint::~checkpoint() = default;
checkpoint::checkpoint(checkpoint&&) noexcept = default;
checkpoint& checkpoint::operator=(checkpoint&&) noexcept = default;

uint64_t checkpoint::mapped_bytes() const {
    uint64_t n = 0;
    for (auto& f : files_) {
        n += f->size();
    }
    return n;
}

const tensor_info* checkpoint::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

status checkpoint::add_file(const std::string& path) {
    auto mf = mapped_file::open(path);
    if (!mf) {
        return std::move(mf).take_error();
    }
    const uint8_t* base = (*mf)->data();
    size_t size = (*mf)->size();
    if (size < 8) {
        return make_error(errc::bad_format, path + ": file is " + std::to_string(size) +
                                                " bytes, too short for a safetensors header (truncated?)");
    }
    uint64_t header_len = 0;
    std::memcpy(&header_len, base, 8);
    if (header_len > size - 8 || header_len > (uint64_t(1) << 30)) {
        return make_error(errc::bad_format, path + ": header length " + std::to_string(header_len) +
                                                " exceeds the file size " + std::to_string(size) +
                                                " (truncated or not safetensors)");
    }
    file_names_.push_back(std::make_unique<std::string>(path));
    const std::string* fname = file_names_.back().get();
    const uint8_t* data_start = base + 8 + header_len;
    size_t data_size = size - 8 - header_len;

    simdjson::dom::parser parser;
    simdjson::padded_string header(reinterpret_cast<const char*>(base + 8), size_t(header_len));
    simdjson::dom::object obj;
    if (auto e = parser.parse(header).get(obj)) {
        return make_error(errc::bad_format, path + ": header is not a JSON object: " + simdjson::error_message(e));
    }
    for (auto [key, value] : obj) {
        std::string name(key);
        if (name == "__metadata__") {
            continue;
        }
        auto fail = [&](const std::string& what) {
            return make_error(errc::bad_format, path + ": tensor '" + name + "': " + what);
        };
        std::string_view dtype_str;
        simdjson::dom::array shape_arr, offsets;
        if (value["dtype"].get_string().get(dtype_str) || value["shape"].get_array().get(shape_arr) ||
            value["data_offsets"].get_array().get(offsets)) {
            return fail("header entry needs dtype, shape and data_offsets");
        }
        tensor_info t;
        t.name = name;
        t.file = fname;
        if (!parse_dtype(dtype_str, t.type)) {
            return fail("unsupported dtype '" + std::string(dtype_str) + "'");
        }
        for (auto d : shape_arr) {
            int64_t v;
            if (d.get_int64().get(v) || v < 0) {
                return fail("shape must hold non-negative integers");
            }
            t.shape.push_back(v);
        }
        std::vector<uint64_t> off;
        for (auto o : offsets) {
            uint64_t v;
            if (o.get_uint64().get(v)) {
                return fail("data_offsets must be two non-negative integers");
            }
            off.push_back(v);
        }
        if (off.size() != 2 || off[1] < off[0]) {
            return fail("data_offsets must be [begin, end] with begin <= end");
        }
        if (off[1] > data_size) {
            return fail("data ends at byte " + std::to_string(off[1]) + " but the file holds only " +
                        std::to_string(data_size) + " data bytes (truncated file?)");
        }
        uint64_t expect = uint64_t(t.numel()) * dtype_size(t.type);
        if (off[1] - off[0] != expect) {
            return fail(t.describe() + " needs " + std::to_string(expect) + " bytes, header says " +
                        std::to_string(off[1] - off[0]));
        }
        t.data = data_start + off[0];
        t.size_bytes = size_t(off[1] - off[0]);
        if (tensors_.count(name)) {
            return fail("appears in more than one shard");
        }
        tensors_.emplace(name, std::move(t));
    }
    files_.push_back(std::move(*mf));
    return ok_status();
}

result<checkpoint> checkpoint::open(const std::string& dir) {
    namespace fs = std::filesystem;
    checkpoint ck;
    std::string index_path = dir + "/model.safetensors.index.json";
    std::error_code ec;
    if (fs::exists(index_path, ec)) {
        std::ifstream f(index_path, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        simdjson::dom::parser parser;
        simdjson::padded_string text(ss.str());
        simdjson::dom::object weight_map;
        if (auto e = parser.parse(text)["weight_map"].get_object().get(weight_map)) {
            return make_error(errc::bad_format,
                              index_path + ": needs an object 'weight_map' (" + simdjson::error_message(e) + ")");
        }
        std::set<std::string> shards;
        std::vector<std::pair<std::string, std::string>> expected;
        for (auto [name, file] : weight_map) {
            std::string_view fn;
            if (file.get_string().get(fn)) {
                return make_error(errc::bad_format,
                                  index_path + ": weight_map['" + std::string(name) + "'] must be a file name");
            }
            shards.insert(std::string(fn));
            expected.emplace_back(std::string(name), std::string(fn));
        }
        for (const auto& s : shards) {
            CACHALOT_TRY(ck.add_file(dir + "/" + s));
        }
        for (const auto& [name, file] : expected) {
            if (!ck.find(name)) {
                return make_error(errc::bad_format, index_path + ": tensor '" + name + "' is listed in shard " + file +
                                                        " but that shard does not contain it");
            }
        }
        return ck;
    }
    std::string single = dir + "/model.safetensors";
    if (fs::exists(single, ec)) {
        CACHALOT_TRY(ck.add_file(single));
        return ck;
    }
    std::vector<std::string> found;
    for (auto& e : fs::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".safetensors") {
            found.push_back(e.path().string());
        }
    }
    if (ec) {
        return make_error(errc::not_found, "cannot read model directory " + dir + ": " + ec.message());
    }
    if (found.size() == 1) {
        CACHALOT_TRY(ck.add_file(found[0]));
        return ck;
    }
    if (found.empty()) {
        return make_error(errc::not_found, dir + ": no model.safetensors, no model.safetensors.index.json");
    }
    return make_error(errc::bad_format, dir + ": several .safetensors files but no model.safetensors.index.json");
}

void checkpoint::release(const void* p, size_t n) {
    // Whole pages inside the range only: its first and last pages may hold other tensors' bytes.
    const auto page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (uintptr_t(p) + page - 1) / page * page, e = (uintptr_t(p) + n) / page * page;
    if (e > b) {
        madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
    }
}

} // namespace cachalot

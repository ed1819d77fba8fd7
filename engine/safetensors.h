// Memory-mapped safetensors checkpoints: a single model.safetensors or shards listed in
// model.safetensors.index.json. Tensors are views into the mapping; nothing is copied. Every
// header is validated at open (offsets inside the file, sizes matching shape x dtype), so a
// truncated or corrupt shard fails here with the file and tensor named, never later.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/result.h"

namespace cachalot {

struct tensor_info {
    std::string name;
    dtype type = dtype::f32;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;
    size_t size_bytes = 0;
    const std::string* file = nullptr; // shard it lives in

    int64_t numel() const {
        int64_t n = 1;
        for (auto d : shape) {
            n *= d;
        }
        return n;
    }
    std::string describe() const; // "F8_E4M3 [128, 256]"
};

class mapped_file;

class checkpoint {
public:
    checkpoint();
    ~checkpoint();
    checkpoint(checkpoint&&) noexcept;
    checkpoint& operator=(checkpoint&&) noexcept;

    /// Opens DIR: the index and its shards when model.safetensors.index.json exists, else
    /// DIR/model.safetensors, else the directory's only *.safetensors file.
    [[nodiscard]] static result<checkpoint> open(const std::string& dir);

    const tensor_info* find(const std::string& name) const;
    size_t size() const { return tensors_.size(); }
    const std::unordered_map<std::string, tensor_info>& tensors() const { return tensors_; }
    uint64_t mapped_bytes() const;
    /// Tells the kernel the mapped bytes [p, p + n) are not needed for now: their pages leave
    /// memory and are read from the file again if touched (for weights repacked at load).
    static void release(const void* p, size_t n);

private:
    [[nodiscard]] status add_file(const std::string& path);

    std::vector<std::unique_ptr<mapped_file>> files_;
    std::vector<std::unique_ptr<std::string>> file_names_;
    std::unordered_map<std::string, tensor_info> tensors_;
};

} // namespace cachalot

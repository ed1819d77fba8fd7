// result<T> and status: the expected-style return types of library code (C++20 has no
// std::expected). An error carries a code for programs and a message for people; the message
// names what failed (the tensor, the field, the file) so a user can act on it. Exceptions are
// for the edges only (config loading, main, the HTTP handlers).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace cachalot {

enum class errc {
    invalid_argument, // bad input from a user or a file
    not_found,        // a file, tensor or key that does not exist
    io_error,         // the operating system refused (open, mmap, read)
    unsupported,      // valid but not implemented by this build
    bad_format,       // a file exists but its contents are malformed
    internal,         // a bug; should never reach a user
};

struct error {
    errc code = errc::internal;
    std::string message;
};

inline error make_error(errc code, std::string message) {
    return error{code, std::move(message)};
}

template <class T>
class [[nodiscard]] result {
public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    result(error e) : v_(std::in_place_index<1>, std::move(e)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const error& err() const { return std::get<1>(v_); }
    error take_error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(error e) : err_(std::move(e)), failed_(true) {}

    bool ok() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return ok(); }
    const error& err() const { return err_; }
    error take_error() && { return std::move(err_); }

private:
    error err_;
    bool failed_ = false;
};

using status = result<void>;

inline status ok_status() {
    return {};
}

} // namespace cachalot

/// Aborts with file and line: for bugs, never for bad input.
#define CACHALOT_CHECK(cond, msg)                                                                                      \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, #cond, msg);                     \
            std::abort();                                                                                              \
        }                                                                                                              \
    } while (0)

/// Propagates a failed status or result out of the calling function.
#define CACHALOT_TRY(expr)                                                                                             \
    do {                                                                                                               \
        auto&& cachalot_try_r_ = (expr);                                                                               \
        if (!cachalot_try_r_.ok()) {                                                                                   \
            return std::move(cachalot_try_r_).take_error();                                                            \
        }                                                                                                              \
    } while (0)

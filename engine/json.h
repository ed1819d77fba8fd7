// json_value: an ordered JSON document model for request bodies, chat templates and tool
// arguments. Objects keep their members in insertion order (a duplicate key keeps its first
// position and takes the last value, as Python's dict and JavaScript objects do), and numbers keep
// the text they were parsed from, so a value re-serialises the way its input wrote it. Two
// serialisers: dump_compact() writes what JSON.stringify writes, dump_python() what Python's
// json.dumps(ensure_ascii=False) writes (the chat template's form). This is a convenience DOM for
// documents of request size, not a streaming parser; it does not do JSON Pointer or schemas.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernels/result.h"

namespace cachalot {

class json_value;

using json_array = std::vector<json_value>;
using json_member = std::pair<std::string, json_value>;
using json_object = std::vector<json_member>;

enum class json_kind { null, boolean, number, string, array, object };

class json_value {
public:
    // ---- builders --------------------------------------------------------------------------
    json_value() = default; // null
    json_value(std::nullptr_t) {}
    json_value(bool b) : kind_(json_kind::boolean), bool_(b) {}
    json_value(int v) { init_signed(v); }
    json_value(long v) { init_signed(v); }
    json_value(long long v) { init_signed(v); }
    json_value(unsigned v) { init_unsigned(v); }
    json_value(unsigned long v) { init_unsigned(v); }
    json_value(unsigned long long v) { init_unsigned(v); }
    json_value(double v);
    json_value(const char* s) : kind_(json_kind::string), str_(s) {}
    json_value(std::string s) : kind_(json_kind::string), str_(std::move(s)) {}
    json_value(std::string_view s) : kind_(json_kind::string), str_(s) {}
    json_value(json_array a);
    json_value(json_object o);

    static json_value array(std::initializer_list<json_value> items = {});
    /// json_value::object({{"role", "user"}, {"content", "hi"}})
    static json_value object(std::initializer_list<json_member> members = {});
    /// A number from its JSON text, kept verbatim for serialisation; the caller guarantees
    /// the text is a valid JSON number (parse_json checks this for you).
    static json_value number_from_text(std::string_view text);
    /// An object from members the caller knows to be free of duplicate keys (no check, O(1)).
    static json_value from_members_unchecked(json_object members);

    // ---- type tests ------------------------------------------------------------------------
    json_kind kind() const noexcept { return kind_; }
    bool is_null() const noexcept { return kind_ == json_kind::null; }
    bool is_bool() const noexcept { return kind_ == json_kind::boolean; }
    bool is_number() const noexcept { return kind_ == json_kind::number; }
    /// A number written without fraction or exponent that fits int64.
    bool is_int64() const noexcept { return kind_ == json_kind::number && num_ == num_kind::int64; }
    /// A number written without fraction or exponent that fits uint64 (so also non-negative int64).
    bool is_uint64() const noexcept;
    /// A number written with a fraction or exponent, or an integer too large for 64 bits.
    bool is_double() const noexcept { return kind_ == json_kind::number && num_ == num_kind::floating; }
    bool is_string() const noexcept { return kind_ == json_kind::string; }
    bool is_array() const noexcept { return kind_ == json_kind::array; }
    bool is_object() const noexcept { return kind_ == json_kind::object; }

    // ---- accessors (CACHALOT_CHECK on the wrong kind: test the kind first) ------------------
    bool as_bool() const;
    int64_t as_int64() const;
    uint64_t as_uint64() const;
    /// Any number as a double (integers convert, possibly rounding).
    double as_double() const;
    const std::string& as_string() const;
    std::string& as_string();
    const json_array& as_array() const;
    json_array& as_array();
    const json_object& as_object() const;
    json_object& as_object();
    /// The number's JSON text as parsed or as it will be written compactly.
    const std::string& number_text() const;

    /// Member lookup; nullptr when this is not an object or has no such key.
    const json_value* find(std::string_view key) const;
    json_value* find(std::string_view key);
    bool contains(std::string_view key) const { return find(key) != nullptr; }
    /// Array element or object member count; 0 for scalars.
    size_t size() const noexcept;
    const json_value& operator[](size_t i) const { return as_array().at(i); }

    /// Sets (replacing in place) or appends an object member; turns null into an empty object.
    json_value& set(std::string key, json_value value);
    /// Appends to an array; turns null into an empty array.
    json_value& push_back(json_value value);
    /// Removes an object member; returns whether it was there.
    bool erase(std::string_view key);

    // ---- serialisation ---------------------------------------------------------------------
    /// JSON.stringify form: no whitespace, non-ASCII raw, numbers as their source text.
    std::string dump_compact() const;
    /// Python json.dumps(ensure_ascii=False) form: ", " and ": " separators, Python's escapes,
    /// floats as Python's repr (1.0, 1e-05, 1e+16).
    std::string dump_python() const;

    friend bool operator==(const json_value& a, const json_value& b);

private:
    enum class num_kind : uint8_t { int64, uint64, floating };

    json_kind kind_ = json_kind::null;
    num_kind num_ = num_kind::int64;
    bool bool_ = false;
    bool big_integer_ = false; // integer text beyond 64 bits, which Python keeps exact
    int64_t i64_ = 0;
    uint64_t u64_ = 0;
    double f64_ = 0.0;
    std::string num_text_;
    std::string str_;
    json_array arr_;
    json_object obj_;

    void init_signed(int64_t v);
    void init_unsigned(uint64_t v);

    void dump_compact_to(std::string& out) const;
    void dump_python_to(std::string& out) const;
};

/// Parses one JSON document (RFC 8259): rejects invalid UTF-8, trailing content (including a
/// second document) and nesting deeper than 512. Errors are errc::bad_format with the byte
/// offset, line and column of the problem.
[[nodiscard]] result<json_value> parse_json(std::string_view text);

/// Appends `s` as a JSON string literal: JSON.stringify's escapes (\" \\ \b \f \n \r \t,
/// \u00XX for other control characters), non-ASCII raw.
void append_json_string(std::string& out, std::string_view s);

/// Python float repr of a finite double ("1.0", "0.0001", "1e-05", "1e+16").
std::string python_float_repr(double v);
/// JavaScript Number#toString of a finite double ("1", "0.000001", "1e-7", "1e+21").
std::string js_number_string(double v);

} // namespace cachalot

// json_value, the JSON parser and both serialisers. The parser is a small recursive-descent one
// rather than simdjson's DOM because the DOM forgets how numbers were written and on-demand
// parsing reports errors lazily and accepts a second document after the first; simdjson still
// validates UTF-8 up front, which is the part it is fastest at. Nothing here allocates per byte:
// runs of plain string characters are copied in bulk.
#include "engine/json.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>
#include <unordered_map>

namespace cachalot {

// ---- construction and access ---------------------------------------------------------------

json_value::json_value(double v) : kind_(json_kind::number), num_(num_kind::floating), f64_(v) {
    num_text_ = std::isfinite(v) ? js_number_string(v) : "null";
}

json_value::json_value(json_array a) : kind_(json_kind::array), arr_(std::move(a)) {}

json_value::json_value(json_object o) : kind_(json_kind::object) {
    for (auto& m : o) {
        set(std::move(m.first), std::move(m.second));
    }
}

void json_value::init_signed(int64_t v) {
    kind_ = json_kind::number;
    num_ = num_kind::int64;
    i64_ = v;
    u64_ = static_cast<uint64_t>(v);
    f64_ = static_cast<double>(v);
    num_text_ = std::to_string(v);
}

void json_value::init_unsigned(uint64_t v) {
    if (v <= static_cast<uint64_t>(INT64_MAX)) {
        init_signed(static_cast<int64_t>(v));
        return;
    }
    kind_ = json_kind::number;
    num_ = num_kind::uint64;
    u64_ = v;
    f64_ = static_cast<double>(v);
    num_text_ = std::to_string(v);
}

json_value json_value::from_members_unchecked(json_object members) {
    json_value v;
    v.kind_ = json_kind::object;
    v.obj_ = std::move(members);
    return v;
}

json_value json_value::array(std::initializer_list<json_value> items) { return json_value(json_array(items)); }

json_value json_value::object(std::initializer_list<json_member> members) {
    return json_value(json_object(members));
}

json_value json_value::number_from_text(std::string_view text) {
    json_value v;
    bool integral = text.find_first_of(".eE") == std::string_view::npos;
    const char* b = text.data();
    const char* e = text.data() + text.size();
    if (integral) {
        int64_t i = 0;
        auto r = std::from_chars(b, e, i);
        if (r.ec == std::errc() && r.ptr == e) {
            v.init_signed(i);
            v.num_text_ = std::string(text);
            return v;
        }
        uint64_t u = 0;
        auto ru = std::from_chars(b, e, u);
        if (ru.ec == std::errc() && ru.ptr == e) {
            v.init_unsigned(u);
            v.num_text_ = std::string(text);
            return v;
        }
    }
    v.kind_ = json_kind::number;
    v.num_ = num_kind::floating;
    v.big_integer_ = integral;
    double d = 0.0;
    auto r = std::from_chars(b, e, d);
    if (r.ec == std::errc::result_out_of_range) {
        // from_chars leaves d untouched on overflow; Python and JavaScript give inf or 0.
        bool tiny = text.find("e-") != std::string_view::npos || text.find("E-") != std::string_view::npos;
        d = tiny ? 0.0 : HUGE_VAL;
        if (!text.empty() && text[0] == '-') {
            d = -d;
        }
    }
    v.f64_ = d;
    v.num_text_ = std::string(text);
    return v;
}

bool json_value::is_uint64() const noexcept {
    return kind_ == json_kind::number && (num_ == num_kind::uint64 || (num_ == num_kind::int64 && i64_ >= 0));
}

bool json_value::as_bool() const {
    CACHALOT_CHECK(is_bool(), "json_value is not a boolean");
    return bool_;
}

int64_t json_value::as_int64() const {
    CACHALOT_CHECK(is_int64(), "json_value is not an int64");
    return i64_;
}

uint64_t json_value::as_uint64() const {
    CACHALOT_CHECK(is_uint64(), "json_value is not a uint64");
    return u64_;
}

double json_value::as_double() const {
    CACHALOT_CHECK(is_number(), "json_value is not a number");
    return f64_;
}

const std::string& json_value::as_string() const {
    CACHALOT_CHECK(is_string(), "json_value is not a string");
    return str_;
}

std::string& json_value::as_string() {
    CACHALOT_CHECK(is_string(), "json_value is not a string");
    return str_;
}

const json_array& json_value::as_array() const {
    CACHALOT_CHECK(is_array(), "json_value is not an array");
    return arr_;
}

json_array& json_value::as_array() {
    CACHALOT_CHECK(is_array(), "json_value is not an array");
    return arr_;
}

const json_object& json_value::as_object() const {
    CACHALOT_CHECK(is_object(), "json_value is not an object");
    return obj_;
}

json_object& json_value::as_object() {
    CACHALOT_CHECK(is_object(), "json_value is not an object");
    return obj_;
}

const std::string& json_value::number_text() const {
    CACHALOT_CHECK(is_number(), "json_value is not a number");
    return num_text_;
}

const json_value* json_value::find(std::string_view key) const {
    if (kind_ != json_kind::object) {
        return nullptr;
    }
    for (const auto& m : obj_) {
        if (m.first == key) {
            return &m.second;
        }
    }
    return nullptr;
}

json_value* json_value::find(std::string_view key) {
    return const_cast<json_value*>(static_cast<const json_value*>(this)->find(key));
}

size_t json_value::size() const noexcept {
    if (kind_ == json_kind::array) {
        return arr_.size();
    }
    if (kind_ == json_kind::object) {
        return obj_.size();
    }
    return 0;
}

json_value& json_value::set(std::string key, json_value value) {
    if (kind_ == json_kind::null) {
        kind_ = json_kind::object;
    }
    CACHALOT_CHECK(is_object(), "json_value::set on a non-object");
    if (json_value* existing = find(key)) {
        *existing = std::move(value);
        return *existing;
    }
    obj_.emplace_back(std::move(key), std::move(value));
    return obj_.back().second;
}

json_value& json_value::push_back(json_value value) {
    if (kind_ == json_kind::null) {
        kind_ = json_kind::array;
    }
    CACHALOT_CHECK(is_array(), "json_value::push_back on a non-array");
    arr_.push_back(std::move(value));
    return arr_.back();
}

bool json_value::erase(std::string_view key) {
    if (kind_ != json_kind::object) {
        return false;
    }
    auto it = std::find_if(obj_.begin(), obj_.end(), [&](const json_member& m) { return m.first == key; });
    if (it == obj_.end()) {
        return false;
    }
    obj_.erase(it);
    return true;
}

bool operator==(const json_value& a, const json_value& b) {
    if (a.kind_ != b.kind_) {
        return false;
    }
    switch (a.kind_) {
    case json_kind::null:
        return true;
    case json_kind::boolean:
        return a.bool_ == b.bool_;
    case json_kind::number:
        if (a.num_ != json_value::num_kind::floating && b.num_ != json_value::num_kind::floating) {
            return a.num_ == b.num_ && a.u64_ == b.u64_ && a.i64_ == b.i64_;
        }
        return a.f64_ == b.f64_;
    case json_kind::string:
        return a.str_ == b.str_;
    case json_kind::array:
        return a.arr_ == b.arr_;
    case json_kind::object:
        // Member order is presentation, not meaning.
        if (a.obj_.size() != b.obj_.size()) {
            return false;
        }
        for (const auto& m : a.obj_) {
            const json_value* other = b.find(m.first);
            if (other == nullptr || !(*other == m.second)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

// ---- number formatting ---------------------------------------------------------------------

namespace {

// Shortest round-trip digits of |v| and the decimal exponent of the first digit.
void shortest_digits(double v, std::string& digits, int& exponent) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, std::fabs(v), std::chars_format::scientific);
    std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
    size_t e = s.find('e');
    digits.clear();
    for (char c : s.substr(0, e)) {
        if (c != '.') {
            digits.push_back(c);
        }
    }
    std::from_chars(s.data() + e + 1 + (s[e + 1] == '+' ? 1 : 0), s.data() + s.size(), exponent);
    while (digits.size() > 1 && digits.back() == '0') {
        digits.pop_back();
    }
}

std::string fixed_from_digits(const std::string& digits, int exponent, bool point_zero) {
    std::string out;
    int n = static_cast<int>(digits.size());
    if (exponent >= 0) {
        if (n <= exponent + 1) {
            out = digits + std::string(static_cast<size_t>(exponent + 1 - n), '0');
            if (point_zero) {
                out += ".0";
            }
        } else {
            out = digits.substr(0, static_cast<size_t>(exponent + 1)) + "." +
                  digits.substr(static_cast<size_t>(exponent + 1));
        }
    } else {
        out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    }
    return out;
}

std::string sci_from_digits(const std::string& digits, int exponent, bool pad_exponent) {
    std::string out(1, digits[0]);
    if (digits.size() > 1) {
        out += "." + digits.substr(1);
    }
    out += exponent < 0 ? "e-" : "e+";
    std::string e = std::to_string(std::abs(exponent));
    if (pad_exponent && e.size() < 2) {
        e = "0" + e;
    }
    return out + e;
}

} // namespace

std::string python_float_repr(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v < 0 ? "-Infinity" : "Infinity";
    }
    std::string sign = std::signbit(v) ? "-" : "";
    if (v == 0.0) {
        return sign + "0.0";
    }
    std::string digits;
    int exponent = 0;
    shortest_digits(v, digits, exponent);
    // repr switches to scientific notation outside 1e-4 <= |v| < 1e16.
    if (exponent >= -4 && exponent < 16) {
        return sign + fixed_from_digits(digits, exponent, true);
    }
    return sign + sci_from_digits(digits, exponent, true);
}

std::string js_number_string(double v) {
    if (!std::isfinite(v)) {
        return "null";
    }
    if (v == 0.0) {
        return "0";
    }
    std::string sign = v < 0 ? "-" : "";
    std::string digits;
    int exponent = 0;
    shortest_digits(v, digits, exponent);
    if (exponent >= -6 && exponent < 21) {
        return sign + fixed_from_digits(digits, exponent, false);
    }
    return sign + sci_from_digits(digits, exponent, false);
}

// ---- serialisation -------------------------------------------------------------------------

void append_json_string(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out.push_back('"');
    size_t run = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            out += "\\u00";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    out.append(s.data() + run, s.size() - run);
    out.push_back('"');
}

void json_value::dump_compact_to(std::string& out) const {
    switch (kind_) {
    case json_kind::null: out += "null"; break;
    case json_kind::boolean: out += bool_ ? "true" : "false"; break;
    case json_kind::number: out += num_text_; break;
    case json_kind::string: append_json_string(out, str_); break;
    case json_kind::array:
        out.push_back('[');
        for (size_t i = 0; i < arr_.size(); ++i) {
            if (i != 0) {
                out.push_back(',');
            }
            arr_[i].dump_compact_to(out);
        }
        out.push_back(']');
        break;
    case json_kind::object:
        out.push_back('{');
        for (size_t i = 0; i < obj_.size(); ++i) {
            if (i != 0) {
                out.push_back(',');
            }
            append_json_string(out, obj_[i].first);
            out.push_back(':');
            obj_[i].second.dump_compact_to(out);
        }
        out.push_back('}');
        break;
    }
}

void json_value::dump_python_to(std::string& out) const {
    switch (kind_) {
    case json_kind::null: out += "null"; break;
    case json_kind::boolean: out += bool_ ? "true" : "false"; break;
    case json_kind::number:
        if (num_ == num_kind::int64) {
            out += std::to_string(i64_); // "-0" is the int 0 to Python
        } else if (num_ == num_kind::uint64) {
            out += std::to_string(u64_);
        } else if (big_integer_) {
            out += num_text_;
        } else {
            out += python_float_repr(f64_);
        }
        break;
    case json_kind::string: append_json_string(out, str_); break;
    case json_kind::array:
        out.push_back('[');
        for (size_t i = 0; i < arr_.size(); ++i) {
            if (i != 0) {
                out += ", ";
            }
            arr_[i].dump_python_to(out);
        }
        out.push_back(']');
        break;
    case json_kind::object:
        out.push_back('{');
        for (size_t i = 0; i < obj_.size(); ++i) {
            if (i != 0) {
                out += ", ";
            }
            append_json_string(out, obj_[i].first);
            out += ": ";
            obj_[i].second.dump_python_to(out);
        }
        out.push_back('}');
        break;
    }
}

std::string json_value::dump_compact() const {
    std::string out;
    dump_compact_to(out);
    return out;
}

std::string json_value::dump_python() const {
    std::string out;
    dump_python_to(out);
    return out;
}

// ---- parsing -------------------------------------------------------------------------------

namespace {

constexpr int max_depth = 512;

class json_parser {
public:
    explicit json_parser(std::string_view text) : s_(text) {}

    result<json_value> parse_document() {
        skip_ws();
        auto v = parse_value(0);
        if (!v.ok()) {
            return v;
        }
        skip_ws();
        if (pos_ != s_.size()) {
            return fail("unexpected content after the JSON value (a second document?)");
        }
        return v;
    }

private:
    std::string_view s_;
    size_t pos_ = 0;

    error fail(const std::string& what) const {
        size_t line = 1;
        size_t col = 1;
        for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
            if (s_[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        return make_error(errc::bad_format, "invalid JSON at byte " + std::to_string(pos_) + " (line " +
                                                std::to_string(line) + ", column " + std::to_string(col) +
                                                "): " + what);
    }

    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            ++pos_;
        }
    }

    bool consume_literal(std::string_view lit) {
        if (s_.substr(pos_, lit.size()) == lit) {
            pos_ += lit.size();
            return true;
        }
        return false;
    }

    result<json_value> parse_value(int depth) {
        if (pos_ >= s_.size()) {
            return fail("unexpected end of input, expected a value");
        }
        char c = s_[pos_];
        switch (c) {
        case '{': return parse_object(depth + 1);
        case '[': return parse_array(depth + 1);
        case '"': {
            std::string str;
            CACHALOT_TRY(parse_string(str));
            return json_value(std::move(str));
        }
        case 't':
            if (consume_literal("true")) {
                return json_value(true);
            }
            break;
        case 'f':
            if (consume_literal("false")) {
                return json_value(false);
            }
            break;
        case 'n':
            if (consume_literal("null")) {
                return json_value();
            }
            break;
        default:
            if (c == '-' || (c >= '0' && c <= '9')) {
                return parse_number();
            }
        }
        return fail(std::string("unexpected character '") + printable(c) + "', expected a value");
    }

    static std::string printable(char c) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            return buf;
        }
        return std::string(1, c);
    }

    result<json_value> parse_number() {
        size_t start = pos_;
        auto digit = [&](size_t i) { return i < s_.size() && s_[i] >= '0' && s_[i] <= '9'; };
        if (s_[pos_] == '-') {
            ++pos_;
        }
        if (!digit(pos_)) {
            return fail("a number needs digits after '-'");
        }
        if (s_[pos_] == '0') {
            ++pos_;
            if (digit(pos_)) {
                return fail("numbers may not have leading zeros");
            }
        } else {
            while (digit(pos_)) {
                ++pos_;
            }
        }
        if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            if (!digit(pos_)) {
                return fail("a number needs digits after '.'");
            }
            while (digit(pos_)) {
                ++pos_;
            }
        }
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
                ++pos_;
            }
            if (!digit(pos_)) {
                return fail("a number needs digits in its exponent");
            }
            while (digit(pos_)) {
                ++pos_;
            }
        }
        return json_value::number_from_text(s_.substr(start, pos_ - start));
    }

    result<uint32_t> parse_hex4() {
        if (pos_ + 4 > s_.size()) {
            return fail("truncated \\u escape");
        }
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = s_[pos_ + static_cast<size_t>(i)];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= static_cast<uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= static_cast<uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= static_cast<uint32_t>(c - 'A' + 10);
            } else {
                return fail("bad hex digit in \\u escape");
            }
        }
        pos_ += 4;
        return v;
    }

    static void append_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    }

    status parse_string(std::string& out) {
        ++pos_; // opening quote
        size_t run = pos_;
        while (true) {
            if (pos_ >= s_.size()) {
                return fail("unterminated string");
            }
            auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                out.append(s_.data() + run, pos_ - run);
                ++pos_;
                return ok_status();
            }
            if (c < 0x20) {
                return fail("control character inside a string (escape it)");
            }
            if (c != '\\') {
                ++pos_;
                continue;
            }
            out.append(s_.data() + run, pos_ - run);
            ++pos_;
            if (pos_ >= s_.size()) {
                return fail("unterminated escape");
            }
            char e = s_[pos_++];
            switch (e) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                auto hi = parse_hex4();
                if (!hi.ok()) {
                    return std::move(hi).take_error();
                }
                uint32_t cp = *hi;
                if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
                    size_t save = pos_;
                    pos_ += 2;
                    auto lo = parse_hex4();
                    if (!lo.ok()) {
                        return std::move(lo).take_error();
                    }
                    if (*lo >= 0xDC00 && *lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (*lo - 0xDC00);
                    } else {
                        pos_ = save; // the next escape stands on its own
                        cp = 0xFFFD;
                    }
                } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                    cp = 0xFFFD; // a lone surrogate has no UTF-8 form
                }
                append_utf8(out, cp);
                break;
            }
            default:
                --pos_;
                return fail(std::string("bad escape '\\") + printable(e) + "'");
            }
            run = pos_;
        }
    }

    result<json_value> parse_array(int depth) {
        if (depth > max_depth) {
            return fail("nesting deeper than 512");
        }
        ++pos_;
        json_array items;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == ']') {
            ++pos_;
            return json_value(std::move(items));
        }
        while (true) {
            skip_ws();
            auto v = parse_value(depth);
            if (!v.ok()) {
                return v;
            }
            items.push_back(std::move(v).value());
            skip_ws();
            if (pos_ >= s_.size()) {
                return fail("unterminated array, expected ',' or ']'");
            }
            if (s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (s_[pos_] == ']') {
                ++pos_;
                return json_value(std::move(items));
            }
            return fail(std::string("expected ',' or ']' in an array, found '") + printable(s_[pos_]) + "'");
        }
    }

    result<json_value> parse_object(int depth) {
        if (depth > max_depth) {
            return fail("nesting deeper than 512");
        }
        ++pos_;
        json_object members;
        // A hash index only for big objects, so that duplicate detection stays linear.
        std::unordered_map<std::string, size_t> index;
        auto finish = [&]() { return json_value::from_members_unchecked(std::move(members)); };
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '}') {
            ++pos_;
            return finish();
        }
        while (true) {
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != '"') {
                return fail("expected a string key in an object");
            }
            std::string key;
            CACHALOT_TRY(parse_string(key));
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != ':') {
                return fail("expected ':' after an object key");
            }
            ++pos_;
            skip_ws();
            auto v = parse_value(depth);
            if (!v.ok()) {
                return v;
            }
            if (members.size() == 16 && index.empty()) {
                for (size_t i = 0; i < members.size(); ++i) {
                    index.emplace(members[i].first, i);
                }
            }
            size_t existing = members.size();
            if (members.size() >= 16) {
                auto [it, inserted] = index.emplace(key, members.size());
                existing = inserted ? members.size() : it->second;
            } else {
                for (size_t i = 0; i < members.size(); ++i) {
                    if (members[i].first == key) {
                        existing = i;
                        break;
                    }
                }
            }
            if (existing < members.size()) {
                members[existing].second = std::move(v).value();
            } else {
                members.emplace_back(std::move(key), std::move(v).value());
            }
            skip_ws();
            if (pos_ >= s_.size()) {
                return fail("unterminated object, expected ',' or '}'");
            }
            if (s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (s_[pos_] == '}') {
                ++pos_;
                return finish();
            }
            return fail(std::string("expected ',' or '}' in an object, found '") + printable(s_[pos_]) + "'");
        }
    }
};

} // namespace

result<json_value> parse_json(std::string_view text) {
    if (!simdjson::validate_utf8(text.data(), text.size())) {
        return make_error(errc::bad_format, "invalid JSON: the text is not valid UTF-8");
    }
    return json_parser(text).parse_document();
}

} // namespace cachalot

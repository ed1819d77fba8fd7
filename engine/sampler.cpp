// Sampling: parameter validation, the seeded generator, penalties, truncation (top-k, top-p,
// min-p), the draw, logprobs, and the byte format of sampler_state. The processing order is
// documented in sampler.h. Everything that decides which token comes out is computed in a fixed
// order (ids ascending, or a total order by weight then id), never in the order a library
// algorithm happens to leave elements in, so that a seed reproduces across standard libraries.
// Deliberately not here: stop strings, EOS and max_tokens handling, batching across sequences.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

namespace cachalot {
namespace {

// Below this a temperature is treated as greedy, as vLLM does; dividing by it would overflow.
constexpr float greedy_temperature_eps = 1e-5f;
constexpr std::int32_t max_top_logprobs = 20;

std::string format_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

status range_error(const char* field, const char* range, double got) {
    return make_error(errc::invalid_argument,
                      std::string(field) + " must be in " + range + ", got " + format_number(got));
}

std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

std::uint64_t random_seed() {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ static_cast<std::uint64_t>(rd());
}

// "a ranks before b": higher value first, lower id first on equal values. A total order, so the
// resulting ranking does not depend on the sort algorithm.
struct rank_before {
    const float* values;
    bool operator()(token_id a, token_id b) const { return values[a] > values[b] || (values[a] == values[b] && a < b); }
};

// Little-endian writer and reader for sampler_state.
void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
}
void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
}

class byte_reader {
public:
    explicit byte_reader(std::string_view bytes) : bytes_(bytes) {}
    bool u32(std::uint32_t& v) {
        if (bytes_.size() - pos_ < 4) {
            return false;
        }
        v = 0;
        for (int i = 0; i < 4; ++i) {
            v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
        }
        pos_ += 4;
        return true;
    }
    bool u64(std::uint64_t& v) {
        if (bytes_.size() - pos_ < 8) {
            return false;
        }
        v = 0;
        for (int i = 0; i < 8; ++i) {
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
        }
        pos_ += 8;
        return true;
    }
    std::size_t remaining() const { return bytes_.size() - pos_; }

private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

constexpr std::uint32_t state_magic = 0x504d5343; // "CSMP" little-endian
constexpr std::uint32_t state_version = 1;

status check_state(const sampler_state& s) {
    if (s.rng == std::array<std::uint64_t, 4>{}) {
        return make_error(errc::invalid_argument, "sampler state: rng state is all zero");
    }
    for (std::size_t i = 0; i < s.prompt_tokens.size(); ++i) {
        if (s.prompt_tokens[i] < 0 || (i > 0 && s.prompt_tokens[i] <= s.prompt_tokens[i - 1])) {
            return make_error(errc::invalid_argument,
                              "sampler state: prompt_tokens must be non-negative, sorted and unique");
        }
    }
    std::int64_t total = 0;
    for (std::size_t i = 0; i < s.output_counts.size(); ++i) {
        const auto& [tok, count] = s.output_counts[i];
        if (tok < 0 || count <= 0 || (i > 0 && tok <= s.output_counts[i - 1].first)) {
            return make_error(errc::invalid_argument,
                              "sampler state: output_counts must have non-negative sorted unique "
                              "tokens and positive counts");
        }
        total += count;
    }
    if (total != s.n_output_tokens) {
        return make_error(errc::invalid_argument,
                          "sampler state: n_output_tokens " + std::to_string(s.n_output_tokens) +
                              " differs from the sum of output_counts " + std::to_string(total));
    }
    return ok_status();
}

} // namespace

// ---- sampling_params ----------------------------------------------------------------------------

bool sampling_params::is_greedy() const {
    return temperature < greedy_temperature_eps;
}

status sampling_params::validate() const {
    // Written as !(in range) so that NaN fails every check.
    if (!(temperature >= 0.0f && temperature <= 2.0f)) {
        return range_error("temperature", "[0, 2]", temperature);
    }
    if (top_k < -1) {
        return make_error(errc::invalid_argument,
                          "top_k must be -1 or 0 (off) or at least 1, got " + std::to_string(top_k));
    }
    if (!(top_p > 0.0f && top_p <= 1.0f)) {
        return range_error("top_p", "(0, 1]", top_p);
    }
    if (!(min_p >= 0.0f && min_p <= 1.0f)) {
        return range_error("min_p", "[0, 1]", min_p);
    }
    if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
        return range_error("presence_penalty", "[-2, 2]", presence_penalty);
    }
    if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
        return range_error("frequency_penalty", "[-2, 2]", frequency_penalty);
    }
    if (!(repetition_penalty > 0.0f && std::isfinite(repetition_penalty))) {
        return make_error(errc::invalid_argument,
                          "repetition_penalty must be a finite number > 0, got " + format_number(repetition_penalty));
    }
    for (std::size_t i = 0; i < stop.size(); ++i) {
        if (stop[i].empty()) {
            return make_error(errc::invalid_argument,
                              "stop[" + std::to_string(i) + "] is empty; stop strings must be non-empty");
        }
    }
    for (std::size_t i = 0; i < stop_token_ids.size(); ++i) {
        if (stop_token_ids[i] < 0) {
            return make_error(errc::invalid_argument, "stop_token_ids[" + std::to_string(i) + "] must be >= 0, got " +
                                                          std::to_string(stop_token_ids[i]));
        }
    }
    if (max_tokens && *max_tokens < 1) {
        return make_error(errc::invalid_argument, "max_tokens must be at least 1, got " + std::to_string(*max_tokens));
    }
    if (top_logprobs < 0 || top_logprobs > max_top_logprobs) {
        return make_error(errc::invalid_argument,
                          "top_logprobs must be in [0, 20], got " + std::to_string(top_logprobs));
    }
    if (top_logprobs > 0 && !logprobs) {
        return make_error(errc::invalid_argument, "top_logprobs requires logprobs to be true");
    }
    return ok_status();
}

// ---- sampler_rng ----------------------------------------------------------------------------

sampler_rng::sampler_rng(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& word : s_) {
        word = splitmix64(x);
    }
}

std::uint64_t sampler_rng::next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

double sampler_rng::next_double() {
    return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

// ---- sampler_state --------------------------------------------------------------------------

std::string sampler_state::serialize() const {
    std::string out;
    out.reserve(4 + 4 + 32 + 8 + 8 + 4 * prompt_tokens.size() + 8 + 8 * output_counts.size());
    put_u32(out, state_magic);
    put_u32(out, state_version);
    for (std::uint64_t w : rng) {
        put_u64(out, w);
    }
    put_u64(out, static_cast<std::uint64_t>(n_output_tokens));
    put_u64(out, prompt_tokens.size());
    for (token_id t : prompt_tokens) {
        put_u32(out, static_cast<std::uint32_t>(t));
    }
    put_u64(out, output_counts.size());
    for (const auto& [t, c] : output_counts) {
        put_u32(out, static_cast<std::uint32_t>(t));
        put_u32(out, static_cast<std::uint32_t>(c));
    }
    return out;
}

result<sampler_state> sampler_state::deserialize(std::string_view bytes) {
    auto truncated = [] { return make_error(errc::bad_format, "sampler state: truncated byte string"); };
    byte_reader r(bytes);
    std::uint32_t magic = 0;
    std::uint32_t version = 0;
    if (!r.u32(magic) || magic != state_magic) {
        return make_error(errc::bad_format, "sampler state: bad magic (not a sampler state)");
    }
    if (!r.u32(version) || version != state_version) {
        return make_error(errc::bad_format, "sampler state: unsupported version " + std::to_string(version));
    }
    sampler_state s;
    for (auto& w : s.rng) {
        if (!r.u64(w)) {
            return truncated();
        }
    }
    std::uint64_t n = 0;
    if (!r.u64(n)) {
        return truncated();
    }
    s.n_output_tokens = static_cast<std::int64_t>(n);
    if (!r.u64(n)) {
        return truncated();
    }
    if (n > r.remaining() / 4) {
        return truncated();
    }
    s.prompt_tokens.resize(n);
    for (auto& t : s.prompt_tokens) {
        std::uint32_t v = 0;
        r.u32(v);
        t = static_cast<token_id>(v);
    }
    if (!r.u64(n)) {
        return truncated();
    }
    if (n > r.remaining() / 8) {
        return truncated();
    }
    s.output_counts.resize(n);
    for (auto& [t, c] : s.output_counts) {
        std::uint32_t a = 0;
        std::uint32_t b = 0;
        r.u32(a);
        r.u32(b);
        t = static_cast<token_id>(a);
        c = static_cast<std::int32_t>(b);
    }
    if (r.remaining() != 0) {
        return make_error(errc::bad_format, "sampler state: " + std::to_string(r.remaining()) + " trailing bytes");
    }
    if (auto st = check_state(s); !st) {
        return make_error(errc::bad_format, st.err().message);
    }
    return s;
}

// ---- sampler --------------------------------------------------------------------------------

sampler::sampler(const sampling_params& params, sampler_state state)
    : params_(params), rng_(state.rng), prompt_tokens_(std::move(state.prompt_tokens)),
      output_counts_(std::move(state.output_counts)), n_output_tokens_(state.n_output_tokens) {
}

result<sampler> sampler::create(const sampling_params& params, std::span<const token_id> prompt) {
    CACHALOT_TRY(params.validate());
    sampler_state s;
    s.rng = sampler_rng(params.seed ? *params.seed : random_seed()).state();
    if (params.repetition_penalty != 1.0f) {
        for (std::size_t i = 0; i < prompt.size(); ++i) {
            if (prompt[i] < 0) {
                return make_error(errc::invalid_argument, "prompt token " + std::to_string(i) + " is negative (" +
                                                              std::to_string(prompt[i]) + ")");
            }
        }
        s.prompt_tokens.assign(prompt.begin(), prompt.end());
        std::sort(s.prompt_tokens.begin(), s.prompt_tokens.end());
        s.prompt_tokens.erase(std::unique(s.prompt_tokens.begin(), s.prompt_tokens.end()), s.prompt_tokens.end());
    }
    return sampler(params, std::move(s));
}

result<sampler> sampler::restore(const sampling_params& params, sampler_state state) {
    CACHALOT_TRY(params.validate());
    CACHALOT_TRY(check_state(state));
    return sampler(params, std::move(state));
}

sampler_state sampler::state() const {
    sampler_state s;
    s.rng = rng_.state();
    s.prompt_tokens = prompt_tokens_;
    s.output_counts = output_counts_;
    s.n_output_tokens = n_output_tokens_;
    return s;
}

void sampler::accept(token_id token) {
    CACHALOT_CHECK(token >= 0, "accepted token id is negative");
    auto it = std::lower_bound(output_counts_.begin(), output_counts_.end(), token,
                               [](const auto& entry, token_id t) { return entry.first < t; });
    if (it != output_counts_.end() && it->first == token) {
        ++it->second;
    } else {
        output_counts_.insert(it, {token, 1});
    }
    ++n_output_tokens_;
}

status sampler::prepare(std::span<const float> logits) {
    if (logits.empty()) {
        return make_error(errc::invalid_argument, "sampler: the logits row is empty");
    }
    if (logits.size() > static_cast<std::size_t>(std::numeric_limits<token_id>::max())) {
        return make_error(errc::invalid_argument, "sampler: the logits row is larger than any vocabulary");
    }
    // One branch-free pass (it vectorises); the slow search for the culprit only on failure.
    constexpr float inf = std::numeric_limits<float>::infinity();
    bool any_bad = false;
    bool any_finite = false;
    for (const float x : logits) {
        any_bad |= (x != x) | (x == inf);
        any_finite |= (x > -inf) & (x < inf);
    }
    if (any_bad) {
        for (std::size_t i = 0; i < logits.size(); ++i) {
            if (std::isnan(logits[i]) || logits[i] == inf) {
                return make_error(errc::invalid_argument, "sampler: logit of token " + std::to_string(i) + " is " +
                                                              (std::isnan(logits[i]) ? "NaN" : "+inf"));
            }
        }
    }
    if (!any_finite) {
        return make_error(errc::invalid_argument, "sampler: every logit is -inf");
    }
    logits_.assign(logits.begin(), logits.end());
    const auto n_vocab = static_cast<token_id>(logits_.size());

    const float rep = params_.repetition_penalty;
    if (rep != 1.0f) {
        auto penalise = [&](token_id t) {
            if (t < n_vocab) {
                float& l = logits_[t];
                l = l > 0.0f ? l / rep : l * rep;
            }
        };
        // Union of the prompt set and the output tokens, each token once.
        std::size_t i = 0;
        std::size_t j = 0;
        while (i < prompt_tokens_.size() || j < output_counts_.size()) {
            if (j == output_counts_.size() ||
                (i < prompt_tokens_.size() && prompt_tokens_[i] < output_counts_[j].first)) {
                penalise(prompt_tokens_[i++]);
            } else if (i == prompt_tokens_.size() || output_counts_[j].first < prompt_tokens_[i]) {
                penalise(output_counts_[j++].first);
            } else {
                penalise(prompt_tokens_[i]);
                ++i;
                ++j;
            }
        }
    }
    if (params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f) {
        for (const auto& [t, count] : output_counts_) {
            if (t < n_vocab) {
                logits_[t] -= params_.frequency_penalty * static_cast<float>(count) + params_.presence_penalty;
            }
        }
    }
    return ok_status();
}

token_id sampler::greedy_token() const {
    // The running maximum lives in a register: reloading logits_[best] each step would chain
    // every iteration on a load.
    token_id best = 0;
    float best_value = logits_[0];
    for (token_id i = 1; i < static_cast<token_id>(logits_.size()); ++i) {
        if (logits_[i] > best_value) {
            best_value = logits_[i];
            best = i;
        }
    }
    return best;
}

double sampler::truncated_distribution() {
    const auto n_vocab = static_cast<token_id>(logits_.size());
    const float max_logit = logits_[greedy_token()];
    const float temperature = params_.temperature;

    kept_.clear();
    for (token_id i = 0; i < n_vocab; ++i) {
        if (logits_[i] != -std::numeric_limits<float>::infinity()) {
            kept_.push_back(i);
        }
    }

    // Top-k on the logits, before any exp (temperature keeps their order).
    const std::int32_t k = params_.top_k;
    if (k > 0 && static_cast<std::size_t>(k) < kept_.size()) {
        float kth = 0.0f;
        if (k <= 256) {
            // A min-heap of the k largest: most logits lose one comparison with its top.
            std::vector<float> heap;
            heap.reserve(k);
            for (token_id t : kept_) {
                const float x = logits_[t];
                if (heap.size() < static_cast<std::size_t>(k)) {
                    heap.push_back(x);
                    std::push_heap(heap.begin(), heap.end(), std::greater<float>());
                } else if (x > heap.front()) {
                    std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
                    heap.back() = x;
                    std::push_heap(heap.begin(), heap.end(), std::greater<float>());
                }
            }
            kth = heap.front();
        } else {
            std::vector<float> values(kept_.size());
            for (std::size_t i = 0; i < kept_.size(); ++i) {
                values[i] = logits_[kept_[i]];
            }
            std::nth_element(values.begin(), values.begin() + (k - 1), values.end(), std::greater<float>());
            kth = values[k - 1];
        }
        std::erase_if(kept_, [&](token_id t) { return logits_[t] < kth; });
    }

    // The argmax gets exactly exp(0) = 1; underflows get 0 and drop out.
    weights_.resize(logits_.size());
    for (token_id t : kept_) {
        weights_[t] = std::exp((logits_[t] - max_logit) / temperature);
    }
    std::erase_if(kept_, [&](token_id t) { return !(weights_[t] > 0.0f); });

    if (params_.top_p < 1.0f && kept_.size() > 1) {
        apply_top_p();
    }

    // Min-p relative to the largest surviving probability (normalisation cancels in the ratio).
    if (params_.min_p > 0.0f && kept_.size() > 1) {
        float max_w = 0.0f;
        for (token_id t : kept_) {
            max_w = std::max(max_w, weights_[t]);
        }
        const float threshold = params_.min_p * max_w;
        std::erase_if(kept_, [&](token_id t) { return weights_[t] < threshold; });
    }

    double total = 0.0;
    for (token_id t : kept_) {
        total += weights_[t];
    }
    return total;
}

void sampler::apply_top_p() {
    // Token x survives when the mass ranked above it (weight descending, lower id first) is
    // still below top_p of the total. Instead of sorting all survivors, bucket them by the top
    // bits of their float weight (monotone in the weight for positive floats): buckets whose
    // cumulative mass from the top stays below the target survive whole, those past it drop
    // whole, and only the one bucket straddling the target is sorted.
    double total = 0.0;
    for (token_id t : kept_) {
        total += weights_[t];
    }
    const double target = static_cast<double>(params_.top_p) * total;
    const rank_before before{weights_.data()};

    constexpr std::size_t small_set = 1024;
    if (kept_.size() <= small_set) {
        std::vector<token_id> order = kept_;
        std::sort(order.begin(), order.end(), before);
        double mass_before = 0.0;
        std::size_t n_keep = order.size();
        for (std::size_t i = 0; i < order.size(); ++i) {
            if (mass_before >= target) {
                n_keep = i;
                break;
            }
            mass_before += weights_[order[i]];
        }
        order.resize(n_keep);
        std::sort(order.begin(), order.end());
        kept_.swap(order);
        return;
    }

    constexpr int bucket_shift = 18; // 8 exponent bits + 5 mantissa bits: buckets ~3% wide
    constexpr std::size_t n_buckets = std::size_t{1} << (31 - bucket_shift);
    auto bucket_of = [&](token_id t) {
        std::uint32_t bits = 0;
        std::memcpy(&bits, &weights_[t], sizeof bits);
        return static_cast<std::size_t>(bits >> bucket_shift);
    };
    std::vector<double> bucket_mass(n_buckets, 0.0);
    for (token_id t : kept_) {
        bucket_mass[bucket_of(t)] += weights_[t];
    }
    double mass_above = 0.0;
    std::size_t edge = 0; // the straddling bucket
    bool found = false;
    for (std::size_t b = n_buckets; b-- > 0;) {
        if (mass_above + bucket_mass[b] >= target) {
            edge = b;
            found = true;
            break;
        }
        mass_above += bucket_mass[b];
    }
    if (!found) {
        return; // rounding kept the target out of reach: everything survives
    }
    std::vector<token_id> straddling;
    for (token_id t : kept_) {
        if (bucket_of(t) == edge) {
            straddling.push_back(t);
        }
    }
    std::sort(straddling.begin(), straddling.end(), before);
    double mass_before = mass_above;
    std::optional<token_id> first_dropped;
    for (token_id t : straddling) {
        if (mass_before >= target) {
            first_dropped = t;
            break;
        }
        mass_before += weights_[t];
    }
    std::erase_if(kept_, [&](token_id t) {
        const std::size_t b = bucket_of(t);
        if (b != edge) {
            return b < edge;
        }
        return first_dropped && !before(t, *first_dropped);
    });
}

void sampler::fill_logprobs(token_id token, sample_result& out) const {
    const auto n_vocab = static_cast<token_id>(logits_.size());
    const float max_logit = logits_[greedy_token()];
    // Terms in float (each is at most 1, an ulp of error is far below what a float logprob
    // shows), the sum in double.
    double sum = 0.0;
    for (float l : logits_) {
        sum += std::exp(l - max_logit);
    }
    const double log_z = static_cast<double>(max_logit) + std::log(sum);
    out.logprob = static_cast<float>(logits_[token] - log_z);

    const auto n_top = std::min<token_id>(params_.top_logprobs, n_vocab);
    out.top_logprobs.clear();
    if (n_top <= 0) {
        return;
    }
    // A heap of the best n_top so far with the worst on top: one pass, no copy of the row.
    const rank_before before{logits_.data()};
    std::vector<token_id> heap;
    heap.reserve(n_top);
    for (token_id i = 0; i < n_vocab; ++i) {
        if (static_cast<token_id>(heap.size()) < n_top) {
            heap.push_back(i);
            std::push_heap(heap.begin(), heap.end(), before);
        } else if (before(i, heap.front())) {
            std::pop_heap(heap.begin(), heap.end(), before);
            heap.back() = i;
            std::push_heap(heap.begin(), heap.end(), before);
        }
    }
    std::sort(heap.begin(), heap.end(), before);
    out.top_logprobs.reserve(heap.size());
    for (token_id t : heap) {
        out.top_logprobs.emplace_back(t, static_cast<float>(logits_[t] - log_z));
    }
}

result<sample_result> sampler::sample(std::span<const float> logits) {
    CACHALOT_TRY(prepare(logits));
    sample_result out;
    if (params_.is_greedy()) {
        out.token = greedy_token();
    } else {
        const double total = truncated_distribution();
        const double u = rng_.next_double() * total;
        double cum = 0.0;
        out.token = kept_.back(); // when rounding leaves u at or past the last cumulative sum
        for (token_id t : kept_) {
            cum += weights_[t];
            if (u < cum) {
                out.token = t;
                break;
            }
        }
    }
    if (params_.logprobs) {
        fill_logprobs(out.token, out);
    }
    return out;
}

result<std::vector<float>> sampler::probabilities(std::span<const float> logits) {
    CACHALOT_TRY(prepare(logits));
    std::vector<float> probs(logits_.size(), 0.0f);
    if (params_.is_greedy()) {
        probs[greedy_token()] = 1.0f;
        return probs;
    }
    const double total = truncated_distribution();
    for (token_id t : kept_) {
        probs[t] = static_cast<float>(weights_[t] / total);
    }
    return probs;
}

result<sample_result> sampler::score(std::span<const float> logits, token_id token) {
    if (token < 0 || static_cast<std::size_t>(token) >= logits.size()) {
        return make_error(errc::invalid_argument, "sampler: token " + std::to_string(token) +
                                                      " is outside the vocabulary of " + std::to_string(logits.size()));
    }
    CACHALOT_TRY(prepare(logits));
    sample_result out;
    out.token = token;
    fill_logprobs(token, out);
    return out;
}

} // namespace cachalot

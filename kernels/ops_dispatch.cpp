// Picks the implementation of each op for a precision. `exact` always runs the reference loops;
// `fast` runs the best CPU matmul kernel this machine supports (AVX-512 BF16, then AVX2), chosen
// once at first use, and falls back to the reference for layouts the kernels do not cover. This
// file owns the threading and the activation buffer; the kernels only compute. It is compiled
// without ISA flags, so it runs on any x86-64.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul_cpu.h"
#include "kernels/ops.h"

namespace cachalot {

void matmul_reference(const weight_view& w, const float* x, int64_t n_tokens, float* y, thread_pool& pool);

namespace {

const matmul_kernel* kernel_named(std::string_view name) {
#ifdef CACHALOT_HAVE_X86_KERNELS
    if (name == k_matmul_kernel_avx512.name) {
        return &k_matmul_kernel_avx512;
    }
    if (name == k_matmul_kernel_avx2.name) {
        return &k_matmul_kernel_avx2;
    }
#else
    (void)name;
#endif
    return nullptr;
}

const matmul_kernel* pick_kernel() {
#ifdef CACHALOT_HAVE_X86_KERNELS
    const cpu_features& f = host_cpu_features();
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512bf16 && f.avx512vbmi &&
        k_matmul_kernel_avx512.supported()) {
        return &k_matmul_kernel_avx512;
    }
    if (f.avx2 && f.fma && k_matmul_kernel_avx2.supported()) {
        return &k_matmul_kernel_avx2;
    }
#endif
    return nullptr;
}

const matmul_kernel* chosen_kernel() {
    static const matmul_kernel* k = pick_kernel();
    return k;
}

// Layouts the kernels handle; anything else (odd FP4 widths, scale blocks of zero) is sent to
// the reference rather than guessed at.
bool kernel_covers(const weight_view& w) {
    switch (w.type) {
    case dtype::f32:
    case dtype::bf16:
        return true;
    case dtype::f8_e4m3:
    case dtype::fp4_e2m1:
        if (w.type == dtype::fp4_e2m1 && w.cols % 2 != 0) {
            return false;
        }
        return !w.scales || (w.scale_block_rows > 0 && w.scale_block_cols > 0);
    default:
        return false;
    }
}

struct free_deleter {
    void operator()(void* p) const { std::free(p); }
};

// Grow-only, per calling thread: prefill calls would otherwise map and fault megabytes each time.
struct activation_buffer {
    std::unique_ptr<void, free_deleter> ptr;
    size_t size = 0;
    void* get(size_t n) {
        if (n > size) {
            size = (n + 4095) / 4096 * 4096;
            ptr.reset(std::aligned_alloc(64, size));
        }
        return ptr.get();
    }
};
thread_local activation_buffer t_activations;

constexpr int64_t k_row_unit = 16; // rows per parallel_for index: whole micro tiles per chunk

matmul_problem make_problem(const matmul_kernel& k, const weight_view& w, const float* x, int64_t n_tokens, float* y) {
    matmul_problem p;
    p.type = w.type;
    p.rows = w.rows;
    p.cols = w.cols;
    p.data = static_cast<const uint8_t*>(w.data);
    p.row_bytes = w.row_bytes();
    p.scales = w.type == dtype::f8_e4m3 || w.type == dtype::fp4_e2m1 ? w.scales : nullptr;
    p.scale_block_rows = std::max<int64_t>(1, w.scale_block_rows);
    p.first_row = w.first_row;
    p.lanes = k.lanes_bytes ? static_cast<const uint8_t*>(w.lanes) : nullptr;
    p.scale_block_cols = std::max<int64_t>(1, w.scale_block_cols);
    p.scale_row_stride = w.scale_row_stride;
    p.x = x;
    p.n_tokens = n_tokens;
    p.x_packed_stride = k.packed_x_bytes(w.type, w.cols, p.lanes != nullptr);
    p.y = y;
    return p;
}

// Tokens packed x holds room for: whole tiles of 16 in the row-lanes layout.
int64_t packed_tokens(const matmul_problem& p) {
    return p.lanes ? (p.n_tokens + 15) / 16 * 16 : p.n_tokens;
}

// Row units of at least ~256K multiply-adds each, so that small matmuls do not wake the pool for
// nothing.
int64_t min_units_for(int64_t macs_per_unit) {
    return std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(1, macs_per_unit));
}

// Packs p's activations, split over tokens when there are enough of them to pay for a fork.
void pack_tokens(const matmul_kernel& k, const matmul_problem& p, thread_pool& pool) {
    pool.parallel_for(p.n_tokens, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, p.cols)),
                      [&](int64_t t0, int64_t t1) { k.pack_x(p, t0, t1); });
}

// Runs independent matmuls over the same tokens (one, for matmul()) as one parallel region: each
// x packed once, then row units of every member claimed together.
void run_kernel_group(const matmul_kernel& k, std::span<const matmul_task> tasks, int64_t n_tokens, thread_pool& pool) {
    if (n_tokens <= 0) {
        return;
    }
    // Per calling thread and reused: matmul() runs thousands of times per decode step, and the
    // kernels never call back into it, so one set per thread is never in use twice. Named through
    // references, so that the workers' chunks below read the caller's set, not their own.
    thread_local std::vector<matmul_problem> t_problems;
    thread_local std::vector<int64_t> t_first_unit;
    std::vector<matmul_problem>& problems = t_problems;
    std::vector<int64_t>& first_unit = t_first_unit; // per problem, then the total
    problems.clear();
    first_unit.clear();
    int64_t packed_bytes = 0, units = 0, macs = 0, rows = 0;
    for (const matmul_task& t : tasks) {
        if (t.w.rows <= 0) {
            continue;
        }
        problems.push_back(make_problem(k, t.w, t.x, n_tokens, t.y));
        packed_bytes += problems.back().x_packed_stride * packed_tokens(problems.back());
        first_unit.push_back(units);
        units += (t.w.rows + k_row_unit - 1) / k_row_unit;
        macs += t.w.rows * std::max<int64_t>(1, t.w.cols) * n_tokens;
        rows += t.w.rows;
    }
    first_unit.push_back(units);
    if (problems.empty()) {
        return;
    }
    // Members that read the same x in the same packed form share one packing.
    auto* packed = static_cast<uint8_t*>(t_activations.get(size_t(packed_bytes)));
    for (size_t i = 0; i < problems.size(); ++i) {
        matmul_problem& p = problems[i];
        for (size_t j = 0; j < i && !p.x_packed; ++j) {
            const matmul_problem& q = problems[j];
            if (q.x == p.x && q.type == p.type && q.cols == p.cols && !q.lanes == !p.lanes) {
                p.x_packed = q.x_packed;
            }
        }
        if (!p.x_packed) {
            p.x_packed = packed;
            packed += p.x_packed_stride * packed_tokens(p);
            pack_tokens(k, p, pool);
        }
    }
    pool.parallel_for(units, min_units_for(macs / rows * k_row_unit), [&](int64_t u0, int64_t u1) {
        size_t i = size_t(std::upper_bound(first_unit.begin(), first_unit.end(), u0) - first_unit.begin()) - 1;
        for (int64_t u = u0; u < u1; ++i) {
            const matmul_problem& p = problems[i];
            const int64_t end = std::min(u1, first_unit[i + 1]);
            const int64_t r0 = (u - first_unit[i]) * k_row_unit;
            k.compute_rows(p, r0, std::min(p.rows, (end - first_unit[i]) * k_row_unit));
            u = end;
        }
    });
}

} // namespace

void matmul(const weight_view& w, const float* x, int64_t n_tokens, float* y, precision p, thread_pool& pool) {
    const matmul_task task{w, x, y};
    matmul_group({&task, 1}, n_tokens, p, pool);
}

void matmul_group(std::span<const matmul_task> tasks, int64_t n_tokens, precision p, thread_pool& pool) {
    if (n_tokens <= 0) {
        return;
    }
    const matmul_kernel* k = p == precision::fast ? chosen_kernel() : nullptr;
    // The usual case, every member on the kernel, needs no list of its own (matmul() comes here
    // thousands of times a decode step).
    if (k && std::all_of(tasks.begin(), tasks.end(), [](const matmul_task& t) { return kernel_covers(t.w); })) {
        run_kernel_group(*k, tasks, n_tokens, pool);
        return;
    }
    std::vector<matmul_task> covered;
    for (const matmul_task& t : tasks) {
        if (k && kernel_covers(t.w)) {
            covered.push_back(t);
        } else {
            matmul_reference(t.w, t.x, n_tokens, t.y, pool);
        }
    }
    if (!covered.empty()) {
        run_kernel_group(*k, covered, n_tokens, pool);
    }
}

status matmul_on_backend(std::string_view backend, const weight_view& w, const float* x, int64_t n_tokens, float* y,
                         thread_pool& pool) {
    if (backend == "reference") {
        matmul_reference(w, x, n_tokens, y, pool);
        return ok_status();
    }
    const matmul_kernel* k = kernel_named(backend);
    if (!k) {
        if (backend == "avx512" || backend == "avx2") {
            return make_error(errc::unsupported, "matmul backend '" + std::string(backend) + "' is not built here");
        }
        return make_error(errc::invalid_argument, "unknown matmul backend '" + std::string(backend) + "'");
    }
    if (!k->supported()) {
        return make_error(errc::unsupported, "this CPU cannot run matmul backend '" + std::string(backend) + "'");
    }
    if (!kernel_covers(w)) {
        return make_error(errc::unsupported, "matmul backend '" + std::string(backend) + "' does not cover " +
                                                 std::string(dtype_name(w.type)) + " weights of this layout");
    }
    const matmul_task task{w, x, y};
    run_kernel_group(*k, {&task, 1}, n_tokens, pool);
    return ok_status();
}

packed_weight pack_for_fast(const weight_view& w) {
    packed_weight out;
    const matmul_kernel* k = chosen_kernel();
    if (!k || !k->lanes_bytes || !kernel_covers(w) || w.rows <= 0) {
        return out;
    }
    const matmul_problem p = make_problem(*k, w, nullptr, 0, nullptr);
    const int64_t n = k->lanes_bytes(p);
    if (n <= 0) {
        return out;
    }
    out.bytes.reset(static_cast<uint8_t*>(std::aligned_alloc(64, size_t(n + 63) / 64 * 64)));
    out.size = size_t(n);
    k->pack_lanes(p, out.bytes.get());
    return out;
}

std::string_view cpu_backend_name() {
    const matmul_kernel* k = chosen_kernel();
    return k ? std::string_view(k->name) : std::string_view("reference");
}

} // namespace cachalot

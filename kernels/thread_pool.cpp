// A fork-join pool with atomic chunk claiming and spin-then-sleep workers; see thread_pool.h.
#include "kernels/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CACHALOT_PAUSE() _mm_pause()
#else
#define CACHALOT_PAUSE() std::this_thread::yield()
#endif

namespace cachalot {

namespace {
thread_local bool t_in_worker = false;
std::atomic<int> g_global_threads{0};
// About 50-100 µs of spinning before a worker sleeps: longer than the gap between the kernels
// of one decode step, shorter than anything a human would notice as idle CPU burn.
constexpr int k_spin_iterations = 20000;
} // namespace

thread_pool::thread_pool(int n_threads) {
    if (n_threads <= 0) {
        n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
    }
    n_threads_ = n_threads;
    for (int i = 1; i < n_threads_; ++i) {
        workers_.emplace_back([this, i] { worker_loop(i); });
    }
}

thread_pool::~thread_pool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_.store(true);
    }
    cv_work_.notify_all();
    for (auto& t : workers_) {
        t.join();
    }
}

void thread_pool::run_chunks() {
    for (;;) {
        int64_t c = next_chunk_.fetch_add(1);
        if (c >= n_chunks_) {
            return;
        }
        int64_t b = c * job_chunk_, e = std::min(job_n_, b + job_chunk_);
        (*job_)(b, e);
    }
}

void thread_pool::worker_loop(int) {
    t_in_worker = true;
    uint64_t seen = 0;
    for (;;) {
        int spins = 0;
        while (generation_.load() == seen && !stop_.load()) {
            if (++spins < k_spin_iterations) {
                CACHALOT_PAUSE();
                continue;
            }
            std::unique_lock<std::mutex> lock(mu_);
            sleepers_.fetch_add(1);
            cv_work_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
            sleepers_.fetch_sub(1);
            spins = 0;
        }
        if (stop_.load()) {
            return;
        }
        seen = generation_.load();
        run_chunks();
        pending_.fetch_sub(1);
    }
}

void thread_pool::parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn,
                               int64_t max_chunk) {
    if (n <= 0) {
        return;
    }
    min_chunk = std::max<int64_t>(1, min_chunk);
    if (n_threads_ == 1 || t_in_worker || n <= min_chunk) {
        fn(0, n);
        return;
    }
    std::lock_guard<std::mutex> submit(submit_mu_);
    // A few chunks per thread balance a second core that comes and goes.
    int64_t chunk = std::max(min_chunk, (n + 4 * n_threads_ - 1) / (4 * n_threads_));
    if (max_chunk > 0) {
        chunk = std::max(min_chunk, std::min(chunk, max_chunk));
    }
    job_ = &fn;
    job_n_ = n;
    job_chunk_ = chunk;
    n_chunks_ = (n + chunk - 1) / chunk;
    next_chunk_.store(0);
    pending_.store(int(workers_.size()));
    generation_.fetch_add(1);
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        cv_work_.notify_all();
    }
    t_in_worker = true; // nested calls from fn run inline
    run_chunks();
    t_in_worker = false;
    int spins = 0;
    while (pending_.load() != 0) {
        if (++spins < k_spin_iterations) {
            CACHALOT_PAUSE();
        } else {
            std::this_thread::yield();
        }
    }
    job_ = nullptr;
}

thread_pool& thread_pool::global() {
    static thread_pool pool(g_global_threads.load());
    return pool;
}

void thread_pool::set_global_threads(int n_threads) {
    g_global_threads.store(n_threads);
}

} // namespace cachalot

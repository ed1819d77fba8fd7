// A fork-join pool with dynamic chunk claiming; see thread_pool.h.
#include "kernels/thread_pool.h"

#include <algorithm>
#include <atomic>

namespace cachalot {

namespace {
thread_local bool t_in_worker = false;
std::atomic<int> g_global_threads{0};
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
        stop_ = true;
    }
    cv_work_.notify_all();
    for (auto& t : workers_) {
        t.join();
    }
}

void thread_pool::worker_loop(int) {
    t_in_worker = true;
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int64_t, int64_t)>* job;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_work_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) {
                return;
            }
            seen = generation_;
            job = job_;
        }
        for (;;) {
            int64_t c;
            {
                std::lock_guard<std::mutex> lock(mu_);
                if (next_chunk_ >= n_chunks_) {
                    break;
                }
                c = next_chunk_++;
            }
            int64_t b = c * job_chunk_, e = std::min(job_n_, b + job_chunk_);
            (*job)(b, e);
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (--pending_ == 0) {
                cv_done_.notify_all();
            }
        }
    }
}

void thread_pool::parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn) {
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
    int64_t n_chunks = (n + chunk - 1) / chunk;
    {
        std::lock_guard<std::mutex> lock(mu_);
        job_ = &fn;
        job_n_ = n;
        job_chunk_ = chunk;
        next_chunk_ = 0;
        n_chunks_ = n_chunks;
        pending_ = int(workers_.size());
        ++generation_;
    }
    cv_work_.notify_all();
    bool was_worker = t_in_worker;
    t_in_worker = true; // nested calls from fn run inline
    for (;;) {
        int64_t c;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (next_chunk_ >= n_chunks_) {
                break;
            }
            c = next_chunk_++;
        }
        int64_t b = c * chunk, e = std::min(n, b + chunk);
        fn(b, e);
    }
    t_in_worker = was_worker;
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
}

thread_pool& thread_pool::global() {
    static thread_pool pool(g_global_threads.load());
    return pool;
}

void thread_pool::set_global_threads(int n_threads) { g_global_threads.store(n_threads); }

} // namespace cachalot

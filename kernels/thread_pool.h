// One pool of worker threads for all kernel work, sized to the machine once, so that nested or
// concurrent kernels never oversubscribe the cores. The calling thread takes part in every
// parallel_for; a parallel_for issued from inside a worker runs inline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cachalot {

class thread_pool {
public:
    /// n_threads counts the caller: 1 means no workers. 0 picks the hardware concurrency.
    explicit thread_pool(int n_threads = 0);
    ~thread_pool();
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    int size() const { return n_threads_; }

    /// Calls fn(begin, end) over [0, n) split into contiguous chunks of at least min_chunk.
    /// Blocks until every chunk is done. Chunk boundaries depend only on n, min_chunk and the
    /// pool size, so results that are reduced per chunk are reproducible for a given pool.
    /// max_chunk > 0 caps the chunk size: for a few dozen uneven items (a layer's experts), which
    /// balance better when claimed one by one than in four chunks per thread.
    void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn,
                      int64_t max_chunk = 0);

    /// The process-wide pool (created on first use with the size set by set_global_threads).
    static thread_pool& global();
    /// Sets the size of the global pool; only effective before its first use.
    static void set_global_threads(int n_threads);

private:
    void worker_loop(int index);
    void run_chunks();

    int n_threads_ = 1;
    std::vector<std::thread> workers_;
    std::mutex submit_mu_; // one fork-join at a time from non-worker threads
    // Workers spin on generation_ for a short while before sleeping on cv_work_, so that the
    // many small fork-joins of a decode step cost microseconds, not a futex round trip each.
    std::mutex mu_;
    std::condition_variable cv_work_;
    std::atomic<int> sleepers_{0};
    std::atomic<uint64_t> generation_{0};
    std::atomic<bool> stop_{false};
    // The current job: written before generation_ is bumped, read after it is seen.
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t job_n_ = 0;
    int64_t job_chunk_ = 0;
    int64_t n_chunks_ = 0;
    std::atomic<int64_t> next_chunk_{0};
    std::atomic<int> pending_{0}; // workers still inside the current job
};

} // namespace cachalot

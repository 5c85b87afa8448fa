// SPDX-License-Identifier: MIT
// One persistent thread pool for every parallel part of the library (DESIGN §3): workers created
// once, a parallel_for whose partition of the items is fixed by the call, the calling thread
// taking part, exceptions carried back to the caller, no allocation per call.
#ifndef XFMR_THREAD_POOL_HPP
#define XFMR_THREAD_POOL_HPP

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "config.hpp"
#include "error.hpp"
#include "types.hpp"

XFMR_NAMESPACE_BEGIN

namespace detail {

/// True on a thread while it runs a part of a ThreadPool job (a pool's worker, or a caller
/// inside its own parallel_for): a parallel_for called there runs inline.
inline bool& in_pool_task() noexcept {
  static thread_local bool flag = false;
  return flag;
}

/// One spin-wait step: a pause hint where the CPU has one.
inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

/// Size of the blocks that cut n elements into at least `parts` blocks of at most about `target`
/// elements each, the block count rounded up to a multiple of parts (equal shares under
/// ThreadPool's cyclic partition) and the size up to a multiple of `align` (>= 1):
/// ceil(n / size) blocks, the last possibly shorter. n >= 1, parts >= 1, target >= 1.
inline Index balanced_block(Index n, Index parts, Index target, Index align) noexcept {
  Index blocks = std::max(parts, (n + target - 1) / target);
  blocks = (blocks + parts - 1) / parts * parts;
  const Index size = (n + blocks - 1) / blocks;
  return std::max(align, (size + align - 1) / align * align);
}

}  // namespace detail

/// A fixed set of threads that runs parallel_for jobs: threads() − 1 workers started once at
/// construction (the calling thread is the other participant), joined by the destructor.
///
/// parallel_for(items, parts, f) cuts [0, items) into P = min(parts, items) parts by a fixed
/// cyclic rule — part p holds items p, p + P, p + 2P, … — and calls f(item, p) (or f(item))
/// for each item of each part, every item exactly once. The partition depends on (items, parts)
/// only; which thread runs a part does not change it (parts are claimed one at a time by the
/// caller and the workers, so a late or preempted worker delays nothing but its own part). With
/// parts > threads() some threads run several parts, one after the other; so `parts` also names
/// the per-part scratch a caller needs (index it by p), whatever the pool's size. The cyclic rule
/// gives every part an equal share of items whose cost grows with the index (causal attention
/// tiles) and of (sequence, head) items with the heads a multiple of P.
///
/// Runs inline (on the calling thread, parts in order 0, 1, …, items in order within a part)
/// when P <= 1, when the pool has one thread, when called from inside a part of any pool's job
/// (nested parallelism: no deadlock, no oversubscription), or when another thread's job
/// occupies this pool (two callers sharing one pool never wait for each other).
///
/// Exceptions: when f throws, the parts not yet started are skipped, the call waits for the
/// running ones, then rethrows the first exception caught in the calling thread.
///
/// Allocation: none per call (the job lives in the pool; f is called through a pointer to the
/// caller's functor). Idle workers spin for about 1 ms after a job (the next step's job usually
/// comes sooner), then sleep on a condition variable; a caller waiting for the workers' parts
/// spins as long before it sleeps. A sleeping thread takes tens of µs to wake (more in a VM,
/// where the idle vCPU halts), and a worker that wakes after the caller has run out of its own
/// parts finds its part taken. Parts rarely end together: the encoder's row halves of one
/// 128-token sequence on AVX2 (66 + 62 rows, mr-aligned) end ~80 µs apart per layer, more than
/// the 50 µs this pool used to spin, so the early thread slept between every two steps.
///
/// Thread safety: parallel_for may be called from any number of threads at once (see above).
/// The destructor must not run while a job is in flight, nor from one of the pool's own tasks.
class ThreadPool {
 public:
  /// threads >= 1 participants: threads − 1 workers are started here.
  /// \throws std::invalid_argument if threads < 1 or > 4096; std::system_error if a thread
  ///         cannot be started (the ones already started are joined first).
  explicit ThreadPool(int threads) {
    detail::require(threads >= 1 && threads <= kMaxThreads, "ThreadPool",
                    "expected threads in [1, ", kMaxThreads, "] (got ", threads, ")");
    m_workers.reserve(static_cast<std::size_t>(threads - 1));
    try {
      for (int t = 1; t < threads; ++t) m_workers.emplace_back([this] { worker(); });
    } catch (...) {
      stop();
      throw;
    }
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Stops and joins the workers (waking sleeping ones).
  ~ThreadPool() { stop(); }

  /// Participants of a job: the workers plus the calling thread.
  int threads() const noexcept { return static_cast<int>(m_workers.size()) + 1; }

  /// std::thread::hardware_concurrency(), at least 1.
  static int hardware_threads() noexcept {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(std::min<unsigned>(n, unsigned(kMaxThreads)));
  }

  /// f(item, part) — or f(item) — for every item in [0, items), the items cut into
  /// min(parts, items) parts as the class comment says. items <= 0 calls nothing.
  /// \throws std::invalid_argument if parts < 1; whatever f throws (the first one caught).
  template <class F>
  void parallel_for(Index items, int parts, F&& f) {
    detail::require(parts >= 1, "ThreadPool", "expected parts >= 1 (got ", parts, ")");
    if (items <= 0) return;
    const int p = static_cast<int>(std::min<Index>({Index(parts), items, Index(kMaxParts)}));
    using Fn = std::remove_reference_t<F>;
    Job job{&Part<Fn>::run, const_cast<void*>(static_cast<const void*>(&f)), items,
            static_cast<std::uint32_t>(p)};
    if (p <= 1 || m_workers.empty() || detail::in_pool_task() ||
        m_busy.exchange(true, std::memory_order_acquire)) {
      for (int q = 0; q < p; ++q) job.fn(job.ctx, items, q, p);
      return;
    }
    run(job);
  }

  /// parallel_for(items, threads(), f).
  template <class F>
  void parallel_for(Index items, F&& f) {
    parallel_for(items, threads(), std::forward<F>(f));
  }

 private:
  static constexpr int kMaxThreads = 4096;
  static constexpr std::uint32_t kMaxParts = 0xffff;

  // The job of one call: fn(ctx, items, part, parts) runs one part.
  struct Job {
    void (*fn)(void*, Index, int, int);
    void* ctx;
    Index items;
    std::uint32_t parts;
  };

  template <class Fn>
  struct Part {
    static void run(void* ctx, Index items, int part, int parts) {
      Fn& f = *static_cast<Fn*>(ctx);
      for (Index i = part; i < items; i += parts) {
        if constexpr (std::is_invocable_v<Fn&, Index, int>)
          f(i, part);
        else
          f(i);
      }
    }
  };

  // m_state packs the job's generation (bits 32–63), its part count (16–31) and the next part
  // to claim (0–15), so one compare-exchange both checks that the job is still the current one
  // and claims a part of it: a worker that wakes late can never run a part of a newer job.
  static constexpr std::uint64_t pack(std::uint64_t gen, std::uint64_t parts,
                                      std::uint64_t next) noexcept {
    return gen << 32 | parts << 16 | next;
  }

  void run(const Job& job) {
    m_job = job;
    m_done.store(0, std::memory_order_relaxed);
    m_failed.store(false, std::memory_order_relaxed);
    const std::uint64_t gen = (m_state.load(std::memory_order_relaxed) >> 32) + 1;
    m_state.store(pack(gen, job.parts, 0), std::memory_order_release);
    { std::lock_guard<std::mutex> lock(m_mutex); }  // a worker between its check and its wait
    m_wake.notify_all();

    bool& in_task = detail::in_pool_task();
    in_task = true;
    work(static_cast<std::uint32_t>(gen));
    in_task = false;

    // Wait for the parts the workers hold: spin a little, then sleep.
    if (m_done.load(std::memory_order_acquire) != job.parts) {
      if (!spin([&] { return m_done.load(std::memory_order_acquire) == job.parts; })) {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_finished.wait(lock, [&] { return m_done.load(std::memory_order_acquire) == job.parts; });
      }
    }
    std::exception_ptr error;
    if (m_failed.load(std::memory_order_relaxed)) error = std::exchange(m_error, nullptr);
    m_busy.store(false, std::memory_order_release);
    if (error) std::rethrow_exception(error);
  }

  // Claims and runs parts of job `gen` until none is left.
  void work(std::uint32_t gen) noexcept {
    std::uint64_t s = m_state.load(std::memory_order_acquire);
    for (;;) {
      if ((s >> 32) != gen) return;
      const std::uint64_t parts = (s >> 16) & 0xffff, next = s & 0xffff;
      if (next >= parts) return;
      if (!m_state.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                         std::memory_order_acquire))
        continue;
      // The claim succeeded: job `gen` cannot finish (nor m_job change) before this part does.
      const Job job = m_job;
      if (!m_failed.load(std::memory_order_relaxed)) {
        try {
          job.fn(job.ctx, job.items, static_cast<int>(next), static_cast<int>(parts));
        } catch (...) {
          if (!m_failed.exchange(true, std::memory_order_relaxed))
            m_error = std::current_exception();
        }
      }
      if (m_done.fetch_add(1, std::memory_order_acq_rel) + 1 == job.parts) {
        { std::lock_guard<std::mutex> lock(m_mutex); }  // the caller between check and wait
        m_finished.notify_all();
      }
      s = m_state.load(std::memory_order_acquire);
    }
  }

  void worker() {
    detail::in_pool_task() = true;
    std::uint32_t seen = 0;
    for (;;) {
      const auto fresh = [&] {
        return static_cast<std::uint32_t>(m_state.load(std::memory_order_acquire) >> 32) != seen ||
               m_stop.load(std::memory_order_acquire);
      };
      if (!spin(fresh)) {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_wake.wait(lock, fresh);
      }
      if (m_stop.load(std::memory_order_acquire)) return;
      seen = static_cast<std::uint32_t>(m_state.load(std::memory_order_acquire) >> 32);
      work(seen);
    }
  }

  // Spins until ready() or about 1 ms has passed (see the class comment); returns ready().
  template <class Ready>
  static bool spin(Ready&& ready) noexcept {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(1000);
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (ready()) return true;
        detail::spin_pause();
      }
      if (std::chrono::steady_clock::now() > until) return ready();
    }
  }

  void stop() noexcept {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_stop.store(true, std::memory_order_release);
    }
    m_wake.notify_all();
    for (auto& t : m_workers)
      if (t.joinable()) t.join();
    m_workers.clear();
  }

  std::vector<std::thread> m_workers;
  std::atomic<std::uint64_t> m_state{0};
  std::atomic<std::uint32_t> m_done{0};
  std::atomic<bool> m_busy{false};
  std::atomic<bool> m_failed{false};
  std::atomic<bool> m_stop{false};
  Job m_job{};
  std::exception_ptr m_error;
  std::mutex m_mutex;
  std::condition_variable m_wake, m_finished;
};

/// The process-wide pool the components use when given a thread count and no pool: created on
/// first use with ThreadPool::hardware_threads() threads, never destroyed (its workers sleep
/// until the process exits, so no static destructor can meet a pool that is gone).
/// \throws std::system_error (first call only) if its threads cannot be started.
inline ThreadPool& default_thread_pool() {
  static ThreadPool* const pool = new ThreadPool(ThreadPool::hardware_threads());
  return *pool;
}

namespace detail {

/// The pool a component runs `threads` parts on: `pool`, or the default one. Only called when
/// threads > 1, so a single-threaded program never starts the default pool.
inline ThreadPool& pool_or_default(ThreadPool* pool) {
  return pool != nullptr ? *pool : default_thread_pool();
}

}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_THREAD_POOL_HPP

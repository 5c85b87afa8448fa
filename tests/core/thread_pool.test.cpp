// SPDX-License-Identifier: MIT
// ThreadPool (thread_pool.hpp): every item exactly once and in the part the cyclic rule names,
// pools of 1…8 threads on however many cores the machine has, parts above and below the thread
// count, many short jobs back to back, jobs that use several threads at once, nested
// parallel_for (inline, no deadlock), two callers sharing one pool, exceptions (rethrown in the
// caller, the pool still usable), destruction with idle and sleeping workers, the default pool,
// balanced_block, and the errors with their messages.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/thread_pool.hpp>

#include "support/throws.hpp"

using xfmr::Index;
using xfmr::ThreadPool;

namespace {

// Runs one job and checks that item i ran exactly once, in part i % P, P = min(parts, items).
void check_partition(ThreadPool& pool, Index items, int parts) {
  std::vector<std::atomic<int>> count(static_cast<std::size_t>(std::max<Index>(items, 1)));
  std::vector<int> part_of(count.size(), -1);
  for (auto& c : count) c.store(0);
  pool.parallel_for(items, parts, [&](Index i, int p) {
    count[std::size_t(i)].fetch_add(1);
    part_of[std::size_t(i)] = p;
  });
  const Index P = std::min<Index>(parts, items);
  for (Index i = 0; i < items; ++i) {
    INFO("items " << items << " parts " << parts << " item " << i);
    REQUIRE(count[std::size_t(i)].load() == 1);
    REQUIRE(part_of[std::size_t(i)] == int(i % P));
  }
}

}  // namespace

TEST_CASE("ThreadPool: every item once, in its cyclic part, 1..8 threads", "[core][thread_pool]") {
  for (int threads = 1; threads <= 8; ++threads) {
    ThreadPool pool(threads);
    REQUIRE(pool.threads() == threads);
    for (const Index items : {Index(0), Index(1), Index(2), Index(7), Index(64), Index(1001)})
      for (const int parts : {1, 2, 3, threads, 2 * threads + 1}) check_partition(pool, items, parts);
    // parallel_for(items, f): parts = threads(); f(item) without the part.
    std::vector<std::atomic<int>> hit(100);
    for (auto& h : hit) h.store(0);
    pool.parallel_for(100, [&](Index i) { hit[std::size_t(i)].fetch_add(1); });
    for (auto& h : hit) REQUIRE(h.load() == 1);
  }
}

TEST_CASE("ThreadPool: parts really run on several threads at once", "[core][thread_pool]") {
  // Two parts that each wait (bounded) for the other to start: only concurrency lets both see
  // the other. On a loaded machine a worker may start late, so the wait is generous.
  ThreadPool pool(2);
  std::atomic<int> started{0};
  std::atomic<int> saw_other{0};
  std::vector<std::thread::id> ids(2);
  pool.parallel_for(2, 2, [&](Index, int p) {
    ids[std::size_t(p)] = std::this_thread::get_id();
    started.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (started.load() < 2 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    if (started.load() == 2) saw_other.fetch_add(1);
  });
  CHECK(saw_other.load() == 2);
  CHECK(ids[0] != ids[1]);
}

TEST_CASE("ThreadPool: many short jobs back to back", "[core][thread_pool]") {
  for (const int threads : {2, 3, 8}) {
    ThreadPool pool(threads);
    std::int64_t total = 0;
    std::vector<std::int64_t> partial(static_cast<std::size_t>(threads));
    for (int job = 0; job < 3000; ++job) {
      std::fill(partial.begin(), partial.end(), 0);
      const Index items = 1 + job % 17;
      pool.parallel_for(items, threads, [&](Index i, int p) { partial[std::size_t(p)] += i + 1; });
      std::int64_t sum = 0;
      for (const auto v : partial) sum += v;
      REQUIRE(sum == items * (items + 1) / 2);  // every job complete when parallel_for returns
      total += sum;
    }
    CHECK(total > 0);
  }
}

TEST_CASE("ThreadPool: nested parallel_for runs inline, no deadlock", "[core][thread_pool]") {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hit(6 * 5);
  for (auto& h : hit) h.store(0);
  std::atomic<int> inner_threads_differ{0};
  pool.parallel_for(6, 3, [&](Index i, int) {
    const auto outer = std::this_thread::get_id();
    pool.parallel_for(5, 4, [&](Index j, int) {
      if (std::this_thread::get_id() != outer) inner_threads_differ.fetch_add(1);
      hit[std::size_t(i * 5 + j)].fetch_add(1);
    });
  });
  for (auto& h : hit) REQUIRE(h.load() == 1);
  CHECK(inner_threads_differ.load() == 0);  // the inner jobs ran on their caller's thread

  // A task of one pool calling another pool: inline as well.
  ThreadPool other(2);
  std::atomic<int> n{0};
  pool.parallel_for(4, 4, [&](Index, int) { other.parallel_for(3, 3, [&](Index) { ++n; }); });
  CHECK(n.load() == 12);
}

TEST_CASE("ThreadPool: two callers share one pool", "[core][thread_pool]") {
  ThreadPool pool(2);
  std::atomic<std::int64_t> sums[2] = {{0}, {0}};
  auto caller = [&](int c) {
    for (int job = 0; job < 500; ++job)
      pool.parallel_for(10, 2, [&](Index i) { sums[c].fetch_add(i); });
  };
  std::thread a(caller, 0), b(caller, 1);
  a.join();
  b.join();
  CHECK(sums[0].load() == 500 * 45);
  CHECK(sums[1].load() == 500 * 45);
}

TEST_CASE("ThreadPool: exceptions reach the caller, the pool stays usable",
          "[core][thread_pool]") {
  for (const int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (const int bad_part : {0, 1, 3}) {
      INFO("threads " << threads << " throwing part " << bad_part);
      REQUIRE_THROWS_WITH(pool.parallel_for(40, 4,
                                            [&](Index i, int p) {
                                              if (p == bad_part && i >= 4)
                                                throw std::runtime_error("part " +
                                                                         std::to_string(p));
                                            }),
                          "part " + std::to_string(bad_part));
      check_partition(pool, 50, 4);  // still works after the failure
    }
  }
}

TEST_CASE("ThreadPool: destruction with busy, idle and sleeping workers", "[core][thread_pool]") {
  for (int threads = 1; threads <= 8; ++threads) {
    { ThreadPool pool(threads); }  // never used
    {
      ThreadPool pool(threads);
      check_partition(pool, 33, threads);  // workers still spinning when destroyed
    }
    {
      ThreadPool pool(threads);
      check_partition(pool, 33, threads);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers asleep by now
      check_partition(pool, 33, threads);                        // woken again
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

TEST_CASE("ThreadPool: the default pool", "[core][thread_pool]") {
  ThreadPool& pool = xfmr::default_thread_pool();
  CHECK(&pool == &xfmr::default_thread_pool());
  CHECK(pool.threads() == ThreadPool::hardware_threads());
  CHECK(pool.threads() >= 1);
  check_partition(pool, 77, 5);
}

TEST_CASE("balanced_block: equal shares, aligned, covering", "[core][thread_pool]") {
  using xfmr::detail::balanced_block;
  for (const Index n : {Index(1), Index(5), Index(6), Index(13), Index(128), Index(450),
                        Index(4096)})
    for (const Index parts : {Index(1), Index(2), Index(3), Index(8)})
      for (const Index target : {Index(1), Index(64), Index(288)})
        for (const Index align : {Index(1), Index(6)}) {
          INFO("n " << n << " parts " << parts << " target " << target << " align " << align);
          const Index size = balanced_block(n, parts, target, align);
          REQUIRE(size >= align);
          REQUIRE(size % align == 0);
          const Index blocks = (n + size - 1) / size;
          REQUIRE(blocks >= 1);
          REQUIRE(size <= std::max(align, (target + align - 1) / align * align));
          // The parts' loads under the cyclic rule: none above an equal share by more than
          // one alignment step per block it holds.
          const Index P = std::min(parts, blocks);
          std::vector<Index> load(static_cast<std::size_t>(P), 0);
          for (Index b = 0; b < blocks; ++b)
            load[std::size_t(b % P)] += std::min(size, n - b * size);
          const Index per_part = (blocks + P - 1) / P;
          for (const Index l : load) REQUIRE(l <= (n + parts - 1) / parts + per_part * align);
        }
  CHECK(balanced_block(450, 2, 288, 6) == 228);  // 2 blocks: 228 + 222 rows
  CHECK(balanced_block(4096, 2, 288, 6) == 258);
  CHECK(balanced_block(128, 2, 288, 6) == 66);
}

TEST_CASE("ThreadPool: errors", "[core][thread_pool]") {
  XFMR_REQUIRE_INVALID(ThreadPool(0), "xfmr::ThreadPool: expected threads in [1, 4096] (got 0)");
  XFMR_REQUIRE_INVALID(ThreadPool(-3), "(got -3)");
  ThreadPool pool(2);
  XFMR_REQUIRE_INVALID(pool.parallel_for(3, 0, [](Index) {}),
                       "xfmr::ThreadPool: expected parts >= 1 (got 0)");
}

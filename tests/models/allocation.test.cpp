// SPDX-License-Identifier: MIT
// A warm model does not allocate: this executable replaces the global operator new with a
// counting one (std containers) and forbids Eigen's heap allocations (EIGEN_RUNTIME_NO_MALLOC,
// with an eigen_assert that throws even under NDEBUG), then runs forward() again on batches no
// larger than the first.
#include <stdexcept>
#include <utility>

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(x) \
  do {                  \
    if (!(x)) throw std::runtime_error("eigen_assert failed: " #x); \
  } while (false)

#include <atomic>
#include <cstdlib>
#include <new>

#include <catch2/catch.hpp>

#include <xfmr/models/bert.hpp>
#include <xfmr/models/roformer.hpp>
#include <xfmr/thread_pool.hpp>

#include "support/golden.hpp"

namespace {
std::atomic<long> g_allocations{0};
}

// GCC pairs the inlined malloc of operator new with the free of operator delete and warns
// (-Wmismatched-new-delete); the replacement pair is matched by construction.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
// Every replaceable form (Catch uses the nothrow ones), so that nothing mixes with ASan's own.
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ++g_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a) {
  ++g_allocations;
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al + (n == 0 ? al : 0))) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return operator new(n, a);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
  return operator new(n, a, t);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

using namespace xfmr;

TEMPLATE_TEST_CASE("allocation: forward() on a warm model allocates nothing",
                   "[models][allocation]", float, double) {
  using T = TestType;
  const xfmr_test::Golden g("roformer");
  const EncoderInput in = g.input();
  EncoderInput smaller = in;
  smaller.lengths << 3, 7, 1, 2;
  auto bert = BertModel<T>::load(xfmr_test::golden_dir("bert_gelu"));
  auto roformer = RoFormerModel<T>::load(xfmr_test::golden_dir("roformer_rv_emb"));
  RowMatrix<T> hidden(in.batch() * in.n(), 64);
  bert.forward(in, hidden);
  roformer.forward(in, hidden);
  const long before = g_allocations.load();
  Eigen::internal::set_is_malloc_allowed(false);
  const auto warm = [&] {
    bert.forward(in, hidden);
    bert.forward(smaller, hidden);
    roformer.forward(in, hidden);
    roformer.forward(smaller, hidden);
  };
  CHECK_NOTHROW(warm());
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(g_allocations.load() == before);
  // The same with threads: 2 parts on the default pool, 3 parts on a pool of 2 threads (the
  // pools' threads are started and the scratch grown by the first, uncounted calls). No INFO
  // here: Catch2 copies an active message into each assertion, which allocates.
  ThreadPool pool(2);
  for (const auto& [threads, p] : {std::pair<int, ThreadPool*>{2, nullptr}, {3, &pool}}) {
    bert.encoder().set_threads(threads, p);
    roformer.encoder().set_threads(threads, p);
    bert.forward(in, hidden);
    roformer.forward(in, hidden);
    const long threaded = g_allocations.load();
    Eigen::internal::set_is_malloc_allowed(false);
    CHECK_NOTHROW(warm());
    Eigen::internal::set_is_malloc_allowed(true);
    CHECK(g_allocations.load() == threaded);
  }
  // Both counters count: an Eigen temporary throws while forbidden, a new shape allocates.
  Eigen::internal::set_is_malloc_allowed(false);
  CHECK_THROWS(RowMatrix<T>(3, 3));
  Eigen::internal::set_is_malloc_allowed(true);
  // The counter counts: a new shape that grows the scratch allocates.
  EncoderInput bigger;
  bigger.ids = IdMatrix::Constant(8, 16, 5);
  bert.forward(bigger);
  CHECK(g_allocations.load() > before);
}

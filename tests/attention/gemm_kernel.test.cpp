// SPDX-License-Identifier: MIT
// simd::gemm_nt / gemm_nn (the attention tile micro-kernels) against a naive long-double GEMM
// (reference/gemm.hpp), on scalar_isa and native_isa, float and double: sizes around the 6×2·lanes
// register tile, the kc block and the mc row block, leading dimensions wider than the matrices, pointers one element
// off alignment, β = 0 with NaN-poisoned C, β = 1 and β ≠ 1, α scaling, α = 0 and k = 0, and
// canaries in C's padding columns and after its last row that must stay untouched.
//
// Tolerance per entry: (k + 2)·u_T·scale with scale = |α|·Σ_p|a·b| + |β·c| (u_T = 2^-24 or 2^-53),
// the classical bound for any summation order (γ_k ≈ k·u) plus the α and β roundings. A wrong
// index, a missed or doubled k step or a lost β term gives errors of order scale, far above it.
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/gemm.hpp>

#include "reference/gemm.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"

using xfmr::Index;

namespace {

template <typename T>
constexpr T kCanary = T(-7777.5);

/// rows × ld values, starting one element past the vector's start (so not 32-byte aligned for
/// the kernels' purpose), random in [-1, 1]; trailing padding holds canaries.
template <typename T>
struct Buf {
  std::vector<T> store;
  T* p;
  Buf(std::mt19937_64& rng, Index rows, Index cols, Index ld) : store(static_cast<std::size_t>(rows * ld + 9)) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (auto& v : store) v = kCanary<T>;
    p = store.data() + 1;
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) p[i * ld + j] = static_cast<T>(u(rng));
  }
};

template <typename T, class Isa>
void check_case(std::mt19937_64& rng, bool nt, Index m, Index n, Index k, T alpha, T beta,
                Index pad) {
  const Index lda = k + pad, ldb = (nt ? k : n) + pad, ldc = n + pad;
  Buf<T> a(rng, m, k, lda), b(rng, nt ? n : k, nt ? k : n, ldb), c(rng, m, n, ldc);
  if (beta == T(0))
    for (Index i = 0; i < m; ++i)
      for (Index j = 0; j < n; ++j) c.p[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> c0 = c.store;
  std::vector<long double> ref, scale;
  xfmr_ref::gemm(nt, m, n, k, alpha, a.p, lda, b.p, ldb, beta, c.p, ldc, ref, scale);
  if (nt)
    xfmr::simd::gemm_nt<T, Isa>(m, n, k, alpha, a.p, lda, b.p, ldb, beta, c.p, ldc);
  else
    xfmr::simd::gemm_nn<T, Isa>(m, n, k, alpha, a.p, lda, b.p, ldb, beta, c.p, ldc);
  const long double u = std::numeric_limits<T>::epsilon() / 2;
  INFO(Isa::name << (nt ? " nt" : " nn") << " m=" << m << " n=" << n << " k=" << k
                 << " alpha=" << alpha << " beta=" << beta << " pad=" << pad);
  long bad = 0, canary_hit = 0;
  long double worst = 0;
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j) {
      const auto idx = static_cast<std::size_t>(i * n + j);
      const long double err = std::fabs(static_cast<long double>(c.p[i * ldc + j]) - ref[idx]);
      const long double tol = static_cast<long double>(k + 2) * u * scale[idx];
      if (!(err <= tol)) {
        ++bad;
        worst = std::max(worst, err);
      }
    }
  // Everything outside C(m×n): padding columns, the element before and the tail after.
  for (std::size_t t = 0; t < c.store.size(); ++t) {
    const auto off = static_cast<Index>(t) - 1;
    const bool inside = off >= 0 && off / ldc < m && off % ldc < n;
    if (!inside && !(c.store[t] == c0[t])) ++canary_hit;
  }
  INFO("worst error " << static_cast<double>(worst));
  CHECK(bad == 0);
  CHECK(canary_hit == 0);
}

template <typename T>
void sweep() {
  auto rng = xfmr_test::make_rng(sizeof(T));
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const bool nt : {true, false})
      for (const Index m : {1, 5, 6, 7, 15, 16, 17, 33, 64, 65})
        for (const Index n : {1, 5, 6, 7, 15, 16, 17, 33, 64, 65})
          for (const Index k : {1, 3, 8, 64, 127, 128}) {
            // Rotate through (α, β, pad) so every combination of sizes meets each mode.
            const int mode = static_cast<int>((m + 3 * n + 7 * k) % 4);
            const T alpha = mode == 2 ? T(-0.625) : T(1);
            const T beta = mode == 0 ? T(0) : mode == 1 ? T(1) : mode == 2 ? T(0.75) : T(0);
            const Index pad = mode == 3 ? 0 : 3;
            check_case<T, Isa>(rng, nt, m, n, k, alpha, beta, pad);
          }
  });
}

template <typename T>
void blocks() {
  auto rng = xfmr_test::make_rng(100 + sizeof(T));
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using S = xfmr::simd::detail::GemmShape<T, Isa>;
    // k across several kc blocks (the later blocks accumulate into C), with β = 0, 1 and 0.5.
    for (const bool nt : {true, false})
      for (const Index k : {S::kc - 1, S::kc, S::kc + 1, 2 * S::kc + 5})
        for (const T beta : {T(0), T(1), T(0.5)}) {
          check_case<T, Isa>(rng, nt, 13, 35, k, T(1.5), beta, 2);
          check_case<T, Isa>(rng, nt, 6, 16, k, T(1), beta, 0);
        }
    // m across several mc row blocks.
    for (const bool nt : {true, false})
      for (const Index m : {S::mc - 1, S::mc, S::mc + 1, 2 * S::mc + 7})
        check_case<T, Isa>(rng, nt, m, 21, 37, T(1), m % 2 ? T(0) : T(1), 1);
  });
}

}  // namespace

TEST_CASE("gemm_nt/nn float: tile-edge sizes, strides, misalignment, alpha/beta", "[gemm]") {
  sweep<float>();
}
TEST_CASE("gemm_nt/nn double: tile-edge sizes, strides, misalignment, alpha/beta", "[gemm]") {
  sweep<double>();
}
TEST_CASE("gemm_nt/nn: k across several kc blocks", "[gemm]") {
  blocks<float>();
  blocks<double>();
}

TEST_CASE("gemm_nt/nn: degenerate sizes and alpha = 0", "[gemm]") {
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // k = 0: C = β·C; β = 0 overwrites NaN with 0; A and B are never read (null here).
    std::vector<float> c = {1, 2, 3, 99, 4, 5, 6, 99};
    xfmr::simd::gemm_nt<float, Isa>(2, 3, 0, 1.0f, nullptr, 0, nullptr, 0, 2.0f, c.data(), 4);
    CHECK(c == std::vector<float>{2, 4, 6, 99, 8, 10, 12, 99});
    c = {nan, nan, nan, 99, nan, nan, nan, 99};
    xfmr::simd::gemm_nn<float, Isa>(2, 3, 0, 1.0f, nullptr, 0, nullptr, 0, 0.0f, c.data(), 4);
    CHECK(c == std::vector<float>{0, 0, 0, 99, 0, 0, 0, 99});
    // α = 0: A and B not read even when they hold NaN.
    std::vector<float> a(6, nan);
    c = {1, 2, 3, 99, 4, 5, 6, 99};
    xfmr::simd::gemm_nt<float, Isa>(2, 3, 2, 0.0f, a.data(), 2, a.data(), 2, 1.0f, c.data(), 4);
    CHECK(c == std::vector<float>{1, 2, 3, 99, 4, 5, 6, 99});
    // m = 0 or n = 0: nothing touched.
    xfmr::simd::gemm_nn<float, Isa>(0, 3, 2, 1.0f, a.data(), 2, a.data(), 3, 0.0f, c.data(), 4);
    xfmr::simd::gemm_nt<float, Isa>(2, 0, 2, 1.0f, a.data(), 2, a.data(), 2, 0.0f, c.data(), 4);
    CHECK(c == std::vector<float>{1, 2, 3, 99, 4, 5, 6, 99});
  });
}

TEST_CASE("gemm_nt: hand-checked 2x2 example", "[gemm]") {
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    const double a[] = {1, 2, 3, 4};   // A = [[1,2],[3,4]]
    const double b[] = {5, 6, 7, 8};   // B = [[5,6],[7,8]]
    double c[4] = {1, 1, 1, 1};
    xfmr::simd::gemm_nt<double, Isa>(2, 2, 2, 1.0, a, 2, b, 2, 1.0, c, 2);  // A·Bᵀ + 1
    CHECK(c[0] == 18);
    CHECK(c[1] == 24);
    CHECK(c[2] == 40);
    CHECK(c[3] == 54);
    xfmr::simd::gemm_nn<double, Isa>(2, 2, 2, 2.0, a, 2, b, 2, 0.0, c, 2);  // 2·A·B
    CHECK(c[0] == 38);
    CHECK(c[1] == 44);
    CHECK(c[2] == 86);
    CHECK(c[3] == 100);
  });
}

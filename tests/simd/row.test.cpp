// SPDX-License-Identifier: MIT
// simd/row.hpp: row_max, row_min_max, scale_row, dot_row, zero_row on every ISA the build
// compiled and the CPU runs, against long-double references, every tail, misaligned, in place,
// with guard values and NaN inputs.
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/row.hpp>

#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/random.hpp"

TEMPLATE_TEST_CASE("row_max and row_min_max: exact, NaN entries ignored, -inf/+inf when empty",
                   "[simd][row]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  auto rng = xfmr_test::make_rng(301);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      INFO("isa " << Isa::name << ", n " << n);
      for (const std::size_t o : xfmr_test::kKernelOffsets) {
        xfmr_test::Guarded<T> x(n, o);
        const auto v = xfmr_test::uniform_vector<T>(rng, n, -1e3, 1e3);
        std::copy(v.begin(), v.end(), x.data());
        T mx = -inf, mn = inf;
        for (const T e : v) mx = std::max(mx, e), mn = std::min(mn, e);
        CHECK(xfmr::simd::row_max<Isa, T>(x.data(), n) == mx);
        T lo = 0, hi = 0;
        xfmr::simd::row_min_max<Isa, T>(x.data(), n, lo, hi);
        CHECK(lo == mn);
        CHECK(hi == mx);
        // NaN at every position (and all NaN) never becomes the maximum or minimum.
        for (std::size_t p = 0; p < n; p += (n > 40 ? 97 : 1)) {
          x[p] = nan;
          T m2 = -inf, l2 = inf;
          for (std::size_t i = 0; i < n; ++i)
            if (i != p) m2 = std::max(m2, x[i]), l2 = std::min(l2, x[i]);
          CHECK(xfmr::simd::row_max<Isa, T>(x.data(), n) == m2);
          xfmr::simd::row_min_max<Isa, T>(x.data(), n, lo, hi);
          CHECK(lo == l2);
          CHECK(hi == m2);
          x[p] = v[p];
        }
        x.poison();  // every entry NaN
        CHECK(xfmr::simd::row_max<Isa, T>(x.data(), n) == -inf);
        xfmr::simd::row_min_max<Isa, T>(x.data(), n, lo, hi);
        CHECK(lo == inf);
        CHECK(hi == -inf);
      }
      // ±inf entries are ordinary values.
      std::vector<T> w = xfmr_test::uniform_vector<T>(rng, n, -1, 1);
      if (n >= 2) {
        w[0] = inf;
        w[n - 1] = -inf;
        CHECK(xfmr::simd::row_max<Isa, T>(w.data(), n) == inf);
        T lo = 0, hi = 0;
        xfmr::simd::row_min_max<Isa, T>(w.data(), n, lo, hi);
        CHECK(hi == inf);
        CHECK(lo == -inf);
      }
    }
  });
}

// Every tail, misaligned, in place, guards.
TEMPLATE_TEST_CASE("scale_row, dot_row and zero_row against long double",
                   "[simd][row]", float, double) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(302);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      INFO("isa " << Isa::name << ", n " << n);
      const auto x0 = xfmr_test::uniform_vector<T>(rng, n, -10, 10);
      const auto y0 = xfmr_test::uniform_vector<T>(rng, n, -10, 10);
      const T a = T(-0.37);
      // scale_row: one rounded product per element, so exactly a·x in T.
      std::vector<T> s(n);
      xfmr::simd::scale_row<Isa, T>(x0.data(), s.data(), n, a);
      for (std::size_t i = 0; i < n; ++i) CHECK(s[i] == T(a * x0[i]));
      xfmr_test::check_placement(
          x0, n,
          [&](const T* x, T* y) {
            xfmr::simd::scale_row<Isa, T>(x, y, n, a);
            return T(0);
          },
          true);
      // In-place overload.
      xfmr_test::Guarded<T> g(n, 1);
      std::copy(x0.begin(), x0.end(), g.data());
      xfmr::simd::scale_row<Isa, T>(g.data(), n, a);
      CHECK(xfmr_test::same_bits(g.data(), s.data(), n));
      CHECK(g.guards_intact());
      // dot_row: |error| ≤ n·eps·Σ|x y| (a sum of n rounded FMAs), against long double.
      long double ref = 0, mag = 0;
      for (std::size_t i = 0; i < n; ++i) {
        ref += static_cast<long double>(x0[i]) * y0[i];
        mag += std::fabs(static_cast<long double>(x0[i]) * y0[i]);
      }
      for (const std::size_t o : xfmr_test::kKernelOffsets) {
        xfmr_test::Guarded<T> gx(n, o), gy(n, 2 - o / 2);
        std::copy(x0.begin(), x0.end(), gx.data());
        std::copy(y0.begin(), y0.end(), gy.data());
        const T d = xfmr::simd::dot_row<Isa, T>(gx.data(), gy.data(), n);
        CHECK(std::fabs(d - ref) <= (n + 1) * eps * mag);
        const T sq = xfmr::simd::dot_row<Isa, T>(gx.data(), gx.data(), n);  // x may equal y
        long double sref = 0;
        for (const T v : x0) sref += static_cast<long double>(v) * v;
        CHECK(std::fabs(sq - sref) <= (n + 1) * eps * sref);
      }
      if (n == 0) CHECK(xfmr::simd::dot_row<Isa, T>(x0.data(), y0.data(), 0) == T(0));
      // zero_row writes +0 to exactly n entries.
      for (const std::size_t o : xfmr_test::kKernelOffsets) {
        xfmr_test::Guarded<T> z(n, o);  // NaN-poisoned
        xfmr::simd::zero_row<Isa, T>(z.data(), n);
        for (std::size_t i = 0; i < n; ++i) CHECK((z[i] == T(0) && !std::signbit(z[i])));
        CHECK(z.guards_intact());
      }
    }
  });
}

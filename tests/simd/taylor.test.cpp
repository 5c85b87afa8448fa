// SPDX-License-Identifier: MIT
// simd/taylor.hpp: taylor_exp_row (truncated exp series, with and without a floor) and
// taylor2_row (compressed order-2 features) on every ISA the build compiled and the CPU runs,
// against long-double references: every tail, misaligned, in place where allowed, guards.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/taylor.hpp>

#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/random.hpp"

// f_n(max(x, floor)) within 4(n + 1) eps of sum |x^k/k!|, the returned sum, placement.
TEMPLATE_TEST_CASE("taylor_exp_row against long double",
                   "[simd][taylor]", float, double) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  const T ninf = -std::numeric_limits<T>::infinity();
  auto rng = xfmr_test::make_rng(501);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      for (const int order : {1, 2, 4, 10, xfmr::simd::kTaylorExpMaxOrder}) {
        for (const T floor : {ninf, T(-2)}) {
          INFO("isa " << Isa::name << ", n " << n << ", order " << order << ", floor " << floor);
          const double r = order > 10 ? 3 : 8;
          const std::vector<T> x0 = xfmr_test::uniform_vector<T>(rng, n, -r, r);
          std::vector<T> y(n);
          const T sum = xfmr::simd::taylor_exp_row<Isa, T>(x0.data(), y.data(), n, order, floor);
          long bad = 0;
          long double ref_sum = 0, mag_sum = 0;
          for (std::size_t i = 0; i < n; ++i) {
            const long double x = std::max(static_cast<long double>(x0[i]),
                                           static_cast<long double>(floor));
            long double f = 1, mag = 1, term = 1;
            for (int k = 1; k <= order; ++k) {
              term *= x / k;
              f += term;
              mag += std::fabs(term);
            }
            bad += !(std::fabs(y[i] - f) <= 4 * (order + 1) * eps * mag);
            ref_sum += f;
            mag_sum += mag;
          }
          CHECK(bad == 0);
          CHECK(std::fabs(sum - ref_sum) <= (4 * (order + 1) + n) * eps * mag_sum);
          xfmr_test::check_placement(
              x0, n,
              [&](const T* x, T* out) {
                return xfmr::simd::taylor_exp_row<Isa, T>(x, out, n, order, floor);
              },
              true);
        }
      }
    }
  });
}

// [1, x', x'_a^2/sqrt2, x'_a x'_c (a < c)] and phi(q).phi(k) = 1 + q'.k' + (q'.k')^2/2.
TEMPLATE_TEST_CASE("taylor2_row: layout and the order-2 kernel identity",
                   "[simd][taylor]", float, double) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(502);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    std::vector<std::size_t> dims = xfmr_test::kernel_sizes<T, Isa>();
    dims.back() = 77;  // m grows as d²/2: a long odd d instead of 1001
    for (const std::size_t d : dims) {
      INFO("isa " << Isa::name << ", d " << d);
      const std::size_t m = 1 + d + d * (d + 1) / 2;
      const T s = T(0.7);
      const std::vector<T> q = xfmr_test::uniform_vector<T>(rng, d, -2, 2), k = xfmr_test::uniform_vector<T>(rng, d, -2, 2);
      std::vector<T> pq(m), pk(m);
      xfmr::simd::taylor2_row<Isa, T>(q.data(), pq.data(), d, s);
      xfmr::simd::taylor2_row<Isa, T>(k.data(), pk.data(), d, s);
      // Layout, element by element: each entry is one or two roundings of the exact product.
      std::vector<long double> want;
      want.push_back(1);
      for (std::size_t a = 0; a < d; ++a) want.push_back(static_cast<long double>(T(s * q[a])));
      for (std::size_t a = 0; a < d; ++a) {
        const long double xa = T(s * q[a]);
        want.push_back(xa * xa / std::sqrt(2.0L));
        for (std::size_t c = a + 1; c < d; ++c) want.push_back(xa * static_cast<long double>(T(s * q[c])));
      }
      REQUIRE(want.size() == m);
      long bad = 0;
      for (std::size_t i = 0; i < m; ++i) bad += !(std::fabs(pq[i] - want[i]) <= 3 * eps * std::fabs(want[i]));
      CHECK(bad == 0);
      // The kernel identity, against the exact dot product of the scaled inputs.
      long double qk = 0, dot = 0;
      for (std::size_t a = 0; a < d; ++a) qk += static_cast<long double>(s) * q[a] * s * k[a];
      for (std::size_t i = 0; i < m; ++i) dot += static_cast<long double>(pq[i]) * pk[i];
      const long double f2 = 1 + qk + qk * qk / 2;
      CHECK(std::fabs(dot - f2) <= 8 * (d + 2) * eps * (1 + std::fabs(qk) + qk * qk));
      xfmr_test::check_placement(
          q, m,
          [&](const T* x, T* out) {
            xfmr::simd::taylor2_row<Isa, T>(x, out, d, s);
            return T(0);
          },
          false);
    }
  });
}

// SPDX-License-Identifier: MIT
// simd/linear_scan.hpp: the causal linear-attention scan S_t = S_{t−1} + k_t v_tᵀ,
// out_t += q_tᵀ S_t on every ISA the build compiled and the CPU runs, against the sequential
// definition in long double: every strip and column tail, odd strides, misaligned pointers,
// guards after every row of out and S. (Linear attention itself is tested in tests/attention/.)
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/linear_scan.hpp>

#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/random.hpp"

// Every strip and column tail, misaligned, guards.
TEMPLATE_TEST_CASE("linear_scan equals the sequential definition in long double",
                   "[simd][linear_scan]", float, double) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(901);
  std::uniform_real_distribution<double> u(-1, 1);
  const T canary = T(-9.5);
  for (const std::size_t m : {1, 3, 4, 5, 6, 7, 10, 11, 13})
    for (const std::size_t dv : {1, 3, 4, 5, 8, 11, 16, 17, 37}) {
      const std::size_t n = 9, fs = m + 2, vs = dv + 1, os = dv + 3, ss = dv + 2;
      std::vector<T> q(n * fs), k(n * fs), v(n * vs), s0(m * ss), o0(n * dv);
      for (auto* a : {&q, &k, &v, &s0, &o0})
        for (auto& x : *a) x = T(u(rng));
      // Sequential definition in long double.
      std::vector<long double> s(m * dv), ref(n * dv);
      for (std::size_t r = 0; r < m; ++r)
        for (std::size_t c = 0; c < dv; ++c) s[r * dv + c] = s0[r * ss + c];
      for (std::size_t t = 0; t < n; ++t) {
        for (std::size_t r = 0; r < m; ++r)
          for (std::size_t c = 0; c < dv; ++c)
            s[r * dv + c] += static_cast<long double>(k[t * fs + r]) * v[t * vs + c];
        for (std::size_t c = 0; c < dv; ++c) {
          long double a = o0[t * dv + c];  // out accumulates
          for (std::size_t r = 0; r < m; ++r) a += q[t * fs + r] * s[r * dv + c];
          ref[t * dv + c] = a;
        }
      }
      xfmr_test::for_each_isa([&](auto isa) {
        using Isa = decltype(isa);
        for (const std::size_t o : xfmr_test::kKernelOffsets) {
          INFO("isa " << Isa::name << ", m " << m << ", dv " << dv << ", offset " << o);
          xfmr_test::Guarded<T> gq(q.size(), o), gk(k.size(), (o + 1) % 4), gv(v.size(), o),
              gs(s0.size(), (o + 2) % 4), go(n * os, o);
          std::copy(q.begin(), q.end(), gq.data());
          std::copy(k.begin(), k.end(), gk.data());
          std::copy(v.begin(), v.end(), gv.data());
          std::copy(s0.begin(), s0.end(), gs.data());
          for (std::size_t t = 0; t < n; ++t)
            for (std::size_t c = 0; c < os; ++c) go[t * os + c] = c < dv ? o0[t * dv + c] : canary;
          xfmr::simd::linear_scan<Isa, T>(gq.data(), gk.data(), fs, gv.data(), vs, gs.data(), ss,
                                          go.data(), os, n, m, dv);
          long bad = 0;
          // |error| ≤ (number of terms)·eps·Σ|terms|; every term is ≤ 1 + n in magnitude.
          const long double tol_out = 4 * (m + n) * eps * m * (1 + n);
          const long double tol_s = 4 * n * eps * (1 + n);
          for (std::size_t t = 0; t < n; ++t) {
            for (std::size_t c = 0; c < dv; ++c) bad += !(std::fabs(go[t * os + c] - ref[t * dv + c]) <= tol_out);
            for (std::size_t c = dv; c < os; ++c) bad += !(go[t * os + c] == canary);  // untouched
          }
          for (std::size_t r = 0; r < m; ++r) {
            for (std::size_t c = 0; c < dv; ++c) bad += !(std::fabs(gs[r * ss + c] - s[r * dv + c]) <= tol_s);
            for (std::size_t c = dv; c < ss; ++c) bad += !(gs[r * ss + c] == s0[r * ss + c]);
          }
          CHECK(bad == 0);
          CHECK(xfmr_test::same_bits(gq.data(), q.data(), q.size()));
          CHECK(xfmr_test::same_bits(gk.data(), k.data(), k.size()));
          CHECK(xfmr_test::same_bits(gv.data(), v.data(), v.size()));
          CHECK((gq.guards_intact() && gk.guards_intact() && gv.guards_intact() &&
                 gs.guards_intact() && go.guards_intact()));
        }
      });
    }
}

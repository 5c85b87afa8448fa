// SPDX-License-Identifier: MIT
// simd/softmax.hpp's row kernels (scale_bias_max, mask_tail, mask_bool, exp_sum) and
// online_softmax_columns on every ISA the build compiled and the CPU runs, against long-double
// references: every tail, misaligned, guard values, masked (−inf) entries and fully masked
// columns. (tile_product is tested with the GEMM engine.)
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/softmax.hpp>

#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/random.hpp"

namespace {


template <typename T>
constexpr long double eps_of() {
  return std::numeric_limits<T>::epsilon();
}

}  // namespace

TEMPLATE_TEST_CASE("scale_bias_max: lambda s (+ b) and the exact maximum of the result",
                   "[simd][softmax]", float, double) {
  using T = TestType;
  const T ninf = -std::numeric_limits<T>::infinity();
  auto rng = xfmr_test::make_rng(701);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      for (const bool with_bias : {false, true}) {
        INFO("isa " << Isa::name << ", n " << n << ", bias " << with_bias);
        const std::vector<T> s0 = xfmr_test::uniform_vector<T>(rng, n, -30, 30), b0 = xfmr_test::uniform_vector<T>(rng, n, -5, 5);
        const T lambda = T(-0.7);
        for (const std::size_t o : xfmr_test::kKernelOffsets) {
          xfmr_test::Guarded<T> s(n, o), b(n, 3 - o);
          std::copy(s0.begin(), s0.end(), s.data());
          std::copy(b0.begin(), b0.end(), b.data());
          const T m = xfmr::simd::scale_bias_max<Isa, T>(s.data(), with_bias ? b.data() : nullptr,
                                                         n, lambda);
          T top = ninf;
          long bad = 0;
          for (std::size_t i = 0; i < n; ++i) {
            const long double ref = static_cast<long double>(lambda) * s0[i] + (with_bias ? b0[i] : T(0));
            // One FMA, or a rounded product and a rounded sum: within 1 ulp of 30.
            bad += !(std::fabs(s[i] - ref) <= 32 * eps_of<T>());
            top = std::max(top, s[i]);
          }
          CHECK(bad == 0);
          CHECK(m == top);  // the maximum of what was stored, exactly
          CHECK((s.guards_intact() && b.guards_intact()));
        }
      }
    }
  });
}

// mask_tail and mask_bool set exactly the masked entries to -inf; exp_sum is within 2 ulp per
// entry, masked entries become exact +0, the sum covers exactly n entries.
TEMPLATE_TEST_CASE("mask_tail, mask_bool and exp_sum against long double",
                   "[simd][softmax]", float, double) {
  using T = TestType;
  const T ninf = -std::numeric_limits<T>::infinity();
  auto rng = xfmr_test::make_rng(702);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      INFO("isa " << Isa::name << ", n " << n);
      const std::vector<T> s0 = xfmr_test::uniform_vector<T>(rng, n, -40, 20);
      std::vector<char> allow(n + 1);
      for (std::size_t j = 0; j < n; ++j) allow[j] = (j * 7) % 3 != 0;
      for (const std::size_t o : xfmr_test::kKernelOffsets) {
        xfmr_test::Guarded<T> s(n, o);
        std::copy(s0.begin(), s0.end(), s.data());
        const std::size_t from = n / 2 + o % 2;
        xfmr::simd::mask_tail<Isa, T>(s.data(), std::min(from, n), n);
        xfmr::simd::mask_bool<Isa, T>(s.data(), reinterpret_cast<const bool*>(allow.data()), n);
        long wrong = 0;
        for (std::size_t j = 0; j < n; ++j) {
          const bool masked = j >= from || !allow[j];
          wrong += masked ? !(s[j] == ninf) : !(s[j] == s0[j]);
        }
        CHECK(wrong == 0);
        CHECK(s.guards_intact());
        // exp_sum with m = 25 ≥ every entry.
        const T m = T(25);
        std::vector<T> before(s.data(), s.data() + n);
        const T sum = xfmr::simd::exp_sum<Isa, T>(s.data(), n, m);
        long bad = 0;
        long double ref_sum = 0;
        for (std::size_t j = 0; j < n; ++j) {
          if (before[j] == ninf) {
            bad += !(s[j] == T(0) && !std::signbit(s[j]));
            continue;
          }
          const long double ref = std::exp(static_cast<long double>(T(before[j] - m)));
          const long double ulp =
              std::ldexp(1.0L, std::ilogb(static_cast<T>(ref)) - std::numeric_limits<T>::digits + 1);
          bad += !(std::fabs(s[j] - ref) <= 2 * ulp);
          ref_sum += ref;
        }
        CHECK(bad == 0);
        CHECK(std::fabs(sum - ref_sum) <= (n + 4) * eps_of<T>() * ref_sum);
        CHECK(s.guards_intact());
      }
    }
  });
}

// Two tiles against the two-pass softmax in long double; fully masked columns keep l = 0 and
// zero weights; stride padding untouched.
TEMPLATE_TEST_CASE("online_softmax_columns equals the two-pass softmax",
                   "[simd][softmax]", float, double) {
  using T = TestType;
  const T ninf = -std::numeric_limits<T>::infinity();
  const long double tol = 16 * eps_of<T>();
  auto rng = xfmr_test::make_rng(703);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    constexpr std::size_t W = xfmr::simd::Vec<T, Isa>::lanes;
    for (std::size_t cols = 1; cols <= 3 * W + 1; ++cols) {
      for (const std::size_t rows : {std::size_t(1), std::size_t(2), std::size_t(11)}) {
        INFO("isa " << Isa::name << ", cols " << cols << ", rows " << rows);
        const std::size_t lds = cols + 2;
        std::vector<T> s1 = xfmr_test::uniform_vector<T>(rng, rows * lds, -20, 20);
        std::vector<T> s2 = xfmr_test::uniform_vector<T>(rng, rows * lds, -20, 20);
        for (std::size_t j = 0; j < rows; ++j) s1[j * lds] = ninf;  // column 0: nothing in tile 1
        if (cols > 1)
          for (std::size_t j = 0; j < rows; ++j) s1[j * lds + 1] = s2[j * lds + 1] = ninf;  // none
        // Tile storage misaligned by one element, canaries after it.
        xfmr_test::Guarded<T> a(rows * lds, 1), b(rows * lds, 3);
        std::copy(s1.begin(), s1.end(), a.data());
        std::copy(s2.begin(), s2.end(), b.data());
        std::vector<T> m(cols, std::numeric_limits<T>::lowest()), l(cols, 0), al(cols), al2(cols);
        xfmr::simd::online_softmax_columns<Isa, T>(a.data(), rows, cols, std::ptrdiff_t(lds), m.data(),
                                                   l.data(), al.data());
        xfmr::simd::online_softmax_columns<Isa, T>(b.data(), rows, cols, std::ptrdiff_t(lds), m.data(),
                                                   l.data(), al2.data());
        long bad = 0;
        for (std::size_t i = 0; i < cols; ++i) {
          long double mx = -INFINITY, m1 = -INFINITY, sum = 0;
          for (std::size_t j = 0; j < rows; ++j) {
            mx = std::max({mx, (long double)s1[j * lds + i], (long double)s2[j * lds + i]});
            m1 = std::max(m1, (long double)s1[j * lds + i]);
          }
          if (mx == -INFINITY) {
            bad += !(l[i] == T(0));
            for (std::size_t j = 0; j < rows; ++j) bad += !(a[j * lds + i] == 0 && b[j * lds + i] == 0);
            continue;
          }
          // The kernel rounds each argument s − M in T (|s − M| ≤ 40 here): compare with e^ of
          // the rounded arguments to a few ulp, and with the exact weights to |s − M|·eps more.
          const T mxt = static_cast<T>(mx), m1t = static_cast<T>(m1);
          long double sum_rounded = 0;
          for (std::size_t j = 0; j < rows; ++j) {
            sum += std::exp(s1[j * lds + i] - mx) + std::exp(s2[j * lds + i] - mx);
            const long double w1 = m1 == -INFINITY ? 0.0L
                                                   : std::exp((long double)T(s1[j * lds + i] - m1t)) *
                                                         std::exp((long double)T(m1t - mxt));
            const long double w2 = std::exp((long double)T(s2[j * lds + i] - mxt));
            sum_rounded += w1 + w2;
            bad += !(std::fabs((long double)a[j * lds + i] * al2[i] - w1) <= tol * w1);
            bad += !(std::fabs((long double)b[j * lds + i] - w2) <= tol * w2);
          }
          bad += !(m[i] == mxt);
          bad += !(std::fabs(l[i] - sum_rounded) <= (tol + rows * eps_of<T>()) * sum_rounded);
          bad += !(std::fabs(l[i] - sum) <= (tol + (rows + 40) * eps_of<T>()) * sum);
          // α of the first tile is e^{lowest − m1} = 0 (1 for a column with no key in it yet).
          bad += !(al[i] == (m1 == -INFINITY ? T(1) : T(0)));
        }
        CHECK(bad == 0);
        long pad = 0;  // the two padding columns of each stride are untouched
        for (std::size_t j = 0; j < rows; ++j)
          for (std::size_t c = cols; c < lds; ++c)
            pad += !(xfmr_test::same_bits(&a[j * lds + c], &s1[j * lds + c], 1) &&
                     xfmr_test::same_bits(&b[j * lds + c], &s2[j * lds + c], 1));
        CHECK(pad == 0);
        CHECK((a.guards_intact() && b.guards_intact()));
      }
    }
  });
}

// SPDX-License-Identifier: MIT
// simd/feature_map.hpp: the row kernels of the linear-attention feature maps (elu+1, relu+ε,
// shifted exponentials, 1+cosine) on every ISA the build compiled and the CPU runs, against
// long-double references: every tail, misaligned pointers, in place where allowed, guard values,
// special values.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/feature_map.hpp>

#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/random.hpp"

namespace {


/// Spacing of T at |ref| (the smallest subnormal below the normal range).
template <typename T>
long double ulp_of(long double ref) {
  const long double a = std::fabs(ref);
  if (!(a >= std::numeric_limits<T>::min())) return std::numeric_limits<T>::denorm_min();
  return std::ldexp(1.0L, std::ilogb(static_cast<T>(a)) - (std::numeric_limits<T>::digits - 1));
}

/// |y − e^x| within exp_nonpositive's bound: 2 ulp where e^x is normal, below the smallest normal
/// otherwise.
template <typename T>
bool within_exp_nonpositive(T y, long double ref) {
  const long double err = std::fabs(static_cast<long double>(y) - ref);
  if (ref >= std::numeric_limits<T>::min()) return err <= 2 * ulp_of<T>(ref);
  return y >= T(0) && err < std::numeric_limits<T>::min();
}

template <typename T>
constexpr double exp_lo() {
  return std::is_same_v<T, float> ? -110.0 : -760.0;
}

}  // namespace

// 1 + x for x >= 0, exp_nonpositive's bound below, special values, placement.
TEMPLATE_TEST_CASE("elu_plus_one_row against long double",
                   "[simd][feature_map]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  auto rng = xfmr_test::make_rng(401);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      INFO("isa " << Isa::name << ", n " << n);
      // Half the draws on [exp_lo, 0] (the exponential, its flush), half on [0, 20].
      std::vector<T> x0 = xfmr_test::uniform_vector<T>(rng, n, exp_lo<T>(), 20);
      for (std::size_t i = 0; i < n; i += 2) x0[i] = T(-std::fabs(double(x0[i])) / 5);
      std::vector<T> y(n);
      xfmr::simd::elu_plus_one_row<Isa, T>(x0.data(), y.data(), n);
      long bad = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const long double x = x0[i];
        const bool ok = x >= 0 ? std::fabs(y[i] - (1 + x)) <= ulp_of<T>(1 + x) / 2
                               : within_exp_nonpositive(y[i], std::exp(x));
        if (!ok) {
          ++bad;
          UNSCOPED_INFO("x = " << double(x0[i]) << " gave " << double(y[i]));
        }
      }
      CHECK(bad == 0);
      xfmr_test::check_placement(
          x0, n,
          [&](const T* x, T* out) {
            xfmr::simd::elu_plus_one_row<Isa, T>(x, out, n);
            return T(0);
          },
          true);
    }
    // −inf → +0, NaN → NaN, +inf → +inf, ±0 → 1, in every lane.
    std::vector<T> s;
    for (int rep = 0; rep < 9; ++rep)
      for (const T v : {-inf, nan, inf, T(0), T(-0.0)}) s.push_back(v);
    std::vector<T> y(s.size());
    xfmr::simd::elu_plus_one_row<Isa, T>(s.data(), y.data(), s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      INFO("isa " << Isa::name << ", x = " << s[i]);
      if (std::isnan(s[i]))
        CHECK(std::isnan(y[i]));
      else if (s[i] == -inf)
        CHECK((y[i] == T(0) && !std::signbit(y[i])));
      else if (s[i] == inf)
        CHECK(y[i] == inf);
      else
        CHECK(y[i] == T(1));
    }
  });
}

TEMPLATE_TEST_CASE("relu_row: max(x, 0) + eps rounded once, placement", "[simd][feature_map]",
                   float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(402);
  const T eps = T(1e-3);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      INFO("isa " << Isa::name << ", n " << n);
      std::vector<T> x0 = xfmr_test::uniform_vector<T>(rng, n, -5, 5);
      if (n > 2) x0[n / 2] = std::numeric_limits<T>::quiet_NaN();  // must stay NaN
      std::vector<T> y(n);
      xfmr::simd::relu_row<Isa, T>(x0.data(), y.data(), n, eps);
      long bad = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (std::isnan(x0[i])) {
          bad += !std::isnan(y[i]);
          continue;
        }
        const long double ref = std::max(static_cast<long double>(x0[i]), 0.0L) + eps;
        bad += !(std::fabs(y[i] - ref) <= ulp_of<T>(ref) / 2);
      }
      CHECK(bad == 0);
      xfmr_test::check_placement(
          x0, n,
          [&](const T* x, T* out) {
            xfmr::simd::relu_row<Isa, T>(x, out, n, eps);
            return T(0);
          },
          true);
    }
  });
}

// e^(x - shift) within 2 ulp, the returned sum covers exactly n outputs, placement.
TEMPLATE_TEST_CASE("exp_shift_row against long double",
                   "[simd][feature_map]", float, double) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(403);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      for (const T shift : {T(3), T(-2), T(0)}) {
        INFO("isa " << Isa::name << ", n " << n << ", shift " << shift);
        const std::vector<T> x0 = xfmr_test::uniform_vector<T>(rng, n, -70, 12);
        std::vector<T> y(n);
        const T sum = xfmr::simd::exp_shift_row<Isa, T>(x0.data(), y.data(), n, shift);
        long bad = 0;
        long double ref_sum = 0;
        for (std::size_t i = 0; i < n; ++i) {
          // The argument x − shift is rounded in T first; e^ of that within 2 ulp.
          const long double ref = std::exp(static_cast<long double>(T(x0[i] - shift)));
          bad += !(std::fabs(y[i] - ref) <= 2 * ulp_of<T>(ref));
          ref_sum += std::exp(static_cast<long double>(x0[i]) - shift);
        }
        CHECK(bad == 0);
        // n rounded additions of values each within (2 ulp + argument rounding) of the truth.
        CHECK(std::fabs(sum - ref_sum) <= (n + 2 + 64) * eps * ref_sum);
        if (n == 0) CHECK(sum == T(0));
        xfmr_test::check_placement(
            x0, n, [&](const T* x, T* out) { return xfmr::simd::exp_shift_row<Isa, T>(x, out, n, shift); },
            true);
      }
    }
  });
}

// Per-feature shift, col_sum += y rounded once, misaligned, in place, guards.
TEMPLATE_TEST_CASE("exp_sub_accumulate_row against long double",
                   "[simd][feature_map]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(404);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      INFO("isa " << Isa::name << ", n " << n);
      const std::vector<T> x0 = xfmr_test::uniform_vector<T>(rng, n, -30, 5);
      const std::vector<T> s0 = xfmr_test::uniform_vector<T>(rng, n, -5, 30);
      const std::vector<T> c0 = xfmr_test::uniform_vector<T>(rng, n, 0, 10);
      for (const std::size_t o : xfmr_test::kKernelOffsets) {
        const std::size_t o2 = (o + 1) % 4;
        xfmr_test::Guarded<T> x(n, o), s(n, o2), y(n, o2), c(n, o);
        std::copy(x0.begin(), x0.end(), x.data());
        std::copy(s0.begin(), s0.end(), s.data());
        std::copy(c0.begin(), c0.end(), c.data());
        xfmr::simd::exp_sub_accumulate_row<Isa, T>(x.data(), s.data(), y.data(), c.data(), n);
        long bad = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const long double ref = std::exp(static_cast<long double>(T(x0[i] - s0[i])));
          bad += !(std::fabs(y[i] - ref) <= 2 * ulp_of<T>(ref));
          bad += !(c[i] == T(c0[i] + y[i]));
        }
        CHECK(bad == 0);
        CHECK(xfmr_test::same_bits(x.data(), x0.data(), n));
        CHECK(xfmr_test::same_bits(s.data(), s0.data(), n));
        CHECK((x.guards_intact() && s.guards_intact() && y.guards_intact() && c.guards_intact()));
        // In place: y = x.
        xfmr_test::Guarded<T> xy(n, o), c2(n, o2);
        std::copy(x0.begin(), x0.end(), xy.data());
        std::copy(c0.begin(), c0.end(), c2.data());
        xfmr::simd::exp_sub_accumulate_row<Isa, T>(xy.data(), s.data(), xy.data(), c2.data(), n);
        CHECK(xfmr_test::same_bits(xy.data(), y.data(), n));
        CHECK(xfmr_test::same_bits(c2.data(), c.data(), n));
        CHECK((xy.guards_intact() && c2.guards_intact()));
      }
    }
  });
}

// [1, x/|x|] to (d + 8) eps, the zero row, huge and tiny inputs without overflow, placement.
TEMPLATE_TEST_CASE("one_plus_cosine_row against long double",
                   "[simd][feature_map]", float, double) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(405);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t d : xfmr_test::kernel_sizes<T, Isa>()) {
      for (const double mag : {1.0, 1e30, 1e-30}) {
        INFO("isa " << Isa::name << ", d " << d << ", magnitude " << mag);
        std::vector<T> x0 = xfmr_test::uniform_vector<T>(rng, d, -mag, mag);
        std::vector<T> y(d + 1);
        xfmr::simd::one_plus_cosine_row<Isa, T>(x0.data(), y.data(), d);
        long double norm2 = 0;
        for (const T v : x0) norm2 += static_cast<long double>(v) * v;
        const long double norm = std::sqrt(norm2);
        CHECK(y[0] == T(1));
        long bad = 0;
        for (std::size_t i = 0; i < d; ++i) {
          const long double ref = norm > 0 ? x0[i] / norm : 0.0L;
          bad += !(std::fabs(y[1 + i] - ref) <= (d + 8) * eps);
        }
        CHECK(bad == 0);
        xfmr_test::check_placement(
            x0, d + 1,
            [&](const T* x, T* out) {
              xfmr::simd::one_plus_cosine_row<Isa, T>(x, out, d);
              return T(0);
            },
            false);
      }
      // x = 0 maps to [1, 0, …, 0].
      std::vector<T> z(d, T(0)), y(d + 1, T(7));
      xfmr::simd::one_plus_cosine_row<Isa, T>(z.data(), y.data(), d);
      CHECK(y[0] == T(1));
      for (std::size_t i = 0; i < d; ++i) CHECK(y[1 + i] == T(0));
    }
  });
}

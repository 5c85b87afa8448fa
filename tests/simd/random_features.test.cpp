// SPDX-License-Identifier: MIT
// simd/random_features.hpp: scaled_exp_row, the Performer's exponential feature kernel, on every
// ISA the build compiled and the CPU runs, against long double: both signs, shifts that push the
// result to overflow and underflow, NaN, every tail, misaligned, in place, guards.
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/random_features.hpp>

#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/random.hpp"

TEMPLATE_TEST_CASE("scaled_exp_row: scale * e^(sign u - shift) within 4 ulp of the rounded "
                   "argument, placement",
                   "[simd][random_features]", float, double) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(601);
  std::uniform_real_distribution<double> u(-20, 20);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      for (const T sign : {T(1), T(-1)}) {
        for (const T shift : {T(2.5), T(-3), T(0)}) {
          INFO("isa " << Isa::name << ", n " << n << ", sign " << sign << ", shift " << shift);
          const T scale = T(0.125);
          std::vector<T> x0(n);
          for (auto& v : x0) v = T(u(rng));
          std::vector<T> y(n);
          xfmr::simd::scaled_exp_row<Isa, T>(x0.data(), y.data(), n, sign, shift, scale);
          long bad = 0;
          for (std::size_t i = 0; i < n; ++i) {
            // sign·u − shift is one FMA (or a multiply and a subtraction on the scalar path when
            // the compiler does not contract): within 1 ulp of the exact argument, |arg| < 32.
            const long double arg = static_cast<long double>(sign) * x0[i] - shift;
            const long double ref = scale * std::exp(arg);
            const long double arg_err = std::ldexp(1.0L, std::ilogb(32.0) - std::numeric_limits<T>::digits + 1);
            bad += !(std::fabs(y[i] - ref) <= (arg_err + 4 * eps) * ref);
          }
          CHECK(bad == 0);
          xfmr_test::check_placement(
              x0, n,
              [&](const T* x, T* out) {
                xfmr::simd::scaled_exp_row<Isa, T>(x, out, n, sign, shift, scale);
                return T(0);
              },
              true);
        }
      }
    }
  });
}

TEMPLATE_TEST_CASE("scaled_exp_row special values: overflow to +inf, underflow to +0, NaN kept",
                   "[simd][random_features]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T big = std::is_same_v<T, float> ? T(200) : T(1000);
  std::vector<T> x;
  for (int rep = 0; rep < 9; ++rep)
    for (const T v : {big, -big, nan, inf, -inf}) x.push_back(v);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name);
    std::vector<T> y(x.size());
    xfmr::simd::scaled_exp_row<Isa, T>(x.data(), y.data(), x.size(), T(1), T(0), T(2));
    for (std::size_t i = 0; i < x.size(); ++i) {
      INFO("u = " << x[i]);
      if (std::isnan(x[i]))
        CHECK(std::isnan(y[i]));
      else if (x[i] > 0)
        CHECK(y[i] == inf);
      else
        CHECK((y[i] == T(0) && !std::signbit(y[i])));
    }
  });
}

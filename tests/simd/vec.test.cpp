// SPDX-License-Identifier: MIT
// Vec<T, Isa>: every op of the vector vocabulary, lane by lane, on scalar_isa and native_isa.
// Both ISAs are checked against the same IEEE reference (the C++ operator, std::fma, the
// documented NaN rule), so passing both means native_isa agrees with scalar_isa lane for lane.
// Lanes are read and written with memcpy, never through Vec::load/store, which are under test.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <random>
#include <type_traits>

#include <catch2/catch.hpp>
#include <xfmr/simd/vec.hpp>
#include <xfmr/simd/vec_interleaved.hpp>

#include "support/guarded.hpp"
#include "support/isa_list.hpp"
#include "support/page_guard.hpp"
#include "support/random.hpp"

using xfmr::simd::scalar_isa;
using xfmr::simd::Vec;

namespace {

constexpr std::size_t kOffsets[] = {0, 1, 3};

template <typename T, class Isa>
using Lanes = std::array<T, Vec<T, Isa>::lanes>;

template <typename T, class Isa>
Lanes<T, Isa> to_lanes(typename Vec<T, Isa>::type v) {
  Lanes<T, Isa> a;
  static_assert(sizeof v == sizeof a, "a vector is exactly its lanes");
  std::memcpy(a.data(), &v, sizeof v);
  return a;
}

template <typename T, class Isa>
typename Vec<T, Isa>::type from_lanes(const Lanes<T, Isa>& a) {
  typename Vec<T, Isa>::type v;
  std::memcpy(&v, a.data(), sizeof v);
  return v;
}

/// Same value: both NaN, or equal with the same sign (so +0 and −0 differ).
template <typename T>
bool identical(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}

/// A random value with a random binary exponent in [−20, 20], so products and sums round.
template <typename T>
T random_value(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  std::uniform_int_distribution<int> e(-20, 20);
  return static_cast<T>(std::ldexp(u(rng), e(rng)));
}

template <typename T, class Isa>
Lanes<T, Isa> random_lanes(std::mt19937_64& rng) {
  Lanes<T, Isa> a;
  for (auto& v : a) v = random_value<T>(rng);
  return a;
}

}  // namespace

TEMPLATE_TEST_CASE("Vec load and store move every lane unchanged at any alignment",
                   "[simd][vec]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(101);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    INFO("isa " << Isa::name);
    for (std::size_t off = 0; off <= W; ++off) {
      INFO("offset " << off);
      xfmr_test::Guarded<T> src(W, off), dst(W, off);
      for (std::size_t i = 0; i < W; ++i) src[i] = random_value<T>(rng);
      const auto v = V::load(src.data());
      const auto a = to_lanes<T, Isa>(v);
      V::store(dst.data(), v);
      bool loaded = true, stored = true;
      for (std::size_t i = 0; i < W; ++i) {
        loaded = loaded && identical(a[i], src[i]);
        stored = stored && identical(dst[i], src[i]);
      }
      CHECK(loaded);
      CHECK(stored);
      CHECK(src.guards_intact());
      CHECK(dst.guards_intact());
    }
  });
}

TEMPLATE_TEST_CASE("Vec load_partial reads exactly the first n lanes and zeroes the rest",
                   "[simd][vec]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(102);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    static_assert(W <= xfmr_test::Guarded<T>::kGuard, "the canaries cover a whole vector");
    INFO("isa " << Isa::name);
    for (std::size_t n = 0; n < W; ++n) {
      INFO("n " << n);
      // Canaries (−12345.25, non-zero) sit right after the n values: a load that read them
      // would put them into the lanes that must be zero.
      for (const std::size_t off : kOffsets) {
        INFO("offset " << off);
        xfmr_test::Guarded<T> src(n, off);
        for (std::size_t i = 0; i < n; ++i) src[i] = random_value<T>(rng);
        const auto a = to_lanes<T, Isa>(V::load_partial(src.data(), n));
        bool ok = true;
        for (std::size_t i = 0; i < W; ++i)
          ok = ok && (i < n ? identical(a[i], src[i]) : identical(a[i], T(0)));
        CHECK(ok);
        CHECK(src.guards_intact());
      }
      // The n values end where an inaccessible page starts: reading past n faults.
      xfmr_test::PageEnd<T> edge(n);
      for (std::size_t i = 0; i < n; ++i) edge[i] = random_value<T>(rng);
      const auto a = to_lanes<T, Isa>(V::load_partial(edge.data(), n));
      bool ok = true;
      for (std::size_t i = 0; i < W; ++i)
        ok = ok && (i < n ? identical(a[i], edge[i]) : identical(a[i], T(0)));
      CHECK(ok);
    }
  });
}

TEMPLATE_TEST_CASE("Vec store_partial writes exactly the first n lanes", "[simd][vec]", float,
                   double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(103);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    INFO("isa " << Isa::name);
    for (std::size_t n = 0; n < W; ++n) {
      INFO("n " << n);
      const auto vals = random_lanes<T, Isa>(rng);
      for (const std::size_t off : kOffsets) {
        INFO("offset " << off);
        xfmr_test::Guarded<T> dst(n, off);  // NaN-poisoned, canaries from dst[n] on
        V::store_partial(dst.data(), from_lanes<T, Isa>(vals), n);
        bool ok = true;
        for (std::size_t i = 0; i < n; ++i) ok = ok && identical(dst[i], vals[i]);
        CHECK(ok);
        CHECK(dst.guards_intact());
      }
      xfmr_test::PageEnd<T> edge(n);  // a write past n faults
      V::store_partial(edge.data(), from_lanes<T, Isa>(vals), n);
      bool ok = true;
      for (std::size_t i = 0; i < n; ++i) ok = ok && identical(edge[i], vals[i]);
      CHECK(ok);
    }
  });
}

TEMPLATE_TEST_CASE("Vec set1, zero, add, sub, mul, fmadd, fnmadd and fmsub are IEEE lane by lane",
                   "[simd][vec]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(104);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    [[maybe_unused]] constexpr bool is_scalar = std::is_same_v<Isa, scalar_isa>;
    INFO("isa " << Isa::name);
    // Exact comparisons: add/sub/mul are correctly rounded on every ISA. fmadd/fnmadd/fmsub are
    // one fused operation on AVX2 (exactly std::fma), and on scalar_isa where the target has FMA;
    // scalar_isa elsewhere is a·b + c, two roundings. Inputs span 2^±20, so the two roundings
    // differ often and a wrong formula cannot hide.
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
    constexpr bool split_allowed = false;
#else
    constexpr bool split_allowed = is_scalar;
#endif
    int bad_set1 = 0, bad_zero = 0, bad_add = 0, bad_sub = 0, bad_mul = 0, bad_fmadd = 0,
        bad_fnmadd = 0, bad_fmsub = 0;
    for (int trial = 0; trial < 500; ++trial) {
      const auto a = random_lanes<T, Isa>(rng), b = random_lanes<T, Isa>(rng),
                 c = random_lanes<T, Isa>(rng);
      const auto va = from_lanes<T, Isa>(a), vb = from_lanes<T, Isa>(b),
                 vc = from_lanes<T, Isa>(c);
      const auto s1 = to_lanes<T, Isa>(V::set1(a[0])), z = to_lanes<T, Isa>(V::zero());
      const auto ad = to_lanes<T, Isa>(V::add(va, vb)), sb = to_lanes<T, Isa>(V::sub(va, vb)),
                 ml = to_lanes<T, Isa>(V::mul(va, vb));
      const auto fm = to_lanes<T, Isa>(V::fmadd(va, vb, vc)),
                 fn = to_lanes<T, Isa>(V::fnmadd(va, vb, vc)),
                 fs = to_lanes<T, Isa>(V::fmsub(va, vb, vc));
      for (std::size_t i = 0; i < W; ++i) {
        bad_set1 += !identical(s1[i], a[0]);
        bad_zero += !identical(z[i], T(0));
        bad_add += !identical(ad[i], T(a[i] + b[i]));
        bad_sub += !identical(sb[i], T(a[i] - b[i]));
        bad_mul += !identical(ml[i], T(a[i] * b[i]));
        volatile T prod = a[i] * b[i];  // volatile: keeps the test's own a·b rounded
        const T fused_madd = std::fma(a[i], b[i], c[i]), split_madd = prod + c[i];
        const T fused_nmadd = std::fma(-a[i], b[i], c[i]), split_nmadd = c[i] - prod;
        const T fused_msub = std::fma(a[i], b[i], -c[i]), split_msub = prod - c[i];
        bad_fmadd +=
            !(identical(fm[i], fused_madd) || (split_allowed && identical(fm[i], split_madd)));
        bad_fnmadd +=
            !(identical(fn[i], fused_nmadd) || (split_allowed && identical(fn[i], split_nmadd)));
        bad_fmsub +=
            !(identical(fs[i], fused_msub) || (split_allowed && identical(fs[i], split_msub)));
      }
    }
    CHECK(bad_set1 == 0);
    CHECK(bad_zero == 0);
    CHECK(bad_add == 0);
    CHECK(bad_sub == 0);
    CHECK(bad_mul == 0);
    CHECK(bad_fmadd == 0);
    CHECK(bad_fnmadd == 0);
    CHECK(bad_fmsub == 0);
  });
}

TEMPLATE_TEST_CASE("Vec max and min follow the x86 rule: b when either operand is NaN",
                   "[simd][vec]", float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  // (a, b) pairs: NaN on either side, signed zeros (equal, so b is returned), infinities, ties.
  const T pairs[][2] = {{nan, T(1)},   {T(1), nan},    {nan, nan},    {T(0), -T(0)},
                        {-T(0), T(0)}, {inf, -inf},    {-inf, inf},   {T(1), T(2)},
                        {T(2), T(1)},  {T(-1), T(-1)}, {-inf, T(-3)}, {T(5), inf},
                        {nan, -inf},   {inf, nan},     {T(-7), T(3)}, {T(0.5), T(-0.25)}};
  constexpr std::size_t P = sizeof pairs / sizeof pairs[0];
  auto rng = xfmr_test::make_rng(105);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    INFO("isa " << Isa::name);
    int bad_max = 0, bad_min = 0;
    // Every pair visits every lane (shift s), then random pairs.
    for (std::size_t s = 0; s < P + 200; ++s) {
      Lanes<T, Isa> a, b;
      for (std::size_t i = 0; i < W; ++i) {
        if (s < P) {
          a[i] = pairs[(s + i) % P][0];
          b[i] = pairs[(s + i) % P][1];
        } else {
          a[i] = random_value<T>(rng);
          b[i] = random_value<T>(rng);
        }
      }
      const auto mx = to_lanes<T, Isa>(V::max(from_lanes<T, Isa>(a), from_lanes<T, Isa>(b)));
      const auto mn = to_lanes<T, Isa>(V::min(from_lanes<T, Isa>(a), from_lanes<T, Isa>(b)));
      for (std::size_t i = 0; i < W; ++i) {
        const bool unordered = std::isnan(a[i]) || std::isnan(b[i]);
        const T want_max = unordered ? b[i] : (a[i] > b[i] ? a[i] : b[i]);
        const T want_min = unordered ? b[i] : (a[i] < b[i] ? a[i] : b[i]);
        bad_max += !identical(mx[i], want_max);
        bad_min += !identical(mn[i], want_min);
      }
    }
    CHECK(bad_max == 0);
    CHECK(bad_min == 0);
  });
}

TEMPLATE_TEST_CASE("Vec div, abs and select_lt: IEEE division, sign bit cleared, ordered compare "
                   "(false with NaN)",
                   "[simd][vec]", float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  const T pairs[][2] = {{nan, T(1)},   {T(1), nan},   {T(0), -T(0)}, {-T(0), T(0)},
                        {inf, -inf},   {T(1), T(2)},  {T(2), T(1)},  {T(-1), T(-1)},
                        {-inf, T(-3)}, {T(5), inf},   {T(-7), T(3)}, {T(1), T(0)},
                        {T(-1), -T(0)}, {T(0), T(0)}};
  constexpr std::size_t P = sizeof pairs / sizeof pairs[0];
  auto rng = xfmr_test::make_rng(109);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    INFO("isa " << Isa::name);
    int bad_div = 0, bad_abs = 0, bad_sel = 0;
    for (std::size_t s = 0; s < P + 300; ++s) {
      Lanes<T, Isa> a, b, t, f;
      for (std::size_t i = 0; i < W; ++i) {
        if (s < P) {
          a[i] = pairs[(s + i) % P][0];
          b[i] = pairs[(s + i) % P][1];
        } else {
          a[i] = random_value<T>(rng);
          b[i] = random_value<T>(rng);
        }
        t[i] = random_value<T>(rng);
        f[i] = random_value<T>(rng);
      }
      const auto va = from_lanes<T, Isa>(a), vb = from_lanes<T, Isa>(b);
      const auto dv = to_lanes<T, Isa>(V::div(va, vb)), ab = to_lanes<T, Isa>(V::abs(va));
      const auto sl = to_lanes<T, Isa>(
          V::select_lt(va, vb, from_lanes<T, Isa>(t), from_lanes<T, Isa>(f)));
      for (std::size_t i = 0; i < W; ++i) {
        const T q = a[i] / b[i];
        bad_div += !identical(dv[i], q);
        bad_abs += !identical(ab[i], T(std::fabs(a[i])));
        bad_sel += !identical(sl[i], a[i] < b[i] ? t[i] : f[i]);
      }
    }
    CHECK(bad_div == 0);
    CHECK(bad_abs == 0);
    CHECK(bad_sel == 0);
  });
}

TEMPLATE_TEST_CASE("Vec round rounds to nearest with ties to even", "[simd][vec]", float,
                   double) {
  using T = TestType;
  constexpr int p = std::numeric_limits<T>::digits;  // 24 or 53
  const T big = std::ldexp(T(1), p - 1);            // from here on every T is an integer
  const T half = std::ldexp(T(1), p - 2);
  const T inf = std::numeric_limits<T>::infinity();
  // Hand-written expectations (not std::nearbyint, which scalar_isa itself uses).
  const T cases[][2] = {{T(0.5), T(0)},
                        {T(1.5), T(2)},
                        {T(2.5), T(2)},
                        {T(3.5), T(4)},
                        {T(-0.5), -T(0)},
                        {T(-1.5), T(-2)},
                        {T(-2.5), T(-2)},
                        {T(-3.5), T(-4)},
                        {T(-0.25), -T(0)},
                        {T(0.75), T(1)},
                        {std::nextafter(T(0.5), T(0)), T(0)},
                        {std::nextafter(T(0.5), T(1)), T(1)},
                        {big - T(0.5), big},                // odd − ½ → even above
                        {half + T(0.5), half},              // even + ½ → even below
                        {half + T(1.5), half + T(2)},
                        {-(big - T(0.5)), -big},
                        {big + T(1), big + T(1)},           // integers stay
                        {T(3) * big, T(3) * big},
                        {-T(0), -T(0)},
                        {inf, inf},
                        {-inf, -inf}};
  constexpr std::size_t C = sizeof cases / sizeof cases[0];
  auto rng = xfmr_test::make_rng(106);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    INFO("isa " << Isa::name);
    int bad_cases = 0, bad_random = 0, bad_nan = 0;
    for (std::size_t s = 0; s < C; ++s) {
      Lanes<T, Isa> a, want;
      for (std::size_t i = 0; i < W; ++i) {
        a[i] = cases[(s + i) % C][0];
        want[i] = cases[(s + i) % C][1];
      }
      const auto r = to_lanes<T, Isa>(V::round(from_lanes<T, Isa>(a)));
      for (std::size_t i = 0; i < W; ++i) bad_cases += !identical(r[i], want[i]);
    }
    std::uniform_real_distribution<double> u(-64.0, 64.0);
    for (int trial = 0; trial < 500; ++trial) {
      Lanes<T, Isa> a;
      // Half of the draws are exact halves, the rest arbitrary.
      for (auto& v : a) v = trial % 2 ? T(std::round(u(rng) * 2) / 2) : T(u(rng));
      const auto r = to_lanes<T, Isa>(V::round(from_lanes<T, Isa>(a)));
      for (std::size_t i = 0; i < W; ++i) {
        // Independent of nearbyint: the nearest integer, the even one on a tie.
        const T fl = std::floor(a[i]), frac = a[i] - fl;
        T want = frac < T(0.5) ? fl : frac > T(0.5) ? fl + 1 : (std::fmod(fl, T(2)) == 0 ? fl : fl + 1);
        if (want == 0) want = std::copysign(T(0), a[i]);
        bad_random += !identical(r[i], want);
      }
    }
    Lanes<T, Isa> a;
    a.fill(std::numeric_limits<T>::quiet_NaN());
    const auto r = to_lanes<T, Isa>(V::round(from_lanes<T, Isa>(a)));
    for (std::size_t i = 0; i < W; ++i) bad_nan += !std::isnan(r[i]);
    CHECK(bad_cases == 0);
    CHECK(bad_random == 0);
    CHECK(bad_nan == 0);
  });
}

TEMPLATE_TEST_CASE("Vec pow2i(n) and shift_to_exponent(n + bias + 1.5·2^p) give exactly 2^n",
                   "[simd][vec]", float, double) {
  using T = TestType;
  constexpr int p = std::numeric_limits<T>::digits - 1;           // 23 / 52
  constexpr int bias = std::numeric_limits<T>::max_exponent - 1;  // 127 / 1023
  const T shifter = std::ldexp(T(1.5), p) + T(bias);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    INFO("isa " << Isa::name);
    // pow2i over the normal exponent range [1 − bias, bias]; shift_to_exponent also at −bias,
    // where it gives +0.
    int bad_pow2i = 0, bad_shift = 0, first_bad = bias + 1;
    for (int n0 = -bias; n0 <= bias; n0 += static_cast<int>(W)) {
      Lanes<T, Isa> n, t;
      for (std::size_t i = 0; i < W; ++i) {
        n[i] = T(std::max(1 - bias, std::min(n0 + static_cast<int>(i), bias)));
        t[i] = T(std::min(n0 + static_cast<int>(i), bias)) + shifter;
      }
      const auto r = to_lanes<T, Isa>(V::pow2i(from_lanes<T, Isa>(n)));
      const auto s = to_lanes<T, Isa>(V::shift_to_exponent(from_lanes<T, Isa>(t)));
      for (std::size_t i = 0; i < W; ++i) {
        const int ni = static_cast<int>(n[i]), ti = static_cast<int>(t[i] - shifter);
        if (!identical(r[i], std::ldexp(T(1), ni)))
          ++bad_pow2i, first_bad = std::min(first_bad, ni);
        if (!identical(s[i], ti == -bias ? T(0) : std::ldexp(T(1), ti)))
          ++bad_shift, first_bad = std::min(first_bad, ti);
      }
    }
    INFO("first wrong exponent " << first_bad);
    CHECK(bad_pow2i == 0);
    CHECK(bad_shift == 0);
  });
}

TEMPLATE_TEST_CASE("Vec reduce_add and reduce_max combine all lanes", "[simd][vec]", float,
                   double) {
  using T = TestType;
  constexpr T u = std::numeric_limits<T>::epsilon() / 2;
  auto rng = xfmr_test::make_rng(107);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    INFO("isa " << Isa::name);
    std::uniform_int_distribution<int> small(-1000, 1000);
    int bad_exact = 0, bad_bound = 0, bad_max = 0;
    double worst = 0;
    for (int trial = 0; trial < 300; ++trial) {
      // Small integers: every partial sum is exact in any order, so the sum must be exact.
      Lanes<T, Isa> a;
      long exact = 0;
      for (auto& v : a) {
        v = T(small(rng));
        exact += static_cast<long>(v);
      }
      bad_exact += !(V::reduce_add(from_lanes<T, Isa>(a)) == T(exact));
      // Arbitrary values: W − 1 additions in some order; the classic bound on recursive or
      // pairwise summation is (W − 1)·u·Σ|a_i| (u = 2^-p), the reference is long double.
      const auto b = random_lanes<T, Isa>(rng);
      long double ref = 0, mag = 0;
      for (const T v : b) {
        ref += v;
        mag += std::fabs(static_cast<long double>(v));
      }
      const long double err = std::fabs(V::reduce_add(from_lanes<T, Isa>(b)) - ref);
      const long double bound = (W - 1) * static_cast<long double>(u) * mag;
      bad_bound += !(err <= bound);
      if (mag > 0) worst = std::max(worst, static_cast<double>(err / (u * mag)));
      // reduce_max: exact, with the maximum placed in every lane in turn.
      auto c = random_lanes<T, Isa>(rng);
      const std::size_t at = static_cast<std::size_t>(trial) % W;
      const T top = *std::max_element(c.begin(), c.end()) + T(1);
      c[at] = top;
      if (trial % 3 == 0) c[(at + 1) % W] = -std::numeric_limits<T>::infinity();
      if (W == 1) c[0] = top;
      bad_max += !identical(V::reduce_max(from_lanes<T, Isa>(c)), top);
    }
    INFO("worst reduce_add error in units of u·Σ|a| " << worst);
    CHECK(bad_exact == 0);
    CHECK(bad_bound == 0);
    CHECK(bad_max == 0);
    // NaN and infinity propagate through a sum in any order.
    Lanes<T, Isa> a;
    a.fill(T(1));
    a[W - 1] = std::numeric_limits<T>::quiet_NaN();
    CHECK(std::isnan(V::reduce_add(from_lanes<T, Isa>(a))));
    a[W - 1] = std::numeric_limits<T>::infinity();
    CHECK(V::reduce_add(from_lanes<T, Isa>(a)) == std::numeric_limits<T>::infinity());
  });
}

TEMPLATE_TEST_CASE("Vec reduce_add4 sums four vectors into four slots", "[simd][vec]", float,
                   double) {
  using T = TestType;
  constexpr T u = std::numeric_limits<T>::epsilon() / 2;
  auto rng = xfmr_test::make_rng(109);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    constexpr std::size_t W = V::lanes;
    INFO("isa " << Isa::name);
    std::uniform_int_distribution<int> small(-1000, 1000);
    int bad_exact = 0, bad_bound = 0, bad_guard = 0;
    for (int trial = 0; trial < 300; ++trial) {
      // Small integers (exact in any order): each sum in its own slot; out one element off
      // alignment, the slots around it untouched.
      Lanes<T, Isa> a[4];
      long exact[4] = {};
      for (int i = 0; i < 4; ++i)
        for (auto& v : a[i]) {
          v = T(small(rng));
          exact[i] += static_cast<long>(v);
        }
      T out[6] = {T(-7), T(-7), T(-7), T(-7), T(-7), T(-7)};
      V::reduce_add4(from_lanes<T, Isa>(a[0]), from_lanes<T, Isa>(a[1]),
                     from_lanes<T, Isa>(a[2]), from_lanes<T, Isa>(a[3]), out + 1);
      for (int i = 0; i < 4; ++i) bad_exact += !(out[1 + i] == T(exact[i]));
      bad_guard += !(out[0] == T(-7) && out[5] == T(-7));
      // Arbitrary values: W − 1 additions per sum, bound (W − 1)·u·Σ|a_i| as reduce_add.
      Lanes<T, Isa> b[4];
      for (auto& x : b) x = random_lanes<T, Isa>(rng);
      V::reduce_add4(from_lanes<T, Isa>(b[0]), from_lanes<T, Isa>(b[1]),
                     from_lanes<T, Isa>(b[2]), from_lanes<T, Isa>(b[3]), out + 1);
      for (int i = 0; i < 4; ++i) {
        long double ref = 0, mag = 0;
        for (const T v : b[i]) {
          ref += v;
          mag += std::fabs(static_cast<long double>(v));
        }
        bad_bound += !(std::fabs(out[1 + i] - ref) <= (W - 1) * static_cast<long double>(u) * mag);
      }
    }
    CHECK(bad_exact == 0);
    CHECK(bad_bound == 0);
    CHECK(bad_guard == 0);
    // NaN and infinity stay in their own slot.
    Lanes<T, Isa> one, nan, inf;
    one.fill(T(1));
    nan = inf = one;
    nan[W - 1] = std::numeric_limits<T>::quiet_NaN();
    inf[0] = std::numeric_limits<T>::infinity();
    T out[4];
    V::reduce_add4(from_lanes<T, Isa>(one), from_lanes<T, Isa>(nan), from_lanes<T, Isa>(inf),
                   from_lanes<T, Isa>(one), out);
    CHECK(out[0] == T(W));
    CHECK(std::isnan(out[1]));
    CHECK(out[2] == std::numeric_limits<T>::infinity());
    CHECK(out[3] == T(W));
  });
}

#if XFMR_HAS_AVX2
// The pair operations exist on the vector tiers only (RoPE's interleaved path).
template <typename T, class Isa>
void check_pair_ops() {
  INFO("isa " << Isa::name);
  using V = Vec<T, Isa>;
  constexpr std::size_t W = V::lanes, H = W / 2;
  auto rng = xfmr_test::make_rng(108);
  int bad_swap = 0, bad_addsub = 0, bad_subadd = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const auto a = random_lanes<T, Isa>(rng), b = random_lanes<T, Isa>(rng),
               c = random_lanes<T, Isa>(rng);
    const auto va = from_lanes<T, Isa>(a), vb = from_lanes<T, Isa>(b), vc = from_lanes<T, Isa>(c);
    const auto sw = to_lanes<T, Isa>(V::swap_pairs(va));
    const auto as = to_lanes<T, Isa>(V::fmaddsub(va, vb, vc));
    const auto sa = to_lanes<T, Isa>(V::fmsubadd(va, vb, vc));
    for (std::size_t i = 0; i < W; ++i) {
      const bool even = i % 2 == 0;
      bad_swap += !identical(sw[i], a[i ^ 1]);
      // One fused rounding each: exactly std::fma.
      bad_addsub += !identical(as[i], std::fma(a[i], b[i], even ? -c[i] : c[i]));
      bad_subadd += !identical(sa[i], std::fma(a[i], b[i], even ? c[i] : -c[i]));
    }
  }
  CHECK(bad_swap == 0);
  CHECK(bad_addsub == 0);
  CHECK(bad_subadd == 0);

  // load_dup_pairs reads exactly W/2 values: at a page end, and with canaries after them.
  for (const std::size_t off : kOffsets) {
    INFO("offset " << off);
    xfmr_test::Guarded<T> src(H, off);
    for (std::size_t i = 0; i < H; ++i) src[i] = random_value<T>(rng);
    const auto r = to_lanes<T, Isa>(V::load_dup_pairs(src.data()));
    bool ok = true;
    for (std::size_t i = 0; i < W; ++i) ok = ok && identical(r[i], src[i / 2]);
    CHECK(ok);
    CHECK(src.guards_intact());
  }
  {
    xfmr_test::PageEnd<T> edge(H);
    for (std::size_t i = 0; i < H; ++i) edge[i] = random_value<T>(rng);
    const auto r = to_lanes<T, Isa>(V::load_dup_pairs(edge.data()));
    bool ok = true;
    for (std::size_t i = 0; i < W; ++i) ok = ok && identical(r[i], edge[i / 2]);
    CHECK(ok);
  }
  // load_dup_pairs_partial(p, n), n < W/2: lanes [0, 2n) are the duplicated values, the rest +0.
  for (std::size_t n = 0; n < H; ++n) {
    INFO("n " << n);
    for (const std::size_t off : kOffsets) {
      INFO("offset " << off);
      xfmr_test::Guarded<T> src(n, off);  // canaries (non-zero) right after the n values
      for (std::size_t i = 0; i < n; ++i) src[i] = random_value<T>(rng);
      const auto r = to_lanes<T, Isa>(V::load_dup_pairs_partial(src.data(), n));
      bool ok = true;
      for (std::size_t i = 0; i < W; ++i)
        ok = ok && (i < 2 * n ? identical(r[i], src[i / 2]) : identical(r[i], T(0)));
      CHECK(ok);
      CHECK(src.guards_intact());
    }
    xfmr_test::PageEnd<T> edge(n);
    for (std::size_t i = 0; i < n; ++i) edge[i] = random_value<T>(rng);
    const auto r = to_lanes<T, Isa>(V::load_dup_pairs_partial(edge.data(), n));
    bool ok = true;
    for (std::size_t i = 0; i < W; ++i)
      ok = ok && (i < 2 * n ? identical(r[i], edge[i / 2]) : identical(r[i], T(0)));
    CHECK(ok);
  }
}

TEMPLATE_TEST_CASE("Vector pair ops: swap_pairs, fmaddsub, fmsubadd, load_dup_pairs(_partial)",
                   "[simd][vec][avx2][avx512]", float, double) {
  xfmr_test::for_each_isa([](auto isa) {
    using Isa = decltype(isa);
    if constexpr (!std::is_same_v<Isa, xfmr::simd::scalar_isa>) check_pair_ops<TestType, Isa>();
  });
}
#endif  // XFMR_HAS_AVX2

TEMPLATE_TEST_CASE("Vec<T, interleaved<Isa, 2>> is two Vec<T, Isa> side by side, bit for bit, in "
                   "every op it has",
                   "[simd][vec]", float, double) {
  using T = TestType;
  constexpr int bias = std::numeric_limits<T>::max_exponent - 1;
  const T shifter = std::ldexp(T(1.5), std::numeric_limits<T>::digits - 1) + T(bias);
  auto rng = xfmr_test::make_rng(620);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = Vec<T, Isa>;
    using V2 = Vec<T, xfmr::simd::interleaved<Isa, 2>>;
    constexpr std::size_t W = V::lanes;
    static_assert(V2::lanes == 2 * W, "two vectors' lanes");
    INFO("isa " << Isa::name);
    const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
    for (int trial = 0; trial < 50; ++trial) {
      // Operands of 2W lanes each: random values with NaN, ±inf, ±0 and ties of round mixed in;
      // integers for pow2i; n + bias + 1.5·2^p for shift_to_exponent.
      std::array<std::array<T, 2 * W>, 4> x;
      std::array<T, 2 * W> ints, shifted;
      const T specials[] = {nan, inf, -inf, T(0), -T(0), T(2.5), T(-0.5)};
      std::uniform_int_distribution<int> pick(0, 9), exponent(1 - bias, bias);
      for (auto& a : x)
        for (auto& v : a) v = pick(rng) < 7 ? random_value<T>(rng) : specials[pick(rng) % 7];
      for (std::size_t i = 0; i < 2 * W; ++i) {
        ints[i] = T(exponent(rng));
        shifted[i] = ints[i] + shifter;
      }
      // One op on both: V2 on 2W lanes against V on each half (loads and stores of both).
      int bad = 0;
      auto check = [&](const char* name, auto op2, auto op1, const auto&... args) {
        std::array<T, 2 * W> got, want;
        V2::store(got.data(), op2(V2::load(args.data())...));
        for (std::size_t h = 0; h < 2; ++h)
          V::store(want.data() + h * W, op1(V::load(args.data() + h * W)...));
        for (std::size_t i = 0; i < 2 * W; ++i)
          if (!identical(got[i], want[i])) {
            ++bad;
            UNSCOPED_INFO(name << " lane " << i << ": " << got[i] << " vs " << want[i]);
          }
      };
#define XFMR_BOTH(op) \
  #op, [](auto... a) { return V2::op(a...); }, [](auto... a) { return V::op(a...); }
      check(XFMR_BOTH(add), x[0], x[1]);
      check(XFMR_BOTH(sub), x[0], x[1]);
      check(XFMR_BOTH(mul), x[0], x[1]);
      check(XFMR_BOTH(div), x[0], x[1]);
      check(XFMR_BOTH(min), x[0], x[1]);
      check(XFMR_BOTH(max), x[0], x[1]);
      check(XFMR_BOTH(fmadd), x[0], x[1], x[2]);
      check(XFMR_BOTH(fnmadd), x[0], x[1], x[2]);
      check(XFMR_BOTH(fmsub), x[0], x[1], x[2]);
      check(XFMR_BOTH(select_lt), x[0], x[1], x[2], x[3]);
      check(XFMR_BOTH(abs), x[0]);
      check(XFMR_BOTH(round), x[0]);
      check(XFMR_BOTH(pow2i), ints);
      check(XFMR_BOTH(shift_to_exponent), shifted);
#undef XFMR_BOTH
      check("set1", [&] { return V2::set1(x[0][0]); }, [&] { return V::set1(x[0][0]); });
      check("zero", [] { return V2::zero(); }, [] { return V::zero(); });
      REQUIRE(bad == 0);
    }
  });
}

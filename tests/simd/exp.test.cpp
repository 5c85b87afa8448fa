// SPDX-License-Identifier: MIT
// simd::exp<Isa, T>(x, y, n) and simd::exp_nonpositive<Isa, T>(x, y, n) against std::exp in long
// double: the documented ULP bounds, the special values, the subnormal range (exp) and the
// flush to zero (exp_nonpositive), and the kernel contract (sizes, misalignment, in place, every
// output written, nothing past n touched), on every ISA the build compiled and the CPU runs.
//
// Error measure: |y − e^x| / ulp(RN_T(e^x)), where e^x is long-double expl (64-bit significand,
// itself within about 1 long-double ulp, i.e. 2^-40 float ulp or 2^-11 double ulp) and ulp() is
// the spacing of T just above the correctly rounded reference (2^(ilogb − p + 1)).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/exp.hpp>

#include "support/guarded.hpp"
#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/page_guard.hpp"
#include "support/random.hpp"

using xfmr::simd::scalar_isa;

namespace {

constexpr std::size_t kOffsets[] = {0, 1, 3};

template <typename T>
long double reference_exp(T x) {
  return std::exp(static_cast<long double>(x));
}

/// Spacing of T at the correctly rounded value of ref (normal range; subnormal spacing below).
template <typename T>
long double ulp_at(long double ref) {
  const T r = static_cast<T>(ref);
  if (!(std::fabs(r) >= std::numeric_limits<T>::min()))
    return std::numeric_limits<T>::denorm_min();
  return std::ldexp(1.0L, std::ilogb(r) - (std::numeric_limits<T>::digits - 1));
}

template <typename T>
double ulp_error(T y, long double ref) {
  return static_cast<double>(std::fabs(static_cast<long double>(y) - ref) / ulp_at<T>(ref));
}

/// Tracks the worst ULP error and where it happened; NaN errors count as failures.
struct Worst {
  double err = 0;
  double at = 0;
  long failures = 0;
  void add(double e, double x, double bound) {
    if (!(e <= bound)) ++failures;
    if (!(e <= err)) {
      err = e;
      at = x;
    }
  }
};

template <typename T>
std::uint64_t bits_of(T x) {
  if constexpr (std::is_same_v<T, float>) {
    std::uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
  } else {
    std::uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
  }
}

float float_from_bits(std::uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

/// Every ISA (compiled and supported by the CPU) on xs: each against the reference (≤ bound ulp)
/// and against scalar_isa (≤ 1 ulp: same algorithm, only FMA contraction of the scalar path may
/// differ). report_isa() prints and checks the three trackers of one ISA.
template <typename T, class Report>
void check_against_reference(const std::vector<T>& xs, double bound, Report report_isa) {
  std::vector<T> ys(xs.size());
  xfmr::simd::exp<scalar_isa, T>(xs.data(), ys.data(), xs.size());
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    std::vector<T> y(xs.size());
    xfmr::simd::exp<Isa, T>(xs.data(), y.data(), xs.size());
    Worst vs_ref, agree;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const long double ref = reference_exp(xs[i]);
      vs_ref.add(ulp_error(y[i], ref), xs[i], bound);
      agree.add(static_cast<double>(std::fabs(static_cast<long double>(y[i]) - ys[i]) /
                                    ulp_at<T>(ref)),
                xs[i], 1.0);
    }
    report_isa(Isa::name, vs_ref, agree);
  });
}

void report(const char* what, const Worst& w) {
  INFO(what << ": worst " << w.err << " ulp at x = " << w.at << ", " << w.failures
            << " points over the bound");
  CHECK(w.failures == 0);
}

}  // namespace

TEST_CASE("exp<float> is within 2 ulp on [-87, 88]: a stride sweep over the float bit patterns "
          "plus random points",
          "[simd][exp]") {
  // Every float in [−87, 88] is reached by walking its bit pattern; a prime stride of 797
  // visits ~2.8 million of the ~2.24e9 patterns with all low mantissa bits varying, from the
  // tiny |x| (e^x ≈ 1 + x) to both ends of the range.
  constexpr std::uint32_t kStride = 797;
  const std::uint32_t pos_end = static_cast<std::uint32_t>(bits_of(88.0f));
  const std::uint32_t neg_end = static_cast<std::uint32_t>(bits_of(-87.0f));
  std::vector<float> xs;
  xs.reserve(3000000);
  for (std::uint32_t b = 0; b <= pos_end; b += kStride) xs.push_back(float_from_bits(b));
  for (std::uint32_t b = 0x80000000u + 1; b <= neg_end; b += kStride)
    xs.push_back(float_from_bits(b));
  xs.push_back(88.0f);
  xs.push_back(-87.0f);
  auto rng = xfmr_test::make_rng(201);
  std::uniform_real_distribution<double> u(-87.0, 88.0);
  for (int i = 0; i < 300000; ++i) xs.push_back(static_cast<float>(u(rng)));

  INFO(xs.size() << " points");
  check_against_reference(xs, 2.0, [](const char* isa, const Worst& w, const Worst& agree) {
    INFO("isa " << isa);
    report("vs reference", w);
    report("vs scalar (bound 1 ulp)", agree);
  });
}

TEST_CASE("exp<double> is within 2 ulp on [-708, 709] at random points", "[simd][exp]") {
  auto rng = xfmr_test::make_rng(202);
  std::vector<double> xs;
  xs.reserve(1000002);
  std::uniform_real_distribution<double> u(-708.0, 709.0);
  for (int i = 0; i < 800000; ++i) xs.push_back(u(rng));
  // Log-uniform magnitudes 2^-60 … 2^9 with either sign: the uniform draw rarely gets |x| < 1.
  std::uniform_real_distribution<double> e(-60.0, 9.0);
  for (int i = 0; i < 200000; ++i)
    xs.push_back(std::copysign(std::min(std::exp2(e(rng)), 708.0), i % 2 ? 1.0 : -1.0));
  xs.push_back(-708.0);
  xs.push_back(709.0);

  check_against_reference(xs, 2.0, [](const char* isa, const Worst& w, const Worst& agree) {
    INFO("isa " << isa);
    report("vs reference", w);
    report("vs scalar (bound 1 ulp)", agree);
  });
}

TEMPLATE_TEST_CASE("exp special values: NaN, infinities, overflow to +inf, underflow to +0",
                   "[simd][exp]", float, double) {
  using T = TestType;
  constexpr bool is_float = std::is_same_v<T, float>;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T big = std::numeric_limits<T>::max();
  // Overflow: e^x > max·(1 + 2^-p) (rounds to +inf) from x ≈ 88.7228 (float) / 709.7827
  // (double); the test starts a little above, at the documented 88.73 / 709.79.
  const std::vector<T> over = is_float
      ? std::vector<T>{T(88.73f), T(88.75f), T(89.0f), T(89.5f), T(100), T(1000), T(1e30f), big, inf}
      : std::vector<T>{T(709.79), T(709.8), T(710), T(710.5), T(1000), T(1e300), big, inf};
  // Underflow: e^x < 2^-150 / 2^-1075 (half the smallest subnormal, rounds to +0) below
  // x ≈ −103.972 / −745.133; the test starts at the documented −103.98 / −745.2.
  const std::vector<T> under = is_float
      ? std::vector<T>{T(-103.98f), T(-104.0f), T(-104.5f), T(-200), T(-1e30f), -big, -inf}
      : std::vector<T>{T(-745.2), T(-746), T(-746.5), T(-2000), T(-1e300), -big, -inf};
  // Dense random points in the two saturated regions as well.
  auto rng = xfmr_test::make_rng(203);
  std::vector<T> xs;
  std::vector<int> kind;  // 0 NaN, 1 +inf, 2 +0
  std::uniform_real_distribution<double> uo(is_float ? 88.73 : 709.79, is_float ? 200.0 : 2000.0);
  std::uniform_real_distribution<double> uu(is_float ? -300.0 : -3000.0, is_float ? -103.98 : -745.2);
  for (int rep = 0; rep < 13; ++rep) {  // 13 repetitions: every value lands in every lane
    xs.push_back(nan), kind.push_back(0);
    xs.push_back(-nan), kind.push_back(0);
    for (const T v : over) xs.push_back(v), kind.push_back(1);
    for (const T v : under) xs.push_back(v), kind.push_back(2);
    for (int i = 0; i < 16; ++i) {
      xs.push_back(T(uo(rng))), kind.push_back(1);
      xs.push_back(T(uu(rng))), kind.push_back(2);
    }
  }
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name);
    std::vector<T> y(xs.size(), T(42));
    xfmr::simd::exp<Isa, T>(xs.data(), y.data(), xs.size());
    long bad = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const bool ok = kind[i] == 0   ? std::isnan(y[i])
                      : kind[i] == 1 ? y[i] == inf
                                     : (y[i] == 0 && !std::signbit(y[i]));
      if (!ok) {
        ++bad;
        UNSCOPED_INFO("x = " << xs[i] << " gave " << y[i]);
      }
    }
    CHECK(bad == 0);
  });
}

TEST_CASE("exp<float> in the subnormal range is monotone and within one subnormal ulp plus "
          "2 ulp relative",
          "[simd][exp]") {
  // Results below 2^-126 are subnormal: their absolute spacing is 2^-149, so relative ULP
  // bounds stop making sense. The kernel computes e·2^n1 (normal, relative error ≤ 2 ulp as in
  // the normal range) and rounds once to the subnormal grid (≤ ½ subnormal ulp). Bound:
  // |y − e^x| ≤ 2^-149 + 4·2^-24·e^x (half an ulp of margin on each term). A kernel that built a
  // subnormal 2^n first and rounded twice, or flushed to zero, fails it.
  // Every float x from −104 to −87.3 (~2.2 million points, consecutive, for monotonicity).
  const float lo = -104.0f, hi = -87.3f;
  std::vector<float> xs;
  for (float x = lo; x <= hi; x = std::nextafter(x, 0.0f)) xs.push_back(x);
  const long double sub_ulp = std::numeric_limits<float>::denorm_min();
  const long double rel = 4 * std::ldexp(1.0L, -24);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name);
    std::vector<float> y(xs.size());
    xfmr::simd::exp<Isa, float>(xs.data(), y.data(), xs.size());
    long over = 0, not_monotone = 0;
    double worst_x = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const long double ref = reference_exp(xs[i]);
      if (!(std::fabs(y[i] - ref) <= sub_ulp + rel * ref)) {
        ++over;
        worst_x = xs[i];
      }
      if (i > 0 && !(y[i] >= y[i - 1])) ++not_monotone;
    }
    INFO(xs.size() << " points; an out-of-bound x = " << worst_x);
    CHECK(over == 0);
    CHECK(not_monotone == 0);
    CHECK(y.front() == 0.0f);   // e^-104 < 2^-150
    CHECK(y.back() > 0x1p-126f);  // e^-87.3 is normal again
  });
}

TEST_CASE("exp<double> in the subnormal range is monotone and within one subnormal ulp plus "
          "2 ulp relative",
          "[simd][exp]") {
  // As for float: |y − e^x| ≤ 2^-1074 + 4·2^-53·e^x, over an increasing sweep of
  // [−745.2, −708.3] (200 001 points, step ~1.8e-4).
  const double lo = -745.2, hi = -708.3;
  const int steps = 200000;
  std::vector<double> xs(steps + 1);
  for (int i = 0; i <= steps; ++i) xs[i] = lo + (hi - lo) * i / steps;
  const long double sub_ulp = std::numeric_limits<double>::denorm_min();
  const long double rel = 4 * std::ldexp(1.0L, -53);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name);
    std::vector<double> y(xs.size());
    xfmr::simd::exp<Isa, double>(xs.data(), y.data(), xs.size());
    long over = 0, not_monotone = 0;
    double worst_x = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const long double ref = reference_exp(xs[i]);
      if (!(std::fabs(y[i] - ref) <= sub_ulp + rel * ref)) {
        ++over;
        worst_x = xs[i];
      }
      if (i > 0 && !(y[i] >= y[i - 1])) ++not_monotone;
    }
    INFO("an out-of-bound x = " << worst_x);
    CHECK(over == 0);
    CHECK(not_monotone == 0);
    CHECK(y.front() == 0.0);
    CHECK(y.back() > 0x1p-1022);
  });
}

TEMPLATE_TEST_CASE("exp writes every y[i], i < n, and nothing else: sizes, misalignment, in place",
                   "[simd][exp]", float, double) {
  using T = TestType;
  constexpr bool is_float = std::is_same_v<T, float>;
  auto rng = xfmr_test::make_rng(204);
  std::uniform_real_distribution<double> u(is_float ? -87.0 : -708.0, is_float ? 88.0 : 709.0);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    constexpr std::size_t W = xfmr::simd::Vec<T, Isa>::lanes;
    INFO("isa " << Isa::name);
    std::vector<std::size_t> sizes;
    for (std::size_t n = 0; n <= 4 * W + 3; ++n) sizes.push_back(n);
    sizes.push_back(1001);
    for (const std::size_t n : sizes) {
      INFO("n " << n);
      std::vector<T> x0(n);
      for (auto& v : x0) v = T(u(rng));
      // Lanes are independent, so each y[i] must be bit-identical to the same x through one
      // big aligned call, whatever the size, offset or placement; and within 2 ulp of e^x.
      std::vector<T> want(n);
      xfmr::simd::exp<Isa, T>(x0.data(), want.data(), n);
      long far = 0;
      for (std::size_t i = 0; i < n; ++i) far += !(ulp_error(want[i], reference_exp(x0[i])) <= 2.0);
      CHECK(far == 0);
      for (const std::size_t ox : kOffsets) {
        for (const std::size_t oy : kOffsets) {
          INFO("offsets x " << ox << ", y " << oy);
          xfmr_test::Guarded<T> x(n, ox), y(n, oy);  // y is NaN-poisoned
          std::copy(x0.begin(), x0.end(), x.data());
          xfmr::simd::exp<Isa, T>(x.data(), y.data(), n);
          CHECK(std::equal(want.begin(), want.end(), y.data()));
          CHECK(std::equal(x0.begin(), x0.end(), x.data()));  // input untouched
          CHECK(y.guards_intact());
          CHECK(x.guards_intact());
        }
        INFO("in place, offset " << ox);
        xfmr_test::Guarded<T> xy(n, ox);
        std::copy(x0.begin(), x0.end(), xy.data());
        xfmr::simd::exp<Isa, T>(xy.data(), xy.data(), n);
        CHECK(std::equal(want.begin(), want.end(), xy.data()));
        CHECK(xy.guards_intact());
      }
      // Input and output ending at an inaccessible page: a read or write past n faults.
      xfmr_test::PageEnd<T> px(n), py(n);
      std::copy(x0.begin(), x0.end(), px.data());
      xfmr::simd::exp<Isa, T>(px.data(), py.data(), n);
      CHECK(std::equal(want.begin(), want.end(), py.data()));
      xfmr::simd::exp<Isa, T>(px.data(), px.data(), n);
      CHECK(std::equal(want.begin(), want.end(), px.data()));
    }
  });
}

// ---- exp_nonpositive --------------------------------------------------------------------------

namespace {

/// The documented bound of exp_nonpositive at x ≤ 0: ≤ 2 ulp where e^x is a normal number;
/// below, |y − e^x| < the smallest normal, y ≥ +0, and y = +0 exactly for x < flush_below.
template <typename T>
struct NonpositiveCheck {
  static constexpr T flush_below = std::is_same_v<T, float> ? T(-87.7) : T(-708.8);
  long failures = 0;
  double worst_ulp = 0, worst_at = 0;
  bool add(T x, T y) {
    const long double ref = reference_exp(x);
    bool ok;
    if (ref >= std::numeric_limits<T>::min()) {
      const double e = ulp_error(y, ref);
      ok = e <= 2.0;
      if (!(e <= worst_ulp)) worst_ulp = e, worst_at = double(x);
    } else {
      ok = y >= T(0) && !std::signbit(y) &&
           std::fabs(static_cast<long double>(y) - ref) < std::numeric_limits<T>::min() &&
           (x >= flush_below || y == T(0));
    }
    if (!ok) {
      if (failures < 5) UNSCOPED_INFO("x = " << double(x) << " gave " << double(y));
      ++failures;
    }
    return ok;
  }
};

/// Every ISA on xs (sorted by decreasing x): the bound above, non-increasing outputs, and every
/// ISA within 1 ulp of scalar (same algorithm, only FMA contraction may differ).
template <typename T>
void check_nonpositive(const std::vector<T>& xs) {
  std::vector<T> ys(xs.size());
  xfmr::simd::exp_nonpositive<scalar_isa, T>(xs.data(), ys.data(), xs.size());
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name << ", " << xs.size() << " points");
    std::vector<T> y(xs.size());
    xfmr::simd::exp_nonpositive<Isa, T>(xs.data(), y.data(), xs.size());
    NonpositiveCheck<T> c;
    long not_monotone = 0, disagree = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      c.add(xs[i], y[i]);
      if (i > 0 && !(y[i] <= y[i - 1])) ++not_monotone;
      const long double ref = reference_exp(xs[i]);
      if (!(std::fabs(static_cast<long double>(y[i]) - ys[i]) <= ulp_at<T>(ref))) ++disagree;
    }
    INFO("worst " << c.worst_ulp << " ulp at x = " << c.worst_at);
    CHECK(c.failures == 0);
    CHECK(not_monotone == 0);
    CHECK(disagree == 0);
  });
}

}  // namespace

// The bound of exp_nonpositive (NonpositiveCheck): <= 2 ulp where e^x is normal, < FLT_MIN
// below, +0 below -87.7.
TEST_CASE("exp_nonpositive<float> on a stride sweep of [-104, 0] and every float of [-88, -87]",
          "[simd][exp][exp_nonpositive]") {
  // x decreasing from −0 through the normal range, the band n = −126 (a subnormal result) and the
  // flush, down to −104 (exp's own +0): a prime stride over the bit patterns, then every float of
  // [−88, −87] (131 073 points) where the behaviour changes.
  constexpr std::uint32_t kStride = 797;
  const std::uint32_t end = static_cast<std::uint32_t>(bits_of(-104.0f));
  std::vector<float> xs;
  for (std::uint32_t b = 0x80000000u; b <= end; b += kStride) xs.push_back(float_from_bits(b));
  xs.push_back(-104.0f);
  check_nonpositive(xs);
  std::vector<float> band;
  for (float x = -87.0f; x >= -88.0f; x = std::nextafter(x, -100.0f)) band.push_back(x);
  check_nonpositive(band);
}

// As for float: <= 2 ulp where e^x is normal, < DBL_MIN below, +0 below -708.8.
TEST_CASE("exp_nonpositive<double> at random points of [-746, 0] and small magnitudes",
          "[simd][exp][exp_nonpositive]") {
  auto rng = xfmr_test::make_rng(205);
  std::vector<double> xs;
  std::uniform_real_distribution<double> u(-746.0, 0.0), band(-709.5, -708.0), e(-60.0, 9.5);
  for (int i = 0; i < 400000; ++i) xs.push_back(u(rng));
  for (int i = 0; i < 100000; ++i) xs.push_back(band(rng));
  for (int i = 0; i < 100000; ++i) xs.push_back(-std::exp2(e(rng)));
  xs.push_back(-0.0);
  xs.push_back(-708.8);
  xs.push_back(-746.0);
  std::sort(xs.begin(), xs.end(), [](double a, double b) { return a > b; });
  check_nonpositive(xs);
}

TEMPLATE_TEST_CASE("exp_nonpositive special values: -inf gives +0, NaN gives NaN, x >= 0 gives 1",
                   "[simd][exp][exp_nonpositive]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T big = std::numeric_limits<T>::max();
  std::vector<T> xs;
  std::vector<int> kind;  // 0 NaN, 1 exactly 1, 2 exactly +0
  for (int rep = 0; rep < 13; ++rep) {  // 13 repetitions: every value lands in every lane
    for (const T v : {nan, -nan}) xs.push_back(v), kind.push_back(0);
    for (const T v : {T(0), T(-0.0), std::numeric_limits<T>::denorm_min(), T(1e-30), T(1), T(88),
                      T(1e30), big, inf})
      xs.push_back(v), kind.push_back(1);
    for (const T v : {-inf, -big, T(-1e30), T(-2000), T(-800), std::is_same_v<T, float> ? T(-88) : T(-709)})
      xs.push_back(v), kind.push_back(2);
  }
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name);
    std::vector<T> y(xs.size(), T(42));
    xfmr::simd::exp_nonpositive<Isa, T>(xs.data(), y.data(), xs.size());
    long bad = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const bool ok = kind[i] == 0   ? std::isnan(y[i])
                      : kind[i] == 1 ? y[i] == T(1)
                                     : (y[i] == 0 && !std::signbit(y[i]));
      if (!ok) {
        ++bad;
        UNSCOPED_INFO("x = " << xs[i] << " gave " << y[i]);
      }
    }
    CHECK(bad == 0);
  });
}

TEMPLATE_TEST_CASE("exp_nonpositive writes every y[i], i < n, and nothing else",
                   "[simd][exp][exp_nonpositive]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(206);
  std::uniform_real_distribution<double> u(std::is_same_v<T, float> ? -100.0 : -720.0, 0.0);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      INFO("n " << n);
      std::vector<T> x0(n);
      for (auto& v : x0) v = T(u(rng));
      std::vector<T> y(n);
      xfmr::simd::exp_nonpositive<Isa, T>(x0.data(), y.data(), n);
      NonpositiveCheck<T> c;
      for (std::size_t i = 0; i < n; ++i) c.add(x0[i], y[i]);
      CHECK(c.failures == 0);
      xfmr_test::check_placement(
          x0, n,
          [&](const T* x, T* out) {
            xfmr::simd::exp_nonpositive<Isa, T>(x, out, n);
            return T(0);
          },
          true);
    }
  });
}

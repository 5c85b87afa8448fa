// SPDX-License-Identifier: MIT
// simd::erf / simd::erfc (simd/erf.hpp) and the activation functors GeluErf, GeluTanh, Silu, Relu
// through simd::activation_row (simd/activation.hpp) against long-double references
// (reference/activation.hpp), on every ISA compiled and supported by the CPU, float and double:
// the whole range (float: a stride sweep over the bit patterns of every finite float, subnormals
// included; double: uniform, log-uniform magnitudes from 2^-1074 to 2^1023, both signs), the
// documented error bounds, ±0, ±inf, NaN, and the row-kernel contract (misalignment, in place,
// masked tails, nothing past the end touched).
//
// Error measure: |y − f(x)| / ulp(RN_T(f(x))), f(x) in long double (64-bit significand), ulp()
// the spacing of T at the correctly rounded reference (denorm_min in the subnormal range).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/activation.hpp>
#include <xfmr/simd/erf.hpp>

#include "reference/activation.hpp"
#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/random.hpp"

namespace simd = xfmr::simd;
using xfmr::Index;

namespace {

template <typename T>
long double ulp_at(long double ref) {
  const T r = static_cast<T>(ref);
  if (!(std::fabs(r) >= std::numeric_limits<T>::min())) return std::numeric_limits<T>::denorm_min();
  return std::ldexp(1.0L, std::ilogb(r) - (std::numeric_limits<T>::digits - 1));
}

/// Worst error relative to its bound; NaN, or a point over its bound, counts as a failure.
struct Worst {
  double ratio = 0, err = 0, bound = 0, at = 0;
  long failures = 0;
  void add(double e, double b, double x) {
    if (!(e <= b)) ++failures;
    const double r = b > 0 ? e / b : (e > 0 ? std::numeric_limits<double>::infinity() : 0.0);
    if (!(r <= ratio)) {
      ratio = r;
      err = e;
      bound = b;
      at = x;
    }
  }
};

// Under ASan (-O0, every access checked) the sweeps take 4× fewer points: same range, coarser.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kThin = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int kThin = 4;
#else
constexpr int kThin = 1;
#endif
#else
constexpr int kThin = 1;
#endif

/// Inputs over the whole range of T (finite values; specials have their own test).
template <typename T>
std::vector<T> whole_range(std::uint64_t salt) {
  std::vector<T> xs;
  auto rng = xfmr_test::make_rng(salt);
  if constexpr (std::is_same_v<T, float>) {
    // Every 7919th bit pattern of each sign up to FLT_MAX: ~540000 floats, all exponents
    // (subnormals included) and all low mantissa bits.
    constexpr std::uint32_t kStride = 7919 * kThin, kMaxBits = 0x7f7fffffu;
    for (std::uint32_t b = 0; b <= kMaxBits - kStride; b += kStride)
      for (const std::uint32_t sign : {0u, 0x80000000u}) {
        const std::uint32_t bits = b | sign;
        float x;
        std::memcpy(&x, &bits, sizeof x);
        xs.push_back(x);
      }
    std::uniform_real_distribution<double> u(-12.0, 12.0);  // the busy range, densely
    for (int i = 0; i < 100000 / kThin; ++i) xs.push_back(static_cast<float>(u(rng)));
  } else {
    std::uniform_real_distribution<double> u(-40.0, 40.0), e(-1074.0, 1023.0), s(-8.0, 8.0);
    for (int i = 0; i < 100000 / kThin; ++i) xs.push_back(u(rng));
    for (int i = 0; i < 40000 / kThin; ++i) {
      xs.push_back(std::copysign(std::exp2(e(rng)), i % 2 ? 1.0 : -1.0));
      xs.push_back(std::copysign(std::exp2(s(rng)), i % 2 ? 1.0 : -1.0));
    }
    xs.push_back(std::numeric_limits<double>::denorm_min());
    xs.push_back(-std::numeric_limits<double>::denorm_min());
    xs.push_back(std::numeric_limits<double>::max());
    xs.push_back(-std::numeric_limits<double>::max());
  }
  return xs;
}

/// Runs kernel<Isa>(x, y, n) on every ISA and checks |y − ref(x)| ≤ bound(x) ulp at every point.
template <typename T, class Kernel, class Ref, class Bound>
void check_range(const std::vector<T>& xs, Kernel kernel, Ref ref, Bound bound) {
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    std::vector<T> y(xs.size());
    kernel(Isa{}, xs.data(), y.data(), static_cast<Index>(xs.size()));
    Worst w;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const long double r = ref(static_cast<long double>(xs[i]));
      const double e = static_cast<double>(std::fabs(static_cast<long double>(y[i]) - r) /
                                           ulp_at<T>(r));
      // scalar_isa's fmadd is one FMA only where the target has FMA (else a·b + c, two
      // roundings per Horner step): +2 ulp of slack.
      const double slack = std::is_same_v<Isa, simd::scalar_isa> ? 2.0 : 0.0;
      w.add(e, bound(static_cast<double>(xs[i])) + slack, static_cast<double>(xs[i]));
    }
    INFO("isa " << Isa::name << ", " << xs.size() << " points: worst " << w.err << " ulp (bound "
                << w.bound << ") at x = " << w.at << "; " << w.failures
                << " points over their bound");
    CHECK(w.failures == 0);
  });
}

template <class F>
auto activation_kernel(F f) {
  return [f](auto isa, const auto* x, auto* y, Index n) {
    using Isa = decltype(isa);
    simd::activation_row<Isa>(f, x, y, n);
  };
}

}  // namespace

TEMPLATE_TEST_CASE("erf and erfc over the whole range: within 5 ulp with FMA (float erf: 3; "
                   "double: relative error <= 1.1e-15), +2 where scalar_isa's a*b + c is not "
                   "contracted",
                   "[simd][activation][erf]", float, double) {
  using T = TestType;
  const auto xs = whole_range<T>(301);
  const double bound = 5.0;
  // float erf: x + x·A(x²) and 1 − erfc (erfc < 0.48 there, so its error halves): 2.3 ulp worst
  // over every third float up to 16 (scripts/fit_erf_float.py's forms; erfc 4.8 there).
  const double erf_bound = std::is_same_v<T, float> ? 3.0 : bound;
  auto erf_kernel = [](auto isa, const T* x, T* y, Index n) {
    simd::erf<decltype(isa)>(x, y, static_cast<std::size_t>(n));
  };
  auto erfc_kernel = [](auto isa, const T* x, T* y, Index n) {
    simd::erfc<decltype(isa)>(x, y, static_cast<std::size_t>(n));
  };
  SECTION("erf") {
    check_range<T>(xs, erf_kernel, [](long double x) { return std::erf(x); },
                   [&](double) { return erf_bound; });
  }
  SECTION("erfc (relative accuracy in the tail, down to the smallest normal result)") {
    // Below FLT_MIN / DBL_MIN the result is subnormal: a few roundings at the subnormal spacing.
    check_range<T>(xs, erfc_kernel, [](long double x) { return std::erfc(x); },
                   [&](double) { return bound; });
  }
}

TEMPLATE_TEST_CASE("erf and erfc special values: +-0, +-inf, NaN, the saturated tails",
                   "[simd][activation][erf]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> xs = {T(0), -T(0), inf, -inf, nan, -nan, T(30), T(-30),
                             std::numeric_limits<T>::max(), -std::numeric_limits<T>::max()};
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name);
    std::vector<T> e(xs.size()), c(xs.size());
    simd::erf<Isa>(xs.data(), e.data(), xs.size());
    simd::erfc<Isa>(xs.data(), c.data(), xs.size());
    CHECK((e[0] == 0 && !std::signbit(e[0])));
    CHECK((e[1] == 0 && std::signbit(e[1])));
    CHECK(c[0] == 1);
    CHECK(c[1] == 1);
    CHECK(e[2] == 1);
    CHECK(e[3] == -1);
    CHECK(c[2] == 0);
    CHECK(c[3] == 2);
    CHECK(std::isnan(e[4]));
    CHECK(std::isnan(e[5]));
    CHECK(std::isnan(c[4]));
    CHECK(std::isnan(c[5]));
    CHECK(e[6] == 1);
    CHECK(e[7] == -1);
    CHECK(c[6] == 0);
    CHECK(c[7] == 2);
    CHECK(e[8] == 1);
    CHECK(e[9] == -1);
    CHECK(c[8] == 0);
    CHECK(c[9] == 2);
  });
}

// The activations' bounds grow with the conditioning of e^{t} to the rounding of its argument t
// (x/√2 squared for the erf form, 2u for the tanh form, x for SiLU): an absolute error ε·|t| in
// t is a relative error ε·|t| in the result, whatever the formula.
TEMPLATE_TEST_CASE("GELU (erf form) over the whole range: within 8 ulp (float: 6; 32 where "
                   "erfc(-x/sqrt2) is subnormal but the result is not)",
                   "[simd][activation][gelu]", float, double) {
  using T = TestType;
  check_range<T>(whole_range<T>(302), activation_kernel(simd::GeluErf{}), xfmr_ref::gelu_erf,
                 [](double x) {
                   // erfc(−x/√2) < the smallest normal from x ≈ −37.5 (double) / −13 (float):
                   // a subnormal intermediate, then × x/2 brings the result back up.
                   const double edge = std::is_same_v<T, float> ? -13.0 : -37.5;
                   // float: 5.5 ulp worst over every third float up to 16 (both signs).
                   return x < edge ? 32.0 : (std::is_same_v<T, float> ? 6.0 : 8.0);
                 });
}

TEMPLATE_TEST_CASE("GELU (tanh form) over the whole range: within 6 + 4|2u| ulp",
                   "[simd][activation][gelu]", float, double) {
  using T = TestType;
  check_range<T>(whole_range<T>(303), activation_kernel(simd::GeluTanh{}), xfmr_ref::gelu_tanh,
                 [](double x) {
                   const double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
                   return 6.0 + 8.0 * std::fabs(u);
                 });
}

TEMPLATE_TEST_CASE("SiLU over the whole range: within 4 + |x| ulp", "[simd][activation][silu]",
                   float, double) {
  using T = TestType;
  check_range<T>(whole_range<T>(304), activation_kernel(simd::Silu{}), xfmr_ref::silu,
                 [](double x) { return 4.0 + std::fabs(x); });
}

TEMPLATE_TEST_CASE("ReLU through activation_row is exact", "[simd][activation][relu]", float,
                   double) {
  using T = TestType;
  check_range<T>(whole_range<T>(305), activation_kernel(simd::Relu{}), xfmr_ref::relu,
                 [](double) { return 0.0; });
}

TEST_CASE("The tanh-form reference equals HF's formula 0.5x(1 + tanh(u)) where that does not "
          "cancel",
          "[simd][activation][gelu]") {
  for (double x = -3.0; x <= 8.0; x += 0.01) {
    const long double a = xfmr_ref::gelu_tanh(x), b = xfmr_ref::gelu_tanh_textbook(x);
    INFO("x = " << x);
    const double tol = 1e-16 * (std::fabs(static_cast<double>(a)) + 1e-3);
    CHECK(static_cast<double>(std::fabs(a - b)) <= tol);
  }
}

TEMPLATE_TEST_CASE("Activations at +-0, +-inf and NaN: f(+-0) = +-0, f(+inf) = +inf, f(-inf) = "
                   "-0 (GELU, SiLU), NaN propagates",
                   "[simd][activation]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T specials[] = {T(0), -T(0), inf, -inf, nan, -nan, -std::numeric_limits<T>::max(),
                        std::numeric_limits<T>::max()};
  // Seven copies (56 values): every step of activation_row (two vectors, one, the tail) sees them.
  std::vector<T> xs;
  for (int copy = 0; copy < 7; ++copy)
    xs.insert(xs.end(), std::begin(specials), std::end(specials));
  auto check = [&](const char* name, auto f) {
    xfmr_test::for_each_isa([&](auto isa) {
      using Isa = decltype(isa);
      std::vector<T> y(xs.size());
      simd::activation_row<Isa>(f, xs.data(), y.data(), static_cast<Index>(xs.size()));
      for (std::size_t i = 0; i < xs.size(); i += 8) {
        INFO(name << ", isa " << Isa::name << ", values " << i << "..." << i + 7);
        CHECK((y[i] == 0 && !std::signbit(y[i])));
        CHECK((y[i + 1] == 0 && std::signbit(y[i + 1])));
        CHECK(y[i + 2] == inf);
        CHECK(y[i + 3] == 0);
        CHECK(std::isnan(y[i + 4]));
        CHECK(std::isnan(y[i + 5]));
        CHECK(y[i + 6] == 0);
        CHECK(y[i + 7] == std::numeric_limits<T>::max());
      }
    });
  };
  check("gelu_erf", simd::GeluErf{});
  check("gelu_tanh", simd::GeluTanh{});
  check("silu", simd::Silu{});
}

TEMPLATE_TEST_CASE("activation_row keeps the kernel contract: any misalignment, in place, masked "
                   "tails, nothing past the end touched",
                   "[simd][activation]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(306);
  auto check = [&](const char* name, auto f) {
    xfmr_test::for_each_isa([&](auto isa) {
      using Isa = decltype(isa);
      for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
        INFO(name << ", isa " << Isa::name << ", n = " << n);
        const auto x0 = xfmr_test::uniform_vector<T>(rng, n, -6.0, 6.0);
        xfmr_test::check_placement<T>(
            x0, n,
            [&](const T* x, T* y) {
              simd::activation_row<Isa>(f, x, y, static_cast<Index>(n));
              return T(0);
            },
            true);
      }
    });
  };
  check("gelu_erf", simd::GeluErf{});
  check("gelu_tanh", simd::GeluTanh{});
  check("silu", simd::Silu{});
  check("relu", simd::Relu{});
}

TEMPLATE_TEST_CASE("activation_row's two interleaved vectors per step give the bits of the "
                   "functor applied one vector at a time",
                   "[simd][activation]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(307);
  auto check = [&](const char* name, auto f) {
    xfmr_test::for_each_isa([&](auto isa) {
      using Isa = decltype(isa);
      using V = simd::Vec<T, Isa>;
      const std::size_t n = 16 * V::lanes;
      // The busy range and beyond, with the far tails and specials mixed in.
      auto x = xfmr_test::uniform_vector<T>(rng, n, -20.0, 20.0);
      const T inf = std::numeric_limits<T>::infinity();
      const T extremes[] = {std::numeric_limits<T>::quiet_NaN(), inf, -inf, T(0), -T(0), T(-1e4),
                            T(1e-30)};
      for (std::size_t i = 0; i < n; i += 5) x[i] = extremes[(i / 5) % 7];
      std::vector<T> got(n), want(n);
      simd::activation_row<Isa>(f, x.data(), got.data(), static_cast<Index>(n));
      for (std::size_t i = 0; i < n; i += V::lanes)
        V::store(want.data() + i, f.template operator()<V>(V::load(x.data() + i)));
      INFO(name << ", isa " << Isa::name);
      CHECK(std::memcmp(got.data(), want.data(), n * sizeof(T)) == 0);
    });
  };
  check("gelu_erf", simd::GeluErf{});
  check("gelu_tanh", simd::GeluTanh{});
  check("silu", simd::Silu{});
  check("relu", simd::Relu{});
}

// SPDX-License-Identifier: MIT
// The GEMM engine with a bf16 B (simd/gemm_bf16.hpp) on every ISA compiled and supported, against
// naive long-double GEMMs (reference/gemm.hpp):
//   - against the exact product of the fp32 operands with the bound derived in gemm_bf16.hpp,
//     [(1 + 2u_b + u_b²)(1 + γ_n) − 1]·scale (+ the flush-to-zero term), u_b = 2^-8;
//   - against the exact product of the operands as the kernel rounds them (B to bf16; A too on
//     the vdpbf16ps path) with the fp32 summation bound γ_n·scale alone: a truncating instead of
//     rounding conversion, a lost or doubled pair, a wrong pair order or panel offset all give
//     errors far above it;
// M, N, K around the tile and blocks (1, mr±1, nr±1, k odd/even, kc±1, past mc), A row-major
// and transposed, misaligned, B (k×n) and (n×k) from float (rounded) and from bf16 (as stored:
// the same packed bits), α ≠ 1, β = 0 with NaN in C, β ≠ 0, bias+ReLU and residual epilogues,
// ldc > n with canaries that must stay untouched; each case with every Bf16Kernel (DotProduct,
// Widen, Auto) on every ISA, the operand rounding of the reference following the kernel that
// gemm_bf16_resolve names (running the other kernel fails the rounded-operand bound).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/activation.hpp>
#include <xfmr/simd/gemm_bf16.hpp>

#include "reference/gemm.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"

using xfmr::bf16;
using xfmr::Index;
namespace simd = xfmr::simd;

namespace {

constexpr float kCanary = -7777.5f;

struct Case {
  Index m, n, k;
  bool trans_a, trans_b, from_bf16;
  int epi;  // 0 none, 1 bias + relu, 2 residual
  double alpha, beta;
};

template <class Isa>
void check_case(std::mt19937_64& rng, const Case& cs, simd::Bf16Kernel kernel) {
  const Index m = cs.m, n = cs.n, k = cs.k, pad = 3;
  INFO(Isa::name << " kernel=" << simd::to_string(kernel) << " m=" << m << " n=" << n << " k=" << k << " trans_a=" << cs.trans_a
                 << " trans_b=" << cs.trans_b << " from_bf16=" << cs.from_bf16 << " epi="
                 << cs.epi << " alpha=" << cs.alpha << " beta=" << cs.beta);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const Index lda = (cs.trans_a ? m : k) + pad, ldb = (cs.trans_b ? k : n) + pad, ldc = n + pad;
  std::vector<float> a(static_cast<std::size_t>((cs.trans_a ? k : m) * lda + 1), kCanary);
  std::vector<float> b(static_cast<std::size_t>((cs.trans_b ? n : k) * ldb), kCanary);
  for (auto& v : a) v = u(rng) * 4.f;
  for (auto& v : b) v = u(rng);
  // B as the kernel holds it: rounded to bf16 (float values), and the bf16 source itself.
  std::vector<bf16> bh(b.size());
  std::vector<float> br(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) {
    bh[i] = xfmr::to_bf16(b[i]);
    br[i] = xfmr::to_float(bh[i]);
  }
  const float* ap = a.data() + 1;  // misaligned
  const Index rsa = cs.trans_a ? 1 : lda, csa = cs.trans_a ? lda : 1;
  std::vector<float> ar(a.size());  // A as the vdpbf16ps path rounds it
  const bool dot = simd::gemm_bf16_resolve<Isa>(kernel) == simd::Bf16Kernel::DotProduct;
  for (std::size_t i = 0; i < a.size(); ++i)
    ar[i] = dot ? xfmr::to_float(xfmr::to_bf16(a[i])) : a[i];

  std::vector<float> c(static_cast<std::size_t>(m * ldc + 8), kCanary), res(c.size());
  std::vector<float> bias(static_cast<std::size_t>(n));
  for (auto& v : res) v = u(rng);
  for (auto& v : bias) v = u(rng);
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j)
      c[static_cast<std::size_t>(i * ldc + j)] =
          cs.beta == 0.0 ? std::numeric_limits<float>::quiet_NaN() : u(rng);
  const std::vector<float> c0 = c;

  std::vector<bf16> packed(static_cast<std::size_t>(simd::packed_b_bf16_size<Isa>(k, n)) + 1);
  bf16* pk = packed.data() + 1;  // misaligned
  if (cs.from_bf16) {
    simd::pack_b_bf16<Isa>(k, n, simd::GemmB<bf16>{bh.data(), ldb, cs.trans_b}, pk);
    std::vector<bf16> again(packed.size());
    simd::pack_b_bf16<Isa>(k, n, simd::GemmB<float>{b.data(), ldb, cs.trans_b}, again.data() + 1);
    for (std::size_t i = 1; i < packed.size(); ++i) REQUIRE(packed[i] == again[i]);
  } else {
    simd::pack_b_bf16<Isa>(k, n, simd::GemmB<float>{b.data(), ldb, cs.trans_b}, pk);
  }
  const auto alpha = static_cast<float>(cs.alpha), beta = static_cast<float>(cs.beta);
  const simd::GemmA<float> ga{ap, rsa, csa};
  const simd::PackedB<bf16> gb{pk, k, n};
  switch (cs.epi) {
    case 0:
      if (kernel == simd::Bf16Kernel::Auto)
        simd::gemm<Isa>(m, n, k, alpha, ga, gb, beta, c.data(), ldc);  // the default: Auto
      else
        simd::gemm<Isa>(m, n, k, alpha, ga, gb, beta, c.data(), ldc, simd::NoEpilogue{},
                        simd::GemmPart::Full, kernel);
      break;
    case 1:
      simd::gemm<Isa>(m, n, k, alpha, ga, gb, beta, c.data(), ldc,
                      simd::chain(simd::BiasColumns<float>{bias.data()},
                                  simd::activation(simd::Relu{})),
                      simd::GemmPart::Full, kernel);
      break;
    default:
      simd::gemm<Isa>(m, n, k, alpha, ga, gb, beta, c.data(), ldc,
                      simd::AddResidual<float>{res.data(), ldc}, simd::GemmPart::Full, kernel);
      break;
  }

  std::vector<long double> exact, scale, rounded, rscale;
  xfmr_ref::gemm(m, n, k, cs.alpha, ap, rsa, csa, cs.trans_b, b.data(), ldb, cs.beta, c0.data(),
                 ldc, exact, scale);
  xfmr_ref::gemm(m, n, k, cs.alpha, ar.data() + 1, rsa, csa, cs.trans_b, br.data(), ldb, cs.beta,
                 c0.data(), ldc, rounded, rscale);
  const long double ub = std::ldexp(1.0L, -8), u32 = std::ldexp(1.0L, -24);
  const Index kc = dot ? simd::GemmBf16Shape<Isa>::kc : simd::GemmBf16WidenShape<Isa>::kc;
  const long double nadd = static_cast<long double>(k + (k + kc - 1) / kc + 2 + 2);  // + epilogue
  const long double gamma = nadd * u32 / (1 - nadd * u32);
  const long double rel_exact = (1 + 2 * ub + ub * ub) * (1 + gamma) - 1;
  const long double ftz = 2 * static_cast<long double>(k) * std::ldexp(1.0L, -126) * 8;
  long double worst_exact = 0, worst_rounded = 0;
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j) {
      const auto e = static_cast<std::size_t>(i * n + j);
      long double add = 0, addscale = 0;
      if (cs.epi == 1) add = bias[static_cast<std::size_t>(j)];
      if (cs.epi == 2) add = res[static_cast<std::size_t>(i * ldc + j)];
      addscale = std::fabs(add);
      long double want_exact = exact[e] + add, want_rounded = rounded[e] + add;
      if (cs.epi == 1) {
        want_exact = std::max(want_exact, 0.0L);
        want_rounded = std::max(want_rounded, 0.0L);
      }
      const long double got = c[static_cast<std::size_t>(i * ldc + j)];
      REQUIRE(std::isfinite(got));
      const long double d_exact = std::fabs(got - want_exact), d_rounded = std::fabs(got - want_rounded);
      const long double b_exact = rel_exact * (scale[e] + addscale) + ftz;
      const long double b_rounded = gamma * (rscale[e] + addscale) + ftz;
      worst_exact = std::max(worst_exact, d_exact / b_exact);
      worst_rounded = std::max(worst_rounded, d_rounded / b_rounded);
      if (d_exact > b_exact || d_rounded > b_rounded) {
        INFO("i=" << i << " j=" << j << " got=" << static_cast<double>(got)
                  << " exact=" << static_cast<double>(want_exact) << " (bound "
                  << static_cast<double>(b_exact) << ") rounded-operands="
                  << static_cast<double>(want_rounded) << " (bound "
                  << static_cast<double>(b_rounded) << ")");
        REQUIRE(d_exact <= b_exact);
        REQUIRE(d_rounded <= b_rounded);
      }
    }
  // nothing outside C(m×n) written
  for (Index i = 0; i < m; ++i)
    for (Index j = n; j < ldc; ++j) REQUIRE(c[static_cast<std::size_t>(i * ldc + j)] == kCanary);
  for (std::size_t i = static_cast<std::size_t>(m * ldc); i < c.size(); ++i)
    REQUIRE(c[i] == kCanary);
}

}  // namespace

TEST_CASE("gemm bf16: sizes around the tile and the blocks, against the derived bound",
          "[simd][gemm][bf16]") {
  auto rng = xfmr_test::make_rng(0xb16);
  std::vector<Case> cases;
  const Index shapes[][3] = {{1, 1, 1},   {1, 17, 3},   {5, 64, 2},   {6, 63, 7},
                             {7, 65, 16}, {13, 15, 255}, {12, 33, 256}, {3, 129, 257},
                             {150, 70, 31}, {301, 20, 9},  {9, 130, 513}, {2, 8, 0}};
  int variant = 0;
  for (const auto& s : shapes) {
    for (int v = 0; v < 3; ++v, ++variant) {
      Case cs{s[0], s[1], s[2], (variant % 4) == 3, (variant % 2) == 0, (variant % 3) == 1,
              variant % 3, 1.0, 0.0};
      if (variant % 5 == 2) cs.alpha = -0.75;
      if (variant % 4 == 1) cs.beta = 0.5;
      cases.push_back(cs);
    }
  }
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const auto kernel :
         {simd::Bf16Kernel::DotProduct, simd::Bf16Kernel::Widen, simd::Bf16Kernel::Auto})
      for (const Case& cs : cases) check_case<Isa>(rng, cs, kernel);
  });
}

TEST_CASE("gemm bf16: the kernel choice (gemm_bf16_resolve) and its effect", "[simd][gemm][bf16]") {
  using simd::Bf16Kernel;
  CHECK(std::string(simd::to_string(Bf16Kernel::Auto)) == "auto");
  CHECK(std::string(simd::to_string(Bf16Kernel::DotProduct)) == "dot_product");
  CHECK(std::string(simd::to_string(Bf16Kernel::Widen)) == "widen");
  auto rng = xfmr_test::make_rng(0xb17);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO(Isa::name);
    const bool has_dot = simd::gemm_bf16_dot_v<Isa>;
    CHECK(has_dot == (std::is_same_v<Isa, simd::avx512_isa> && XFMR_HAS_AVX512_BF16));
    CHECK(simd::gemm_bf16_resolve<Isa>(Bf16Kernel::Widen) == Bf16Kernel::Widen);
    CHECK(simd::gemm_bf16_resolve<Isa>(Bf16Kernel::DotProduct) ==
          (has_dot ? Bf16Kernel::DotProduct : Bf16Kernel::Widen));
#if defined(XFMR_BF16_WIDEN)
    const bool auto_dot = false;
#else
    const bool auto_dot = has_dot && __builtin_cpu_is("amd");
#endif
    CHECK(simd::gemm_bf16_resolve<Isa>(Bf16Kernel::Auto) ==
          (auto_dot ? Bf16Kernel::DotProduct : Bf16Kernel::Widen));
    // One packed B serves both kernels; where both exist they differ (A rounded to bf16 or not)
    // and each is the same bits on every call.
    const Index m = 37, n = 70, k = 301;
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    std::vector<bf16> packed(static_cast<std::size_t>(simd::packed_b_bf16_size<Isa>(k, n)));
    simd::pack_b_bf16<Isa>(k, n, simd::GemmB<float>{b.data(), n, false}, packed.data());
    auto run = [&](Bf16Kernel kernel) {
      std::vector<float> c(static_cast<std::size_t>(m * n));
      simd::gemm<Isa>(m, n, k, 1.0f, simd::GemmA<float>{a.data(), k, 1},
                      simd::PackedB<bf16>{packed.data(), k, n}, 0.0f, c.data(), n,
                      simd::NoEpilogue{}, simd::GemmPart::Full, kernel);
      return c;
    };
    const auto dot = run(Bf16Kernel::DotProduct), widen = run(Bf16Kernel::Widen);
    CHECK(run(Bf16Kernel::DotProduct) == dot);
    CHECK(run(Bf16Kernel::Widen) == widen);
    CHECK(run(Bf16Kernel::Auto) == (auto_dot ? dot : widen));
    CHECK((dot != widen) == has_dot);
  });
}

TEST_CASE("gemm bf16: pack_b_bf16 layout (pairs along k, zero padding)", "[simd][gemm][bf16]") {
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    constexpr Index nr = simd::GemmBf16Shape<Isa>::nr;
    const Index k = 5, n = nr + 1;
    std::vector<float> b(static_cast<std::size_t>(k * n));
    for (Index p = 0; p < k; ++p)
      for (Index j = 0; j < n; ++j) b[static_cast<std::size_t>(p * n + j)] = float(1 + p * 1000 + j);
    std::vector<bf16> out(static_cast<std::size_t>(simd::packed_b_bf16_size<Isa>(k, n)));
    REQUIRE(out.size() == static_cast<std::size_t>(6 * 2 * nr));
    simd::pack_b_bf16<Isa>(k, n, simd::GemmB<float>{b.data(), n, false}, out.data());
    for (Index q = 0; q < 2; ++q)
      for (Index p = 0; p < 6; ++p)
        for (Index j = 0; j < nr; ++j) {
          const Index col = q * nr + j;
          const float want = (p < k && col < n) ? xfmr::to_float(xfmr::to_bf16(
                                                      b[static_cast<std::size_t>(p * n + col)]))
                                                : 0.f;
          INFO(Isa::name << " q=" << q << " p=" << p << " j=" << j);
          REQUIRE(xfmr::to_float(out[static_cast<std::size_t>(q * 6 * nr + (p / 2) * 2 * nr +
                                                              2 * j + p % 2)]) == want);
        }
  });
}

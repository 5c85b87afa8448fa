// SPDX-License-Identifier: MIT
// simd/norm.hpp: layer_norm_row, rms_norm_row, l2_normalize_row on every ISA the build compiled
// and the CPU runs, against long-double references, with and without γ/β, a common offset,
// every tail, misaligned, in place, guards. (The norm layers are tested in tests/heads/.)
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/norm.hpp>

#include "support/isa_list.hpp"
#include "support/kernel_contract.hpp"
#include "support/random.hpp"

namespace {


enum class Kind { Layer, Rms, L2 };

/// The exact row in long double: y = γ(x − μ)/√(σ² + ε) + β, γx/√(mean x² + ε), s·x/max(‖x‖, ε).
template <typename T>
std::vector<long double> reference(Kind kind, const std::vector<T>& x, const T* g, const T* b,
                                   T eps, T scale) {
  const std::size_t n = x.size();
  long double mean = 0, ss = 0;
  for (const T v : x) mean += v;
  mean /= n;
  std::vector<long double> y(n);
  if (kind == Kind::Layer) {
    for (const T v : x) ss += (v - mean) * (v - mean);
    const long double r = 1 / std::sqrt(ss / n + eps);
    for (std::size_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * r * (g ? g[i] : 1) + (b ? b[i] : 0);
  } else {
    for (const T v : x) ss += static_cast<long double>(v) * v;
    const long double r = kind == Kind::Rms ? 1 / std::sqrt(ss / n + eps)
                                            : scale / std::max(std::sqrt(ss), (long double)eps);
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * r * (g && kind == Kind::Rms ? g[i] : 1);
  }
  return y;
}

template <typename T, class Isa>
void run(Kind kind, const T* x, T* y, std::size_t n, const T* g, const T* b, T eps, T scale) {
  switch (kind) {
    case Kind::Layer: xfmr::simd::layer_norm_row<Isa, T>(x, y, n, g, b, eps); break;
    case Kind::Rms: xfmr::simd::rms_norm_row<Isa, T>(x, y, n, g, eps); break;
    case Kind::L2: xfmr::simd::l2_normalize_row<Isa, T>(x, y, n, eps, scale); break;
  }
}

}  // namespace

// With and without gamma/beta, a common offset, every tail, placement.
TEMPLATE_TEST_CASE("layer_norm_row, rms_norm_row and l2_normalize_row against long double",
                   "[simd][norm]", float, double) {
  using T = TestType;
  const long double e = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(801);
  const T eps = T(1e-5), scale = T(1.5);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : xfmr_test::kernel_sizes<T, Isa>()) {
      if (n == 0) continue;  // the kernels need n >= 1
      const std::vector<T> g = xfmr_test::uniform_vector<T>(rng, n, 0.5, 2), b = xfmr_test::uniform_vector<T>(rng, n, -1, 1);
      for (const Kind kind : {Kind::Layer, Kind::Rms, Kind::L2}) {
        for (const double offset : {0.0, 100.0}) {
          for (const bool affine : {false, true}) {
            INFO("isa " << Isa::name << ", n " << n << ", kind " << int(kind) << ", offset "
                        << offset << ", affine " << affine);
            const std::vector<T> x0 = xfmr_test::uniform_vector<T>(rng, n, offset - 3, offset + 3);
            const T* gp = affine ? g.data() : nullptr;
            const T* bp = affine ? b.data() : nullptr;
            const auto ref = reference(kind, x0, gp, bp, eps, scale);
            std::vector<T> y(n);
            run<T, Isa>(kind, x0.data(), y.data(), n, gp, bp, eps, scale);
            // Scale of the outputs: |γ|·(|x − μ|/σ or |x|/rms) ≤ 2·√n, plus |β| ≤ 1. The row sums
            // carry n roundings; the offset (LayerNorm) is removed exactly by the shifted sums.
            long double mag = 0;
            for (const auto v : ref) mag = std::max(mag, std::fabs(v));
            const long double tol = (16 + n) * e * (mag + 1);
            long bad = 0;
            for (std::size_t i = 0; i < n; ++i) bad += !(std::fabs(y[i] - ref[i]) <= tol);
            CHECK(bad == 0);
            xfmr_test::check_placement(
                x0, n,
                [&](const T* x, T* out) {
                  run<T, Isa>(kind, x, out, n, gp, bp, eps, scale);
                  return T(0);
                },
                true);
          }
        }
      }
    }
  });
}

TEMPLATE_TEST_CASE("l2_normalize_row: zero rows stay zero, short rows are divided by eps",
                   "[simd][norm]", float, double) {
  using T = TestType;
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const std::size_t n : {std::size_t(1), std::size_t(5), std::size_t(19)}) {
      INFO("isa " << Isa::name << ", n " << n);
      std::vector<T> z(n, T(0)), y(n, T(7));
      xfmr::simd::l2_normalize_row<Isa, T>(z.data(), y.data(), n, T(1e-6), T(2));
      for (const T v : y) CHECK(v == T(0));
      std::vector<T> small(n, T(1e-9));
      xfmr::simd::l2_normalize_row<Isa, T>(small.data(), y.data(), n, T(1e-3), T(1));
      for (const T v : y) CHECK(v == Approx(1e-6).epsilon(1e-5));
    }
  });
}

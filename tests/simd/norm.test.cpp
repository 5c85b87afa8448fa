// SPDX-License-Identifier: MIT
// simd/norm.hpp: layer_norm_row, rms_norm_row, l2_normalize_row on every ISA the build compiled
// and the CPU runs, against long-double references, with and without γ/β, a common offset,
// every tail, misaligned, in place, guards. (The norm layers are tested in tests/heads/.)
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
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

// The row pipeline: strided rows, per-row γ/β, in place and out of place; the pad columns
// between rows (and the guards after the last) are never written.
TEMPLATE_TEST_CASE("layer_norm_rows and rms_norm_rows: strided rows against long double",
                   "[simd][norm]", float, double) {
  using T = TestType;
  const long double e = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(802);
  const T eps = T(1e-6);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    constexpr std::size_t W = xfmr::simd::Vec<T, Isa>::lanes;
    for (const std::size_t n : {std::size_t(1), W + 3, 8 * W, 8 * W + 5, 24 * W + 3,
                                std::size_t(768)}) {
      for (const std::size_t rows : {std::size_t(1), std::size_t(2), std::size_t(5)}) {
        for (const bool in_place : {false, true}) {
          for (const bool per_row : {false, true}) {
            INFO("isa " << Isa::name << ", n " << n << ", rows " << rows << ", in place "
                        << in_place << ", per-row γ/β " << per_row);
            const std::size_t xs = n + 3, ys = in_place ? xs : n + 1;
            const std::size_t ps = per_row ? n : 0;
            std::vector<T> g = xfmr_test::uniform_vector<T>(rng, rows * n, 0.5, 2);
            std::vector<T> b = xfmr_test::uniform_vector<T>(rng, rows * n, -1, 1);
            // Rows alternate between no offset (the folded form) and 1e3 (the centred form).
            std::vector<T> x0 = xfmr_test::uniform_vector<T>(rng, rows * xs, -2, 2);
            for (std::size_t r = 1; r < rows; r += 2)
              for (std::size_t i = 0; i < n; ++i) x0[r * xs + i] += T(1000);
            for (const bool layer : {true, false}) {
              xfmr_test::Guarded<T> x(rows * xs, 1), y(rows * ys, 3);
              for (std::size_t i = 0; i < rows * xs; ++i) x[i] = x0[i];
              T* out = in_place ? x.data() : y.data();
              if (!in_place)
                for (std::size_t i = 0; i < rows * ys; ++i) y[i] = T(-7);
              if (layer)
                xfmr::simd::layer_norm_rows<Isa, T>(x.data(), xs, out, ys, rows, n, g.data(),
                                                    b.data(), ps, eps);
              else
                xfmr::simd::rms_norm_rows<Isa, T>(x.data(), xs, out, ys, rows, n, g.data(), eps);
              long bad = 0, pad = 0;
              for (std::size_t r = 0; r < rows; ++r) {
                const std::vector<T> row(x0.begin() + r * xs, x0.begin() + r * xs + n);
                const T* gr = g.data() + (layer ? r * ps : 0);
                const auto ref = reference(layer ? Kind::Layer : Kind::Rms, row, gr,
                                           layer ? b.data() + r * ps : nullptr, eps, T(1));
                long double mag = 0;
                for (const auto v : ref) mag = std::max(mag, std::fabs(v));
                const long double tol = (16 + n) * e * (mag + 1);
                for (std::size_t i = 0; i < n; ++i)
                  bad += !(std::fabs(out[r * ys + i] - ref[i]) <= tol);
                for (std::size_t i = n; i < ys; ++i)
                  pad += !(out[r * ys + i] == (in_place ? x0[r * xs + i] : T(-7)));
              }
              CHECK(bad == 0);
              CHECK(pad == 0);
              CHECK(x.guards_intact());
              CHECK(y.guards_intact());
              // A row's bits do not depend on its place in the call (the row pipeline sums the
              // next row inside the pass over this one): each row equals the row normalised
              // alone, bit for bit (threads and batches cut rows anywhere).
              long moved = 0;
              for (std::size_t r = 0; r < rows; ++r) {
                std::vector<T> alone(n);
                if (layer)
                  xfmr::simd::layer_norm_row<Isa, T>(x0.data() + r * xs, alone.data(), n,
                                                     g.data() + r * ps, b.data() + r * ps, eps);
                else
                  xfmr::simd::rms_norm_row<Isa, T>(x0.data() + r * xs, alone.data(), n, g.data(),
                                                   eps);
                moved += std::memcmp(alone.data(), out + r * ys, n * sizeof(T)) != 0;
              }
              CHECK(moved == 0);
            }
          }
        }
      }
    }
  });
}

// The one-pass statistics about a shift far from the mean must fall back to the corrected
// two-pass sums: with m = 1e4 against values in [−1, 1], Σd² − (Σd)²/n would cancel every digit.
TEMPLATE_TEST_CASE("layer_norm_stats: a far shift falls back to the two-pass sums",
                   "[simd][norm]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(803);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using V = xfmr::simd::Vec<T, Isa>;
    const std::size_t n = 301;
    const std::vector<T> x = xfmr_test::uniform_vector<T>(rng, n, -1, 1);
    long double mean = 0, var = 0;
    for (const T v : x) mean += v;
    mean /= n;
    for (const T v : x) var += (v - mean) * (v - mean);
    var /= n;
    for (const T shift : {T(0), T(0.5), T(1e4), T(-3e5)}) {
      INFO("isa " << Isa::name << ", shift " << shift);
      T s, q;
      xfmr::simd::detail::shifted_sums<V>(x.data(), n, shift, s, q);
      const auto st = xfmr::simd::detail::layer_norm_stats<V>(x.data(), n, shift, s, q, T(0));
      const long double tol = 64 * n * std::numeric_limits<T>::epsilon();
      CHECK(std::fabs((static_cast<long double>(st.m) + st.delta) - mean) <= tol);
      CHECK(std::fabs(1 / (static_cast<long double>(st.r) * st.r) - var) <= tol * var);
    }
  });
}

// SPDX-License-Identifier: MIT
// Tests for sinusoidal_encoding (SPEC §3.1): closed form in both layouts, large positions,
// explicit positions, layouts as a permutation, strided output, errors.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/position/sinusoidal.hpp>

#include "reference/sinusoidal.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

namespace {

using xfmr::Index;
using xfmr::PositionVector;
using xfmr::RowMatrix;
using xfmr::SinusoidalLayout;

/// Largest |got − PE(positions[t])| over the matrix.
template <typename T>
double max_err(const RowMatrix<T>& got, const std::vector<long double>& positions,
               bool interleaved, long double base = 10000) {
  double m = 0;
  for (Index t = 0; t < got.rows(); ++t) {
    const auto pe = xfmr_ref::sinusoid(positions[t], got.cols(), interleaved, base);
    for (Index i = 0; i < got.cols(); ++i)
      m = std::max(m, static_cast<double>(std::fabs(got(t, i) - pe[i])));
  }
  return m;
}

/// Values are in [−1, 1]: rounding to T costs ε_T/2; the double angle p·ω_r is off by about
/// 4·2^−53·p (ω_r to a few ulp, one product), which matters only for double.
template <typename T>
double sin_tol(long double pmax) {
  return 2 * std::numeric_limits<T>::epsilon() +
         16 * (1 + static_cast<double>(pmax)) * std::ldexp(1.0, -53);
}

std::vector<long double> consecutive(Index pos0, Index n) {
  std::vector<long double> p;
  for (Index t = 0; t < n; ++t) p.push_back(static_cast<long double>(pos0 + t));
  return p;
}

}  // namespace

TEMPLATE_TEST_CASE("sinusoidal_encoding matches the closed form in each layout",
                   "[sinusoidal]", float, double) {
  using T = TestType;
  const SinusoidalLayout layout = GENERATE(SinusoidalLayout::Interleaved, SinusoidalLayout::Halves);
  const Index D = GENERATE(2, 6, 16, 64, 130);
  const bool inter = layout == SinusoidalLayout::Interleaved;
  CAPTURE(static_cast<int>(layout), D);

  RowMatrix<T> pe(37, D);
  pe.setConstant(std::numeric_limits<T>::quiet_NaN());
  xfmr::sinusoidal_encoding(pe, 0, layout);
  CHECK(max_err(pe, consecutive(0, 37), inter) <= sin_tol<T>(36));

  // Position 0: sin 0 = 0 and cos 0 = 1 exactly.
  for (Index r = 0; r < D / 2; ++r) {
    CHECK(pe(0, inter ? 2 * r : r) == T(0));
    CHECK(pe(0, inter ? 2 * r + 1 : D / 2 + r) == T(1));
  }
  // Spot check against the formula written out: PE[p, 2r] = sin(p·10000^(−2r/D)).
  const Index p = 29, r = D / 2 - 1;
  const long double angle = p * std::pow(10000.0L, -2.0L * r / D);
  CHECK(std::fabs(pe(p, inter ? 2 * r : r) - std::sin(angle)) <= sin_tol<T>(p));
  CHECK(std::fabs(pe(p, inter ? 2 * r + 1 : D / 2 + r) - std::cos(angle)) <= sin_tol<T>(p));

  SECTION("with an offset and another base") {
    RowMatrix<T> q(9, D);
    xfmr::sinusoidal_encoding(q, 500, layout, 777.0);
    CHECK(max_err(q, consecutive(500, 9), inter, 777) <= sin_tol<T>(508));
  }
}

TEMPLATE_TEST_CASE("sinusoidal_encoding stays exact at large positions", "[sinusoidal]", float,
                   double) {
  using T = TestType;
  const SinusoidalLayout layout = GENERATE(SinusoidalLayout::Interleaved, SinusoidalLayout::Halves);
  const bool inter = layout == SinusoidalLayout::Interleaved;
  const Index D = 64;

  // Float: ≤ 2e-7 absolute up to p = 10^6, where a float angle would be 0.06 rad off.
  RowMatrix<T> pe(8, D);
  xfmr::sinusoidal_encoding(pe, 1000000 - 7, layout);
  const double err = max_err(pe, consecutive(1000000 - 7, 8), inter);
  CHECK(err <= sin_tol<T>(1000000));
  if (std::is_same_v<T, float>) CHECK(err <= 2e-7);

  const PositionVector ids =
      (PositionVector(7) << 0, 1, 4095, 100000, 1000000, 999999, 31).finished();
  RowMatrix<T> at(7, D);
  xfmr::sinusoidal_encoding_at(at, ids, layout);
  std::vector<long double> pos(ids.data(), ids.data() + ids.size());
  const double err_at = max_err(at, pos, inter);
  CHECK(err_at <= sin_tol<T>(1000000));
  if (std::is_same_v<T, float>) CHECK(err_at <= 2e-7);
}

TEMPLATE_TEST_CASE("sinusoidal_encoding_at equals the consecutive form", "[sinusoidal]", float,
                   double) {
  using T = TestType;
  const SinusoidalLayout layout = GENERATE(SinusoidalLayout::Interleaved, SinusoidalLayout::Halves);
  const Index D = 18, n = 25, pos0 = 3000;
  RowMatrix<T> a(n, D), b(n, D);
  xfmr::sinusoidal_encoding(a, pos0, layout);
  PositionVector ids(n);
  for (Index t = 0; t < n; ++t) ids[t] = pos0 + t;
  xfmr::sinusoidal_encoding_at(b, ids, layout);
  CHECK(a == b);

  // Shuffled ids pick the matching rows.
  PositionVector rev = ids.reverse();
  xfmr::sinusoidal_encoding_at(b, rev, layout);
  CHECK(b == a.colwise().reverse());
}

TEMPLATE_TEST_CASE("Sinusoidal layouts hold the same values in another order", "[sinusoidal]",
                   float, double) {
  using T = TestType;
  const Index D = 22, n = 11;
  RowMatrix<T> inter(n, D), halves(n, D);
  xfmr::sinusoidal_encoding(inter, 40, SinusoidalLayout::Interleaved);
  xfmr::sinusoidal_encoding(halves, 40, SinusoidalLayout::Halves);
  for (Index r = 0; r < D / 2; ++r) {
    CHECK(inter.col(2 * r) == halves.col(r));               // sin
    CHECK(inter.col(2 * r + 1) == halves.col(D / 2 + r));   // cos
  }
}

TEMPLATE_TEST_CASE("sinusoidal_encoding writes strided rows and nothing else", "[sinusoidal]",
                   float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(3);
  RowMatrix<T> big = xfmr_test::random_matrix<T>(rng, 6, 20);
  const RowMatrix<T> before = big;
  xfmr::sinusoidal_encoding(big.middleCols(3, 12), 17, SinusoidalLayout::Halves);
  RowMatrix<T> want(6, 12);
  xfmr::sinusoidal_encoding(want, 17, SinusoidalLayout::Halves);
  CHECK(RowMatrix<T>(big.middleCols(3, 12)) == want);
  CHECK(big.leftCols(3) == before.leftCols(3));
  CHECK(big.rightCols(5) == before.rightCols(5));
  // Empty rows: nothing to do.
  RowMatrix<T> none(0, 8);
  REQUIRE_NOTHROW(xfmr::sinusoidal_encoding(none, 0));
}

TEMPLATE_TEST_CASE("sinusoidal_encoding rejects bad arguments with a message",
                   "[sinusoidal][errors]", float, double) {
  using T = TestType;
  const auto I = SinusoidalLayout::Interleaved;
  RowMatrix<T> odd(4, 7), empty(4, 0), pe(4, 8);
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding(odd),
                       "xfmr::sinusoidal_encoding: out.cols() = D must be even and > 0 (got D=7)");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding(empty), "must be even and > 0 (got D=0)");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding_at(odd, PositionVector::Zero(4)),
                       "xfmr::sinusoidal_encoding_at: out.cols() = D must be even and > 0");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding(pe, 0, I, 1.0),
                       "base must be finite and > 1 (got base=1)");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding(pe, 0, I, 0.5), "(got base=0.5)");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding(pe, 0, I, std::nan("")), "(got base=nan)");
  XFMR_REQUIRE_INVALID(
      xfmr::sinusoidal_encoding(pe, 0, I, std::numeric_limits<double>::infinity()),
      "(got base=inf)");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding(pe, 0, static_cast<SinusoidalLayout>(3)),
                       "layout must be SinusoidalLayout::Interleaved or Halves (got 3)");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding(pe, -1),
                       "xfmr::sinusoidal_encoding: pos0 must be >= 0 and pos0 + tokens <= 2^53 "
                       "(got pos0=-1, tokens=4)");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding(pe, (Index(1) << 53) - 3), "tokens=4)");
  PositionVector ids = PositionVector::Zero(4);
  ids[2] = -5;
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding_at(pe, ids),
                       "position ids must be in [0, 2^53] (got ids[2]=-5)");
  XFMR_REQUIRE_INVALID(xfmr::sinusoidal_encoding_at(pe, PositionVector::Zero(3)),
                       "one position id per row: ids.size() == 4 (got 3)");
}

// SPDX-License-Identifier: MIT
// LayerNorm, RMSNorm, conditional LayerNorm: long-double reference on odd widths, strided and
// in-place views, every ISA against scalar, the large-offset case, the SPEC §11 properties, errors.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/layers/norm.hpp>

#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

namespace {

using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::RowVector;

/// y = γ ⊙ (x − μ)/√(σ² + ε) + β in long double (rms: no centring, σ² = mean(x²)).
template <typename T>
RowMatrix<long double> reference_norm(const RowMatrix<T>& x, const RowVector<T>& gamma,
                                      const RowVector<T>& beta, double eps, bool rms) {
  RowMatrix<long double> y(x.rows(), x.cols());
  const long double n = x.cols();
  for (Index r = 0; r < x.rows(); ++r) {
    long double mu = 0, var = 0;
    if (!rms) {
      for (Index c = 0; c < x.cols(); ++c) mu += x(r, c);
      mu /= n;
    }
    for (Index c = 0; c < x.cols(); ++c) var += (x(r, c) - mu) * (x(r, c) - mu);
    const long double inv = 1.0L / std::sqrt(var / n + eps);
    for (Index c = 0; c < x.cols(); ++c)
      y(r, c) = gamma[c] * (x(r, c) - mu) * inv + (rms ? 0.0L : static_cast<long double>(beta[c]));
  }
  return y;
}

template <typename T>
double max_abs_diff(const RowMatrix<T>& a, const RowMatrix<long double>& b) {
  return double((a.template cast<long double>() - b).cwiseAbs().maxCoeff());
}

constexpr Index kWidths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 771};

}  // namespace

TEMPLATE_TEST_CASE("LayerNorm and RMSNorm match the long-double reference", "[norm]", float,
                   double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 4e-6 : 1e-14;
  auto rng = xfmr_test::make_rng();
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const Index dim : kWidths) {
      INFO("isa " << Isa::name << ", dim " << dim);
      const Index rows = 5;
      // Rows with a common offset of 1e4 and unit spread (row 0 without offset).
      RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, rows, dim, -1.0, 1.0);
      x.bottomRows(rows - 1).array() += T(1e4);
      xfmr::LayerNormConfig lc;
      lc.dim = dim;
      lc.eps = 1e-5;
      xfmr::LayerNorm<T, Isa> ln(lc);
      ln.gamma() = xfmr_test::random_matrix<T>(rng, 1, dim, 0.5, 2.0);
      ln.beta() = xfmr_test::random_matrix<T>(rng, 1, dim, -1.0, 1.0);
      RowMatrix<T> y(rows, dim);
      ln.apply(x, y);
      CHECK(max_abs_diff(y, reference_norm(x, ln.gamma(), ln.beta(), lc.eps, false)) < tol);

      xfmr::RmsNormConfig rc;
      rc.dim = dim;
      xfmr::RmsNorm<T, Isa> rms(rc);
      rms.gamma() = ln.gamma();
      rms.apply(x, y);
      CHECK(max_abs_diff(y, reference_norm(x, rms.gamma(), ln.beta(), rc.eps, true)) < tol);
    }
  });
}

TEST_CASE("LayerNorm: every ISA equals scalar to rounding, strided and in place", "[norm]") {
  auto rng = xfmr_test::make_rng(1);
  for (const Index dim : kWidths) {
    RowMatrix<float> big = xfmr_test::random_matrix<float>(rng, 9, dim + 5, -3.0, 5.0);
    xfmr::LayerNormConfig c;
    c.dim = dim;
    xfmr::LayerNorm<float, xfmr::simd::scalar_isa> scalar(c);
    scalar.gamma() = xfmr_test::random_matrix<float>(rng, 1, dim);
    scalar.beta() = xfmr_test::random_matrix<float>(rng, 1, dim);
    RowMatrix<float> ys(6, dim);
    scalar.apply(big.block(2, 1, 6, dim), ys);  // unaligned, strided view: rows 2..7, cols 1..dim
    xfmr_test::for_each_isa([&](auto isa) {
      using Isa = decltype(isa);
      INFO("isa " << Isa::name << ", dim " << dim);
      xfmr::LayerNorm<float, Isa> layer(c);
      layer.gamma() = scalar.gamma();
      layer.beta() = scalar.beta();
      RowMatrix<float> yn(6, dim);
      layer.apply(big.block(2, 1, 6, dim), yn);
      CHECK((ys - yn).cwiseAbs().maxCoeff() <= 1e-5f);
      // In place on the strided view: bit-identical to out of place, neighbours untouched.
      RowMatrix<float> before = big;
      layer.apply(big.block(2, 1, 6, dim));
      CHECK(RowMatrix<float>(big.block(2, 1, 6, dim)) == yn);
      big.block(2, 1, 6, dim) = before.block(2, 1, 6, dim);
      CHECK(big == before);
    });
  }
}

TEST_CASE("LayerNorm: mean 0 and variance 1 before the affine at a 1e4 offset", "[norm]") {
  auto rng = xfmr_test::make_rng(2);
  const Index dim = 768;
  RowMatrix<double> x = xfmr_test::random_matrix<double>(rng, 3, dim, -1e-3, 1e-3);
  x.array() += 1e4;  // E[x²] − μ² would lose all 16 digits here
  xfmr::LayerNormConfig c;
  c.dim = dim;
  c.eps = 0;
  xfmr::LayerNorm<double> ln(c);
  RowMatrix<double> y(3, dim);
  ln.apply(x, y);
  for (Index r = 0; r < 3; ++r) {
    CHECK(std::abs(y.row(r).mean()) < 1e-9);
    CHECK(y.row(r).squaredNorm() / dim == Approx(1.0).epsilon(1e-9));
  }
  RowMatrix<float> xf = (xfmr_test::random_matrix<double>(rng, 3, dim, -1.0, 1.0).array() + 1e4).cast<float>();
  xfmr::LayerNorm<float> lnf(c);
  RowMatrix<float> yf(3, dim);
  lnf.apply(xf, yf);
  for (Index r = 0; r < 3; ++r) {
    CHECK(std::abs(yf.row(r).mean()) < 1e-5f);
    CHECK(yf.row(r).squaredNorm() / dim == Approx(1.0f).epsilon(1e-4));
  }
}

TEST_CASE("RMSNorm is scale invariant; gain-free and bias-free forms", "[norm]") {
  auto rng = xfmr_test::make_rng(3);
  const Index dim = 37;
  const RowMatrix<double> x = xfmr_test::random_matrix<double>(rng, 4, dim);
  xfmr::RmsNormConfig c;
  c.dim = dim;
  c.eps = 0;
  c.scale = false;
  xfmr::RmsNorm<double> rms(c);
  rms.gamma().setConstant(7.0);  // ignored: scale = false
  RowMatrix<double> y1(4, dim), y2(4, dim);
  rms.apply(x, y1);
  rms.apply(RowMatrix<double>(3.5 * x), y2);
  CHECK((y1 - y2).cwiseAbs().maxCoeff() < 1e-14);
  for (Index r = 0; r < 4; ++r) CHECK(y1.row(r).squaredNorm() / dim == Approx(1.0).epsilon(1e-13));

  xfmr::LayerNormConfig lc;
  lc.dim = dim;
  lc.offset = false;
  xfmr::LayerNorm<double> ln(lc);
  ln.beta().setConstant(5.0);  // ignored: offset = false
  ln.apply(x, y1);
  CHECK(std::abs(y1.row(0).mean()) < 1e-13);
}

TEST_CASE("Conditional LayerNorm equals LayerNorm at initialisation and γ(c), β(c) after",
          "[norm]") {
  auto rng = xfmr_test::make_rng(4);
  const Index dim = 19, cond = 5, tokens = 6;
  xfmr::LayerNormConfig c;
  c.dim = dim;
  xfmr::ConditionalLayerNorm<double> cln(c, cond);
  cln.base().gamma() = xfmr_test::random_matrix<double>(rng, 1, dim, 0.5, 1.5);
  cln.base().beta() = xfmr_test::random_matrix<double>(rng, 1, dim);
  const RowMatrix<double> x = xfmr_test::random_matrix<double>(rng, tokens, dim, -2.0, 3.0);
  const RowMatrix<double> cv = xfmr_test::random_matrix<double>(rng, 1, cond);
  RowMatrix<double> y(tokens, dim), y_ln(tokens, dim);
  cln.apply(x, cv, y);
  cln.base().apply(x, y_ln);
  CHECK(y == y_ln);

  cln.w_gamma() = xfmr_test::random_matrix<double>(rng, cond, dim);
  cln.w_beta() = xfmr_test::random_matrix<double>(rng, cond, dim);
  const RowVector<double> gamma_c = cln.base().gamma() + cv * cln.w_gamma();
  const RowVector<double> beta_c = cln.base().beta() + cv * cln.w_beta();
  cln.apply(x, cv, y);
  CHECK(max_abs_diff(y, reference_norm(x, gamma_c, beta_c, c.eps, false)) < 1e-12);

  // One condition row per token.
  const RowMatrix<double> per_token = xfmr_test::random_matrix<double>(rng, tokens, cond);
  cln.apply(x, per_token, y);
  for (Index t = 0; t < tokens; ++t) {
    const RowVector<double> g = cln.base().gamma() + per_token.row(t) * cln.w_gamma();
    const RowVector<double> b = cln.base().beta() + per_token.row(t) * cln.w_beta();
    const RowMatrix<double> xt = x.row(t);
    CHECK(max_abs_diff(RowMatrix<double>(y.row(t)), reference_norm(xt, g, b, c.eps, false)) < 1e-12);
  }
}

TEST_CASE("Norm layers reject bad input with clear messages", "[norm][errors]") {
  xfmr::LayerNormConfig c;
  XFMR_REQUIRE_INVALID(xfmr::LayerNorm<float>{c}, "dim must be >= 1 (got 0)");
  c.dim = 4;
  c.eps = std::nan("");
  XFMR_REQUIRE_INVALID(xfmr::LayerNorm<float>{c}, "eps must be finite and >= 0 (got nan)");
  c.eps = 1e-5;
  xfmr::LayerNorm<float> ln(c);
  RowMatrix<float> x = RowMatrix<float>::Ones(2, 4), y(2, 4), bad(3, 4);
  XFMR_REQUIRE_INVALID(ln.apply(RowMatrix<float>(2, 5), y), "x must have dim=4 columns (got 5)");
  XFMR_REQUIRE_INVALID(ln.apply(x, bad), "out must be the shape of x (2x4) (got 3x4)");
  XFMR_REQUIRE_INVALID(ln.apply(x.leftCols(3), x.rightCols(3)), "xfmr::LayerNorm");
  ln.gamma().resize(3);
  XFMR_REQUIRE_INVALID(ln.apply(x, y), "gamma must have dim=4 entries (got 3)");
  xfmr::RmsNormConfig rc;
  rc.dim = 4;
  rc.eps = -1;
  XFMR_REQUIRE_INVALID(xfmr::RmsNorm<float>{rc}, "xfmr::RmsNorm: eps must be finite and >= 0 (got -1)");
  XFMR_REQUIRE_INVALID((xfmr::ConditionalLayerNorm<float>{c, 0}), "cond_dim must be >= 1 (got 0)");
  xfmr::ConditionalLayerNorm<float> cln(c, 3);
  XFMR_REQUIRE_INVALID(cln.apply(x, RowMatrix<float>(1, 2), y),
                       "condition must have cond_dim=3 columns (got 2)");
  XFMR_REQUIRE_INVALID(cln.apply(x, RowMatrix<float>(3, 3), y),
                       "condition must have 1 row or one per token (2) (got 3)");
}

// SPDX-License-Identifier: MIT
// Taylor softmax and order-2 Taylor linear attention: the SPEC §7.3 tests against long-double
// references and argument errors (the row kernels: tests/simd/taylor.test.cpp).
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/linear.hpp>
#include <xfmr/attention/recurrent_state.hpp>
#include <xfmr/attention/taylor.hpp>

#include "reference/linear_attention.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::Index;
using xfmr::RowMatrix;

TEST_CASE("Even-order Taylor polynomials of exp are positive, with the tabulated minima",
          "[taylor]") {
  // SPEC §7.1 table (argmin, minimum), 5-6 significant digits as printed.
  const struct {
    int n;
    double x, f;
  } table[] = {{2, -1, 0.5},
               {4, -1.59607, 0.270395},
               {6, -2.18061, 0.149325},
               {8, -2.759, 0.0832715},
               {10, -3.33355, 0.0466991}};
  for (const auto& row : table) {
    CAPTURE(row.n);
    const double xs = xfmr::taylor_exp_argmin(row.n);
    REQUIRE(xs == Approx(row.x).margin(6e-4));
    REQUIRE(xfmr::taylor_exp(xs, row.n) == Approx(row.f).epsilon(2e-5));
    REQUIRE(std::abs(xfmr::taylor_exp(xs, row.n - 1)) < 1e-12);  // f_n' = f_{n−1} = 0 there
    // Dense grid on [−20, 20]: strictly positive and never below the minimum.
    for (int i = -40000; i <= 40000; ++i) {
      const double x = i * 5e-4;
      const double f = xfmr::taylor_exp(x, row.n);
      REQUIRE(f > 0);
      REQUIRE(f >= xfmr::taylor_exp(xs, row.n) * (1 - 1e-12));
    }
  }
  // Odd orders are not positive: f_3(−3) = 1 − 3 + 4.5 − 4.5 = −2.
  REQUIRE(xfmr::taylor_exp(-3.0, 3) == Approx(-2.0));
}

TEMPLATE_TEST_CASE("taylor_exp and taylor_softmax on a score matrix", "[taylor]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(31);
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
  for (const int n : {2, 4, 6, 8})
    for (const Index cols : {Index(1), Index(7), Index(8), Index(33)}) {
      CAPTURE(n, cols);
      RowMatrix<T> wide = xfmr_test::random_matrix<T>(rng, 5, cols + 2, -6, 6);
      const RowMatrix<T> s = wide.middleCols(1, cols);
      RowMatrix<T> e(5, cols), p(5, cols), pm(5, cols);
      xfmr::taylor_exp(wide.middleCols(1, cols), e, n);
      xfmr::taylor_softmax(wide.middleCols(1, cols), p, n);
      xfmr::taylor_softmax(s, pm, n, xfmr::TaylorVariant::Monotone);
      const long double xs = xfmr::taylor_exp_argmin(n);
      for (Index r = 0; r < 5; ++r) {
        long double sum = 0, summ = 0;
        for (Index c = 0; c < cols; ++c) {
          sum += xfmr_ref::taylor_exp(s(r, c), n);
          summ += xfmr_ref::taylor_exp(std::max<long double>(s(r, c), xs), n);
        }
        for (Index c = 0; c < cols; ++c) {
          const long double f = xfmr_ref::taylor_exp(s(r, c), n);
          // Horner in T: error relative to Σ|x^k/k!| = f_n(|x|) (cancellation near the minimum).
          REQUIRE(std::abs(e(r, c) - f) <= tol * xfmr_ref::taylor_exp(std::abs(s(r, c)), n));
          REQUIRE(p(r, c) > 0);
          REQUIRE(std::abs(p(r, c) - f / sum) <= tol * 4 * xfmr_ref::taylor_exp(std::abs(s(r, c)), n) / sum + tol);
          const long double fm = xfmr_ref::taylor_exp(std::max<long double>(s(r, c), xs), n);
          REQUIRE(std::abs(pm(r, c) - fm / summ) <= tol * 4 * xfmr_ref::taylor_exp(std::abs(s(r, c)), n) / summ + tol);
        }
        REQUIRE(std::abs(p.row(r).sum() - 1) <= tol * 4 * cols);
      }
      // Monotone: a larger score never gets a smaller weight.
      for (Index r = 0; r < 5; ++r)
        for (Index a = 0; a < cols; ++a)
          for (Index b = 0; b < cols; ++b)
            if (s(r, a) > s(r, b)) REQUIRE(pm(r, a) >= pm(r, b));
      // In place.
      RowMatrix<T> inplace = s;
      xfmr::taylor_softmax(inplace, inplace, n);
      REQUIRE((inplace - p).cwiseAbs().maxCoeff() <= tol);
    }
}

TEMPLATE_TEST_CASE("Order-2 Taylor features: φ(q)·φ(k) = 1 + q·k + (q·k)²/2, full and compressed",
                   "[taylor]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(33);
  for (const Index d : {Index(1), Index(2), Index(7), Index(16), Index(33)}) {
    CAPTURE(d);
    const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, 6, d);
    const double scale = 0.8;
    RowMatrix<T> phi(6, xfmr::taylor2_feature_dim(d));
    REQUIRE(phi.cols() == 1 + d + d * (d + 1) / 2);
    xfmr::taylor2_features(x, phi, scale);
    xfmr_ref::LinearRef r;
    r.map = xfmr_ref::Map::Taylor2;
    r.taylor_scale = scale;
    for (Index i = 0; i < 6; ++i)
      for (Index j = 0; j < 6; ++j) {
        const xfmr_ref::LVec qi(x.row(i).data(), x.row(i).data() + d);
        const xfmr_ref::LVec kj(x.row(j).data(), x.row(j).data() + d);
        const long double s = scale * scale * xfmr_ref::dot(qi, kj);
        const long double expect = 1 + s + s * s / 2;
        const long double full = xfmr_ref::dot(xfmr_ref::feature(r, qi), xfmr_ref::feature(r, kj));
        REQUIRE(std::abs(full - expect) < 1e-15L * (1 + expect));  // full map, long double
        const T compressed = phi.row(i).dot(phi.row(j));
        REQUIRE(std::abs(compressed - expect) < (std::is_same_v<T, float> ? 1e-5 : 1e-13) * expect);
      }
  }
  RowMatrix<double> x(2, 3), bad(2, 9);
  x.setOnes();
  XFMR_REQUIRE_INVALID(xfmr::taylor2_features(x, bad), "out must be 2x10 (got 2x9)");
}

TEMPLATE_TEST_CASE("Taylor linear attention equals quadratic Taylor-softmax attention",
                   "[taylor][linear]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(34);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  for (const bool causal : {false, true})
    for (const Index d : {Index(3), Index(8), Index(16)}) {
      CAPTURE(causal, d);
      const Index h = 2, n = 37;
      const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, n, h * d, -2, 2);
      const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, n, h * d, -2, 2);
      const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, n, h * d);
      auto c = xfmr::taylor_linear_attention_config<T>(d);
      const auto mask = xfmr::AttentionMask<T>{}.set_causal(causal);
      c.chunk_size = 8;
      xfmr::LinearAttention<T> attn(c);
      REQUIRE(attn.feature_dim() == xfmr::taylor2_feature_dim(d));
      RowMatrix<T> out(n, h * d);
      attn.forward(q, k, v, out, mask);
      const auto ref = xfmr_ref::taylor_attention(q, k, v, d, 1 / std::sqrt((long double)d), 2, causal);
      const double err = (out.template cast<long double>() - ref).cwiseAbs().maxCoeff();
      REQUIRE(err < tol);
      if (causal) {
        xfmr::RecurrentAttentionState<T> state(c, h);
        RowMatrix<T> rec(n, h * d);
        for (Index t = 0; t < n; ++t) state.step(q.row(t), k.row(t), v.row(t), rec.row(t));
        REQUIRE((rec.template cast<long double>() - ref).cwiseAbs().maxCoeff() < tol);
      }
    }
}

TEST_CASE("Taylor attention with RoPE before the feature map equals the rotated-kernel explicit "
          "computation",
          "[taylor][rope]") {
  auto rng = xfmr_test::make_rng(35);
  const Index h = 2, d = 6, n = 21;
  for (const bool causal : {false, true}) {
    const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, n, h * d);
    const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, n, h * d);
    const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, n, h * d);
    auto c = xfmr::taylor_linear_attention_config<double>(d);
    const auto mask = xfmr::AttentionMask<double>{}.set_causal(causal);
    c.rope = xfmr::RopeConfig{};
    c.rope->base = 50;
    RowMatrix<double> out(n, h * d);
    xfmr::LinearAttention<double>(c).forward(q, k, v, out, mask);
    // Explicit: rotate q_i, k_j by their positions, then weights f_2(q_i'·k_j'/√d), normalised.
    const auto theta = xfmr_ref::inv_freq(d, 50);
    const auto qr = xfmr_ref::rope(q, d, d, true, [&] {
      std::vector<long double> p;
      for (Index t = 0; t < n; ++t) p.push_back(t);
      return p;
    }(), theta);
    const auto kr = xfmr_ref::rope(k, d, d, true, [&] {
      std::vector<long double> p;
      for (Index t = 0; t < n; ++t) p.push_back(t);
      return p;
    }(), theta);
    const RowMatrix<double> qd = qr.cast<double>(), kd = kr.cast<double>();
    const auto ref = xfmr_ref::taylor_attention(qd, kd, v, d, 1 / std::sqrt(6.0L), 2, causal);
    REQUIRE((out.cast<long double>() - ref).cwiseAbs().maxCoeff() < 1e-12);
    // Weights stay a distribution: v = 1 gives 1.
    RowMatrix<double> ones = RowMatrix<double>::Ones(n, h * d), o1(n, h * d);
    xfmr::LinearAttention<double>(c).forward(q, k, ones, o1, mask);
    REQUIRE((o1.array() - 1).abs().maxCoeff() < 1e-13);
  }
}

TEST_CASE("Taylor functions reject odd or out-of-range orders and bad shapes", "[taylor][errors]") {
  RowMatrix<float> s = RowMatrix<float>::Ones(2, 3), out(2, 3), bad(3, 3);
  XFMR_REQUIRE_INVALID(xfmr::taylor_softmax(s, out, 3), "order must be even and in [2, 64]");
  XFMR_REQUIRE_INVALID(xfmr::taylor_softmax(s, out, 0), "(got order=0)");
  XFMR_REQUIRE_INVALID(xfmr::taylor_exp(s, out, 66), "(got order=66)");
  XFMR_REQUIRE_INVALID(xfmr::taylor_softmax(s, bad, 2), "out must be 2x3 (got 3x3)");
  XFMR_REQUIRE_INVALID(xfmr::taylor_exp_argmin(5), "order must be even");
}

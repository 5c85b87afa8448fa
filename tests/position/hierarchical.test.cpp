// SPDX-License-Identifier: MIT
// Tests for HierarchicalPositionEmbedding (SPEC §3.2): exact original rows, the two-digit formula
// against a long-double reference, the n² range, digit order, strided views, errors.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/position/hierarchical.hpp>

#include "reference/hierarchical.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

namespace {

using xfmr::Index;
using xfmr::PositionVector;
using xfmr::RowMatrix;

/// Magnitude of the terms of u[a][j] = (E[a][j] − α·E[0][j]) / (1 − α): the subtraction may
/// cancel, so errors of u scale with this, not with |u|.
template <typename T>
long double u_terms(const RowMatrix<T>& E, long double alpha, Index a, Index j) {
  return (std::fabs(static_cast<long double>(E(a, j))) +
          alpha * std::fabs(static_cast<long double>(E(0, j)))) /
         (1 - alpha);
}

/// Largest |got − want| / tol over the rows, with want = α·u_a + (1−α)·u_c from the reference.
/// Tolerance: u is computed in double and stored rounded to T (≤ 2ε_T of its terms' magnitude,
/// weighted by α and 1 − α), emb is formed in double and rounded once more (≤ ε_T of |want|);
/// 4ε_T on the sum of magnitudes covers both with margin.
template <typename T>
double worst_ratio(const RowMatrix<T>& E, long double alpha, const RowMatrix<T>& got,
                   const PositionVector& pos) {
  const double e = std::numeric_limits<T>::epsilon();
  double worst = 0;
  for (Index t = 0; t < got.rows(); ++t) {
    const auto want = xfmr_ref::hierarchical(E, alpha, pos[t]);
    const Index a = pos[t] / E.rows(), c = pos[t] % E.rows();
    for (Index j = 0; j < E.cols(); ++j) {
      const long double mag = alpha * u_terms(E, alpha, a, j) +
                              (1 - alpha) * u_terms(E, alpha, c, j) + std::fabs(want[j]);
      const double tol = 4 * e * static_cast<double>(mag) + std::numeric_limits<T>::min();
      worst = std::max(worst, static_cast<double>(std::fabs(got(t, j) - want[j])) / tol);
    }
  }
  return worst;
}

}  // namespace

TEMPLATE_TEST_CASE("Hierarchical embedding returns the learned rows bit for bit below n",
                   "[hierarchical]", float, double) {
  using T = TestType;
  const Index n = GENERATE(1, 7, 16), D = 5;
  auto rng = xfmr_test::make_rng(static_cast<std::uint64_t>(n));
  const RowMatrix<T> E = xfmr_test::random_matrix<T>(rng, n, D, -2, 2);
  const double alpha = GENERATE(0.4, 0.3, 0.75);
  const xfmr::HierarchicalPositionEmbedding<T> emb(E, alpha);
  CHECK(emb.max_positions() == n * n);
  CHECK(emb.table_positions() == n);
  CHECK(emb.dim() == D);
  CHECK(emb.alpha() == alpha);

  RowMatrix<T> out(n, D);
  out.setConstant(std::numeric_limits<T>::quiet_NaN());
  emb.lookup(0, out);
  CHECK(out == E);
  PositionVector ids(n);
  for (Index p = 0; p < n; ++p) ids[p] = n - 1 - p;
  emb.lookup(ids, out);
  CHECK(out == E.colwise().reverse());
}

TEMPLATE_TEST_CASE("Hierarchical embedding is alpha u_a + (1 - alpha) u_c above n",
                   "[hierarchical]", float, double) {
  using T = TestType;
  const Index n = 7, D = 5;  // n != D, so a transposed table cannot pass
  auto rng = xfmr_test::make_rng(21);
  const RowMatrix<T> E = xfmr_test::random_matrix<T>(rng, n, D, -2, 2);
  const double alpha = GENERATE(0.4, 0.1, 0.6, 0.9);
  CAPTURE(alpha);
  const xfmr::HierarchicalPositionEmbedding<T> emb(E, alpha);

  // Every position 0 … n² − 1 at once: pos0 = 0 up to the last valid position.
  RowMatrix<T> all(n * n, D);
  emb.lookup(0, all);
  PositionVector every(n * n);
  for (Index p = 0; p < n * n; ++p) every[p] = p;
  CHECK(worst_ratio(E, alpha, all, every) <= 1.0);

  // The stored u is the reference u to rounding: three double operations, then T.
  const auto u = xfmr_ref::hierarchical_u(E, alpha);
  for (Index a = 0; a < n; ++a)
    for (Index j = 0; j < D; ++j)
      CHECK(std::fabs(emb.u()(a, j) - u[a][j]) <=
            2 * std::numeric_limits<T>::epsilon() * u_terms(E, alpha, a, j));

  // Explicit ids equal the consecutive rows; (a, c) and (c, a) differ since α != 0.5.
  PositionVector ids = (PositionVector(4) << 3 * n + 5, 5 * n + 3, n * n - 1, n).finished();
  RowMatrix<T> some(4, D);
  emb.lookup(ids, some);
  for (Index t = 0; t < 4; ++t) CHECK(some.row(t) == all.row(ids[t]));
  CHECK((some.row(0) - some.row(1)).cwiseAbs().maxCoeff() > 1e-3);
}

TEMPLATE_TEST_CASE("Hierarchical embedding covers exactly n² positions", "[hierarchical]", float,
                   double) {
  using T = TestType;
  const Index n = 16, D = 24;
  auto rng = xfmr_test::make_rng(4);
  const RowMatrix<T> E = xfmr_test::random_matrix<T>(rng, n, D);
  const xfmr::HierarchicalPositionEmbedding<T> emb(E);
  CHECK(emb.alpha() == 0.4);
  RowMatrix<T> one(1, D);
  REQUIRE_NOTHROW(emb.lookup(n * n - 1, one));
  CHECK(worst_ratio(E, 0.4, one, (PositionVector(1) << n * n - 1).finished()) <= 1.0);
  REQUIRE_NOTHROW(emb.lookup((PositionVector(1) << n * n - 1).finished(), one));
  XFMR_REQUIRE_INVALID(emb.lookup(n * n, one),
                       "xfmr::HierarchicalPositionEmbedding: pos0 must be >= 0 and pos0 + tokens "
                       "<= n²=256 (got pos0=256, tokens=1)");
  RowMatrix<T> two(2, D);
  XFMR_REQUIRE_INVALID(emb.lookup(n * n - 1, two), "(got pos0=255, tokens=2)");
  XFMR_REQUIRE_INVALID(emb.lookup((PositionVector(2) << 3, n * n).finished(), two),
                       "position ids must be in [0, n²=256) (got ids[1]=256)");
}

TEMPLATE_TEST_CASE("Hierarchical embedding accepts strided views", "[hierarchical]", float,
                   double) {
  using T = TestType;
  const Index n = 9, D = 6;
  auto rng = xfmr_test::make_rng(8);
  const RowMatrix<T> wide = xfmr_test::random_matrix<T>(rng, n, D + 4);
  const RowMatrix<T> E = wide.middleCols(1, D);
  const xfmr::HierarchicalPositionEmbedding<T> from_view(wide.middleCols(1, D), 0.35);
  const xfmr::HierarchicalPositionEmbedding<T> from_copy(E, 0.35);
  CHECK(from_view.table() == E);

  RowMatrix<T> big = xfmr_test::random_matrix<T>(rng, 20, D + 3);
  const RowMatrix<T> before = big;
  from_view.lookup(40, big.middleCols(2, D));
  RowMatrix<T> want(20, D);
  from_copy.lookup(40, want);
  CHECK(RowMatrix<T>(big.middleCols(2, D)) == want);
  CHECK(big.leftCols(2) == before.leftCols(2));
  CHECK(big.rightCols(1) == before.rightCols(1));
}

TEMPLATE_TEST_CASE("Hierarchical embedding rejects bad arguments with a message",
                   "[hierarchical][errors]", float, double) {
  using T = TestType;
  using H = xfmr::HierarchicalPositionEmbedding<T>;
  const RowMatrix<T> E = RowMatrix<T>::Ones(4, 3);
  XFMR_REQUIRE_INVALID(H(RowMatrix<T>(0, 3)),
                       "xfmr::HierarchicalPositionEmbedding: table must be non-empty (got 0x3)");
  XFMR_REQUIRE_INVALID(H(RowMatrix<T>(4, 0)), "table must be non-empty (got 4x0)");
  XFMR_REQUIRE_INVALID(H(E, 0.5),
                       "xfmr::HierarchicalPositionEmbedding: alpha must be finite, in (0, 1) and "
                       "!= 0.5 (got alpha=0.5)");
  XFMR_REQUIRE_INVALID(H(E, 0.0), "(got alpha=0)");
  XFMR_REQUIRE_INVALID(H(E, 1.0), "(got alpha=1)");
  XFMR_REQUIRE_INVALID(H(E, -0.25), "(got alpha=-0.25)");
  XFMR_REQUIRE_INVALID(H(E, std::nan("")), "(got alpha=nan)");
  XFMR_REQUIRE_INVALID(H(E, std::numeric_limits<double>::infinity()), "(got alpha=inf)");

  const H emb(E);
  RowMatrix<T> out(2, 3), narrow(2, 2);
  XFMR_REQUIRE_INVALID(emb.lookup(0, narrow),
                       "xfmr::HierarchicalPositionEmbedding: out must be 2x3 (got 2x2)");
  XFMR_REQUIRE_INVALID(emb.lookup(PositionVector::Zero(3), out), "out must be 3x3 (got 2x3)");
  XFMR_REQUIRE_INVALID(emb.lookup(-1, out), "(got pos0=-1, tokens=2)");
  XFMR_REQUIRE_INVALID(emb.lookup((PositionVector(2) << 0, -7).finished(), out),
                       "position ids must be in [0, n²=16) (got ids[1]=-7)");
}

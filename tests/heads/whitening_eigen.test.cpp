// SPDX-License-Identifier: MIT
// The whitening eigensolver (detail/symmetric_eigen.hpp): top_eigenpairs (tridiagonal inverse
// iteration, verified) against Eigen's full solver for decaying, repeated, rank-deficient and
// clustered spectra; leading_eigenpairs on both of its paths and its fallback.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/detail/symmetric_eigen.hpp>

#include <Eigen/QR>

#include "support/random.hpp"

using xfmr::Index;

namespace {

// q·diag(lambda)·qᵀ with q a random orthogonal matrix.
Eigen::MatrixXd with_spectrum(std::mt19937_64& rng, const Eigen::VectorXd& lambda) {
  std::normal_distribution<double> g(0.0, 1.0);
  const Index d = lambda.size();
  Eigen::MatrixXd basis(d, d);
  for (Index i = 0; i < basis.size(); ++i) basis.data()[i] = g(rng);
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(basis).householderQ();
  return q * lambda.asDiagonal() * q.transpose();
}

// The checks every result of leading_eigenpairs must pass: all n eigenvalues descending and
// equal to the full solver's, orthonormal vectors, S·V = V·Λ, and (when k does not split a
// repeated eigenvalue) the same invariant subspace as the full solver.
void check_against_full(const Eigen::MatrixXd& s, Index k, const Eigen::VectorXd& values,
                        const Eigen::MatrixXd& v) {
  const Index d = s.rows();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> full(s);
  const double scale = full.eigenvalues().cwiseAbs().maxCoeff();  // ‖S‖₂
  REQUIRE(values.size() == d);
  REQUIRE(v.rows() == d);
  REQUIRE(v.cols() == k);
  for (Index i = 0; i < d; ++i) {
    CHECK(std::abs(values[i] - full.eigenvalues()[d - 1 - i]) < 1e-12 * scale);
    if (i > 0) CHECK(values[i - 1] >= values[i]);
  }
  CHECK((v.transpose() * v - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((s * v - v * values.head(k).asDiagonal()).cwiseAbs().maxCoeff() < 1e-12 * scale);
  if (k == d || values[k - 1] - values[k] > 1e-6 * scale) {
    const Eigen::MatrixXd uf = full.eigenvectors().rightCols(k);
    CHECK((v * v.transpose() - uf * uf.transpose()).cwiseAbs().maxCoeff() < 1e-9);
  }
}

}  // namespace

TEST_CASE("top_eigenpairs equals the full eigensolver, also for repeated eigenvalues",
          "[whitening][eigen]") {
  auto rng = xfmr_test::make_rng(21);
  std::normal_distribution<double> g(0.0, 1.0);
  const Index d = 60;
  Eigen::MatrixXd basis(d, d);
  for (Index i = 0; i < basis.size(); ++i) basis.data()[i] = g(rng);
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(basis).householderQ();
  std::vector<Eigen::VectorXd> spectra;
  Eigen::VectorXd decay(d), repeated(d), deficient(d), white(d);
  for (Index i = 0; i < d; ++i) {
    decay[i] = 10.0 * std::pow(0.8, double(i));
    repeated[i] = i < 5 ? 3.0 : (i < 12 ? 2.0 : (i < 20 ? 1.0 : 0.5));  // exact multiplicities
    deficient[i] = i < 10 ? 1.0 + double(i) : 0.0;                          // rank 10
    white[i] = 1.0 + 1e-4 * g(rng);                                          // one tight cluster
  }
  for (const auto& lam : {decay, repeated, deficient, white}) {
    const Eigen::MatrixXd s = q * lam.asDiagonal() * q.transpose();
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> full(s);
    for (const Index k : {Index(1), Index(5), Index(12), Index(30)}) {
      Eigen::VectorXd values;
      Eigen::MatrixXd v;
      REQUIRE(xfmr::detail::top_eigenpairs(s, k, values, v));
      REQUIRE(values.size() == d);
      REQUIRE(v.cols() == k);
      for (Index i = 0; i < d; ++i)
        CHECK(std::abs(values[i] - full.eigenvalues()[d - 1 - i]) < 1e-12 * lam.maxCoeff());
      CHECK((v.transpose() * v - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-12);
      CHECK((s * v - v * values.head(k).asDiagonal()).cwiseAbs().maxCoeff() < 1e-11);
      // Same invariant subspace as the full solver's k leading vectors (when k does not split
      // a repeated eigenvalue): the projector V Vᵀ is unique.
      if (k == d || values[k - 1] - values[k] > 1e-6) {
        const Eigen::MatrixXd uf = full.eigenvectors().rightCols(k);
        CHECK((v * v.transpose() - uf * uf.transpose()).cwiseAbs().maxCoeff() < 1e-9);
      }
    }
  }
}

TEST_CASE("leading_eigenpairs: inverse iteration for k <= n/2, the full solver above",
          "[whitening][eigen]") {
  auto rng = xfmr_test::make_rng(24);
  // Odd and even n, k on both sides of n/2 (2k = n takes the fast path), k = n.
  for (const Index d : {Index(1), Index(2), Index(7), Index(40), Index(41)}) {
    Eigen::VectorXd lambda(d);
    for (Index i = 0; i < d; ++i) lambda[i] = 3.0 * std::pow(0.7, double(i)) + 0.01;
    const Eigen::MatrixXd s = with_spectrum(rng, lambda);
    for (const Index k : {Index(1), d / 2, d / 2 + 1, d}) {
      if (k < 1 || k > d) continue;
      INFO("n=" << d << " k=" << k);
      Eigen::VectorXd values;
      Eigen::MatrixXd v;
      REQUIRE(xfmr::detail::leading_eigenpairs(s, k, values, v) == Eigen::Success);
      check_against_full(s, k, values, v);
    }
  }
}

TEST_CASE("leading_eigenpairs falls back to the full solver when inverse iteration fails",
          "[whitening][eigen]") {
  // The zero matrix: top_eigenpairs refuses it (no scale), the full solver returns zeros.
  const Index d = 10, k = 3;
  const Eigen::MatrixXd zero = Eigen::MatrixXd::Zero(d, d);
  Eigen::VectorXd values;
  Eigen::MatrixXd v;
  CHECK_FALSE(xfmr::detail::top_eigenpairs(zero, k, values, v));
  REQUIRE(xfmr::detail::leading_eigenpairs(zero, k, values, v) == Eigen::Success);
  CHECK(values == Eigen::VectorXd::Zero(d));
  REQUIRE(v.cols() == k);
  CHECK((v.transpose() * v - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-14);
  // A non-finite matrix: both refuse; the full solver reports that it did not converge.
  Eigen::MatrixXd bad = Eigen::MatrixXd::Identity(d, d);
  bad(3, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(xfmr::detail::top_eigenpairs(bad, k, values, v));
  CHECK(xfmr::detail::leading_eigenpairs(bad, k, values, v) != Eigen::Success);
  // top_eigenpairs refuses k outside [1, n].
  CHECK_FALSE(xfmr::detail::top_eigenpairs(Eigen::MatrixXd::Identity(d, d), 0, values, v));
  CHECK_FALSE(xfmr::detail::top_eigenpairs(Eigen::MatrixXd::Identity(d, d), d + 1, values, v));
}

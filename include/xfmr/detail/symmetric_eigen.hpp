// SPDX-License-Identifier: MIT
// The k leading eigenpairs of a symmetric matrix in double: tridiagonal inverse iteration
// (verified), with Eigen's full SelfAdjointEigenSolver as the fallback. Used by BertWhitening.
//
// Internal (detail::): the contract (fixed verification tolerances, double only, a bool for
// "did not verify" rather than an error type) is what the whitening fit needs, not a general
// linear-algebra API; a public one would belong to a linalg floor that DESIGN.md §1 does not have.
#ifndef XFMR_DETAIL_SYMMETRIC_EIGEN_HPP
#define XFMR_DETAIL_SYMMETRIC_EIGEN_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "eigen.hpp"
#include <Eigen/Eigenvalues>

#include "../types.hpp"

XFMR_NAMESPACE_BEGIN
namespace detail {

/// All eigenvalues (descending) and the k leading eigenvectors of a symmetric matrix s (D × D), for
/// k <= D/2, about twice as fast as the full SelfAdjointEigenSolver at D = 768, k = 256:
/// Householder tridiagonalisation T = QᵀSQ (Eigen), all eigenvalues of T (implicit QR without
/// vectors), then inverse iteration on T for the k wanted eigenvalues (tridiagonal LU with
/// partial pivoting, 3 steps from a fixed start, modified Gram–Schmidt against the previous
/// vectors of a cluster |λ_i − λ_j| <= 1e-3·‖T‖, as LAPACK dstein), and V = Q·Z.
/// The result is verified (‖SV − VΛ‖ <= 1e-9·‖S‖ and ‖VᵀV − I‖ <= 1e-9, entrywise max); returns
/// false if the check fails so the caller can fall back to the full solver.
/// (Both functions here are templates, Matrix = Eigen::MatrixXd, only so that a translation unit
/// that includes this header without calling them does not instantiate Eigen's solvers: ~6 s of
/// GCC time per such unit, heads/whitening.hpp alone 10.3 -> 3.2 s.)
template <typename Matrix>
bool top_eigenpairs(const Eigen::MatrixXd& s, Index k, Eigen::VectorXd& values, Matrix& vectors) {
  static_assert(std::is_same_v<Matrix, Eigen::MatrixXd>, "top_eigenpairs: Eigen::MatrixXd");
  const Index n = s.rows();
  const double scale = s.cwiseAbs().maxCoeff();
  if (!(scale > 0) || !std::isfinite(scale) || k <= 0 || k > n) return false;
  const Matrix a = s / scale;
  const Eigen::Tridiagonalization<Matrix> tri(a);
  const Eigen::VectorXd diag = tri.diagonal();
  const Eigen::VectorXd sub = tri.subDiagonal();
  Eigen::SelfAdjointEigenSolver<Matrix> ev;
  ev.computeFromTridiagonal(diag, sub, Eigen::EigenvaluesOnly);
  if (ev.info() != Eigen::Success) return false;
  const double tnorm = std::max(ev.eigenvalues().cwiseAbs().maxCoeff(), 1e-300);
  const double tiny = 1e-300 + std::numeric_limits<double>::epsilon() * tnorm;

  values.resize(n);
  for (Index i = 0; i < n; ++i) values[i] = ev.eigenvalues()[n - 1 - i];
  Matrix z(n, k);
  const auto un = static_cast<std::size_t>(n);
  std::vector<double> u0(un), u1(un), u2(un), mult(un);
  std::vector<char> swapped(un);
  Eigen::VectorXd y(n), x(n);
  Index cluster_start = 0;
  for (Index c = 0; c < k; ++c) {
    const double lambda = values[c];
    if (c > 0 && values[c - 1] - lambda > 1e-3 * tnorm) cluster_start = c;
    // LU with partial pivoting of T − λI: rows (d, e, f) at columns (i, i+1, i+2).
    double cd = diag[0] - lambda, ce = n > 1 ? sub[0] : 0.0, cf = 0.0;
    for (Index i = 0; i + 1 < n; ++i) {
      const double below = sub[i], nd = diag[i + 1] - lambda, ne = i + 2 < n ? sub[i + 1] : 0.0;
      const auto si = std::size_t(i);
      if (std::abs(cd) >= std::abs(below)) {
        if (cd == 0.0) cd = tiny;
        const double m = below / cd;
        u0[si] = cd, u1[si] = ce, u2[si] = cf, mult[si] = m, swapped[si] = 0;
        cd = nd - m * ce, ce = ne - m * cf, cf = 0.0;
      } else {
        const double m = cd / below;
        u0[si] = below, u1[si] = nd, u2[si] = ne, mult[si] = m, swapped[si] = 1;
        cd = ce - m * nd, ce = cf - m * ne, cf = 0.0;
      }
    }
    u0[std::size_t(n - 1)] = cd == 0.0 ? tiny : cd;
    // Fixed, well-spread start vector (reproducible).
    std::uint64_t state = 0x9E3779B97F4A7C15ull * std::uint64_t(c + 1);
    for (Index i = 0; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      x[i] = double(state >> 11) / double(1ull << 53) - 0.5;
    }
    for (int it = 0; it < 3; ++it) {
      y = x / x.norm();
      for (Index i = 0; i + 1 < n; ++i) {  // forward: P and L
        const auto si = std::size_t(i);
        if (swapped[si]) std::swap(y[i], y[i + 1]);
        y[i + 1] -= mult[si] * y[i];
      }
      for (Index i = n - 1; i >= 0; --i) {  // back: U
        const auto si = std::size_t(i);
        double v = y[i];
        if (i + 1 < n) v -= u1[si] * x[i + 1];
        if (i + 2 < n) v -= u2[si] * x[i + 2];
        x[i] = v / u0[si];
        if (!std::isfinite(x[i])) return false;
      }
      for (Index j = cluster_start; j < c; ++j) x -= z.col(j).dot(x) * z.col(j);
    }
    const double nrm = x.norm();
    if (!(nrm > 0) || !std::isfinite(nrm)) return false;
    z.col(c) = x / nrm;
  }
  vectors = tri.matrixQ() * z;  // blocked Householder application
  const Matrix residual = a * vectors - vectors * values.head(k).asDiagonal();
  const Matrix gram = vectors.transpose() * vectors - Matrix::Identity(k, k);
  if (!(residual.cwiseAbs().maxCoeff() <= 1e-9) || !(gram.cwiseAbs().maxCoeff() <= 1e-9))
    return false;
  values *= scale;
  return true;
}

/// All eigenvalues of a symmetric s (n × n), descending, and its k leading eigenvectors
/// (n × k, orthonormal columns, column c for values[c]; signs arbitrary), 1 <= k <= n.
/// For 2k <= n, top_eigenpairs (verified; about twice as fast as the full solver at n = 768,
/// k = 256); otherwise, or if its check fails, Eigen's SelfAdjointEigenSolver on s (only its
/// lower triangle is read). Round-off may leave eigenvalues slightly negative for a positive
/// semi-definite s: the caller clips them. Returns Eigen::Success, or the full solver's info()
/// if it does not converge (a non-finite s; values and vectors are unspecified then).
/// Allocates; no shared state.
template <typename Matrix>
Eigen::ComputationInfo leading_eigenpairs(const Eigen::MatrixXd& s, Index k,
                                          Eigen::VectorXd& values, Matrix& vectors) {
  static_assert(std::is_same_v<Matrix, Eigen::MatrixXd>, "leading_eigenpairs: Eigen::MatrixXd");
  const Index n = s.rows();
  if (2 * k <= n && top_eigenpairs(s, k, values, vectors)) return Eigen::Success;
  const Eigen::SelfAdjointEigenSolver<Matrix> solver(s);
  if (solver.info() != Eigen::Success) return solver.info();
  values = solver.eigenvalues().reverse();
  vectors = solver.eigenvectors().rightCols(k).rowwise().reverse();
  return Eigen::Success;
}

}  // namespace detail
XFMR_NAMESPACE_END

#endif  // XFMR_DETAIL_SYMMETRIC_EIGEN_HPP

// SPDX-License-Identifier: MIT
// Naive BERT-whitening reference: two-pass mean and covariance in long double, then Eigen's
// symmetric eigensolver in double (SPEC §9.1). Obviously right, O(N·D²), for small sizes.
#ifndef XFMR_TESTS_REFERENCE_WHITENING_HPP
#define XFMR_TESTS_REFERENCE_WHITENING_HPP

#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Dense>
#include <xfmr/types.hpp>

namespace xfmr_ref {

struct Moments {
  Eigen::VectorXd mean;     // μ
  Eigen::MatrixXd scatter;  // Σ_i (x_i − μ)ᵀ(x_i − μ)
};

/// Two passes: the mean first, then the centred products, both summed in long double.
template <typename T>
Moments moments(const xfmr::RowMatrix<T>& x) {
  const xfmr::Index n = x.rows(), d = x.cols();
  std::vector<long double> mu(static_cast<std::size_t>(d), 0.0L);
  for (xfmr::Index r = 0; r < n; ++r)
    for (xfmr::Index j = 0; j < d; ++j) mu[std::size_t(j)] += static_cast<long double>(x(r, j));
  for (auto& m : mu) m /= static_cast<long double>(n);
  Moments out;
  out.mean.resize(d);
  for (xfmr::Index j = 0; j < d; ++j) out.mean[j] = static_cast<double>(mu[std::size_t(j)]);
  out.scatter.resize(d, d);
  for (xfmr::Index i = 0; i < d; ++i)
    for (xfmr::Index j = 0; j <= i; ++j) {
      long double s = 0.0L;
      for (xfmr::Index r = 0; r < n; ++r)
        s += (static_cast<long double>(x(r, i)) - mu[std::size_t(i)]) *
             (static_cast<long double>(x(r, j)) - mu[std::size_t(j)]);
      out.scatter(i, j) = out.scatter(j, i) = static_cast<double>(s);
    }
  return out;
}

/// The whitening map of SPEC §9.1 with β, γ, ε (relative), k, denominator `den_minus` = 0
/// (population, C/N) or 1 (sample, C/(N−1)): returns (shift βμ, W_k) in double.
struct Whitening {
  Eigen::RowVectorXd shift;
  Eigen::MatrixXd w;           // D × k
  Eigen::VectorXd eigenvalues;  // descending, all D
  Eigen::MatrixXd sigma;       // Σ_β
};

template <typename T>
Whitening whitening(const xfmr::RowMatrix<T>& x, xfmr::Index k, double beta = 1.0,
                    double gamma = 1.0, double eps_rel = 1e-6, int den_minus = 0) {
  const Moments m = moments(x);
  const xfmr::Index n = x.rows(), d = x.cols();
  Whitening out;
  out.shift = (beta * m.mean).transpose();
  // Σ_β around βμ, summed directly (not via the (1−β)² identity the library uses).
  Eigen::MatrixXd sigma(d, d);
  for (xfmr::Index i = 0; i < d; ++i)
    for (xfmr::Index j = 0; j <= i; ++j) {
      long double s = 0.0L;
      for (xfmr::Index r = 0; r < n; ++r)
        s += (static_cast<long double>(x(r, i)) - out.shift[i]) *
             (static_cast<long double>(x(r, j)) - out.shift[j]);
      sigma(i, j) = sigma(j, i) = static_cast<double>(s / static_cast<long double>(n - den_minus));
    }
  out.sigma = sigma;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(sigma);
  out.eigenvalues.resize(d);
  for (xfmr::Index c = 0; c < d; ++c)
    out.eigenvalues[c] = std::max(0.0, es.eigenvalues()[d - 1 - c]);
  const double eps = eps_rel * out.eigenvalues[0];
  out.w.resize(d, k);
  for (xfmr::Index c = 0; c < k; ++c)
    out.w.col(c) = es.eigenvectors().col(d - 1 - c) * std::pow(out.eigenvalues[c] + eps, -gamma / 2);
  return out;
}

/// (x − shift)·W in double.
template <typename T>
Eigen::MatrixXd apply(const Whitening& wh, const xfmr::RowMatrix<T>& x) {
  Eigen::MatrixXd xc = x.template cast<double>();
  xc.rowwise() -= wh.shift;
  return xc * wh.w;
}

/// Pairwise inner products G = Y Yᵀ: invariant under the sign (and, inside a degenerate
/// eigenspace, the rotation) of the whitening components, so comparable across implementations.
inline Eigen::MatrixXd gram(const Eigen::MatrixXd& y) { return y * y.transpose(); }

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_WHITENING_HPP

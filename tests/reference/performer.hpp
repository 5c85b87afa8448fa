// SPDX-License-Identifier: MIT
// Naive Performer / softmax-attention references in long double: explicit feature formulas
// (SPEC §6.1) and the explicit O(n²) kernel sums with an optional causal mask. One head.
#ifndef XFMR_TESTS_REFERENCE_PERFORMER_HPP
#define XFMR_TESTS_REFERENCE_PERFORMER_HPP

#include <cmath>
#include <type_traits>
#include <vector>

#include <xfmr/attention/performer.hpp>
#include <xfmr/types.hpp>

namespace xfmr_ref {

using LMatrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// φ(x) straight from the formulas: x' = d^(−1/4)x, u_l = ω_l·x', h = ‖x'‖²/2. x: (n × d).
template <typename T>
LMatrix performer_features(const xfmr::RowMatrix<double>& w, const xfmr::RowMatrix<T>& x,
                           xfmr::PerformerFeatures kind) {
  const xfmr::Index m = w.rows(), d = w.cols(), n = x.rows();
  const xfmr::Index f = kind == xfmr::PerformerFeatures::Positive ? m : 2 * m;
  const long double c = std::pow(static_cast<long double>(d), -0.25L);
  LMatrix phi(n, f);
  for (xfmr::Index i = 0; i < n; ++i) {
    long double h = 0;
    for (xfmr::Index t = 0; t < d; ++t) h += (c * x(i, t)) * (c * x(i, t));
    h /= 2;
    for (xfmr::Index l = 0; l < m; ++l) {
      long double u = 0;
      for (xfmr::Index t = 0; t < d; ++t) u += static_cast<long double>(w(l, t)) * c * x(i, t);
      switch (kind) {
        case xfmr::PerformerFeatures::Positive:
          phi(i, l) = std::exp(u - h) / std::sqrt(static_cast<long double>(m));
          break;
        case xfmr::PerformerFeatures::Hyperbolic:
          phi(i, l) = std::exp(u - h) / std::sqrt(2.0L * m);
          phi(i, m + l) = std::exp(-u - h) / std::sqrt(2.0L * m);
          break;
        case xfmr::PerformerFeatures::Trigonometric:
          phi(i, l) = std::exp(h) * std::sin(u) / std::sqrt(static_cast<long double>(m));
          phi(i, m + l) = std::exp(h) * std::cos(u) / std::sqrt(static_cast<long double>(m));
          break;
      }
    }
  }
  return phi;
}

/// out_i = Σ_j (φq_i·φk_j) v_j / Σ_j φq_i·φk_j over all j, or j <= i when causal.
template <typename T>
LMatrix kernel_attention(const LMatrix& phiq, const LMatrix& phik, const xfmr::RowMatrix<T>& v,
                         bool causal) {
  LMatrix out = LMatrix::Zero(phiq.rows(), v.cols());
  for (xfmr::Index i = 0; i < phiq.rows(); ++i) {
    long double den = 0;
    for (xfmr::Index j = 0; j < phik.rows(); ++j) {
      if (causal && j > i) break;
      long double a = 0;
      for (xfmr::Index l = 0; l < phiq.cols(); ++l) a += phiq(i, l) * phik(j, l);
      den += a;
      for (xfmr::Index t = 0; t < v.cols(); ++t) out(i, t) += a * v(j, t);
    }
    out.row(i) /= den;
  }
  return out;
}

/// Exact softmax(q kᵀ/√d) v, optionally causal.
template <typename T>
LMatrix softmax_attention(const xfmr::RowMatrix<T>& q, const xfmr::RowMatrix<T>& k,
                          const xfmr::RowMatrix<T>& v, bool causal) {
  const long double scale = 1.0L / std::sqrt(static_cast<long double>(q.cols()));
  LMatrix out = LMatrix::Zero(q.rows(), v.cols());
  for (xfmr::Index i = 0; i < q.rows(); ++i) {
    const xfmr::Index nk = causal ? i + 1 : k.rows();
    std::vector<long double> s(static_cast<std::size_t>(nk));
    long double mx = -INFINITY;
    for (xfmr::Index j = 0; j < nk; ++j) {
      long double a = 0;
      for (xfmr::Index t = 0; t < q.cols(); ++t) a += static_cast<long double>(q(i, t)) * k(j, t);
      s[std::size_t(j)] = a * scale;
      mx = std::max(mx, s[std::size_t(j)]);
    }
    long double den = 0;
    for (xfmr::Index j = 0; j < nk; ++j) {
      const long double e = std::exp(s[std::size_t(j)] - mx);
      den += e;
      for (xfmr::Index t = 0; t < v.cols(); ++t) out(i, t) += e * v(j, t);
    }
    out.row(i) /= den;
  }
  return out;
}

/// max |a − b| / max |b|: whole-matrix relative error. b is an LMatrix itself (no conversion),
/// so this overload and reference/attention.hpp's rel_error never compete for a call.
template <typename A, typename B, typename = std::enable_if_t<std::is_same_v<B, LMatrix>>>
double rel_error(const A& a, const B& b) {
  long double num = 0, den = 0;
  for (xfmr::Index i = 0; i < b.rows(); ++i)
    for (xfmr::Index j = 0; j < b.cols(); ++j) {
      num = std::max(num, std::abs(static_cast<long double>(a(i, j)) - b(i, j)));
      den = std::max(den, std::abs(b(i, j)));
    }
  return static_cast<double>(num / den);
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_PERFORMER_HPP

// SPDX-License-Identifier: MIT
// Naive ReRoPE / leaky ReRoPE attention in long double, straight from the definition
// (SPEC §1.5.6): logit(i, j) = scale · ⟨R_{rel(i−j)} q_i, k_j⟩, causal softmax. One head.
#ifndef XFMR_TESTS_REFERENCE_REROPE_HPP
#define XFMR_TESTS_REFERENCE_REROPE_HPP

#include <cmath>
#include <vector>

#include <xfmr/attention/rerope.hpp>
#include <xfmr/types.hpp>

namespace xfmr_ref {

using LMatrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// rel(Δ): Δ inside the window, w (ReRoPE, k = 0) or w + (Δ − w)/k (leaky) beyond.
inline long double rerope_rel(long long delta, long long w, long double k) {
  if (delta < w) return static_cast<long double>(delta);
  return k == 0 ? static_cast<long double>(w) : w + (delta - w) / k;
}

/// q (n_q × d), k, v (n_k × ·); query t at position n_k − n_q + t; causal.
template <typename T>
LMatrix rerope_attention(const xfmr::RowMatrix<T>& q, const xfmr::RowMatrix<T>& k,
                         const xfmr::RowMatrix<T>& v, const xfmr::ReRopeConfig& c) {
  const long long d = q.cols(), rot = c.rotary_dim == 0 ? d : c.rotary_dim, half = rot / 2;
  const long long nq = q.rows(), nk = k.rows(), off = nk - nq;
  const long double scale = c.scale > 0 ? c.scale : 1.0L / std::sqrt(static_cast<long double>(d));
  const bool inter = c.layout == xfmr::RopeLayout::Interleaved;
  // cos/sin of rel(Δ)·θ_r depend on Δ only: tabulate them once per Δ.
  LMatrix cs(nk, half), sn(nk, half);
  for (long long delta = 0; delta < nk; ++delta) {
    const long double rel = rerope_rel(delta, c.window, c.leaky_factor);
    for (long long r = 0; r < half; ++r) {
      const long double theta = std::pow(static_cast<long double>(c.base), -2.0L * r / rot);
      cs(delta, r) = std::cos(rel * theta);
      sn(delta, r) = std::sin(rel * theta);
    }
  }
  LMatrix out = LMatrix::Zero(nq, v.cols());
  for (long long t = 0; t < nq; ++t) {
    const long long i = off + t;
    std::vector<long double> s(static_cast<std::size_t>(i + 1));
    long double mx = -INFINITY;
    for (long long j = 0; j <= i; ++j) {
      long double dot = 0;
      for (long long r = 0; r < half; ++r) {
        const long long a = inter ? 2 * r : r, b = inter ? 2 * r + 1 : r + half;
        const long double co = cs(i - j, r), si = sn(i - j, r);
        const long double qa = q(t, a), qb = q(t, b);
        dot += (qa * co - qb * si) * k(j, a) + (qa * si + qb * co) * k(j, b);  // ⟨R_rel q, k⟩
      }
      for (long long r = rot; r < d; ++r) dot += static_cast<long double>(q(t, r)) * k(j, r);
      s[std::size_t(j)] = scale * dot;
      mx = std::max(mx, s[std::size_t(j)]);
    }
    long double den = 0;
    for (long long j = 0; j <= i; ++j) {
      const long double e = std::exp(s[std::size_t(j)] - mx);
      den += e;
      for (long long x = 0; x < v.cols(); ++x) out(t, x) += e * v(j, x);
    }
    out.row(t) /= den;
  }
  return out;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_REROPE_HPP

// SPDX-License-Identifier: MIT
// Naive double softmax attention: explicit O(n²) scores, two-pass softmax per row, masks from
// their SPEC §4.2 definitions (written without the library's tiling or mask resolution).
#ifndef XFMR_TESTS_REFERENCE_ATTENTION_HPP
#define XFMR_TESTS_REFERENCE_ATTENTION_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include <xfmr/types.hpp>

namespace xfmr_ref {

using DMat = xfmr::RowMatrix<double>;

/// Everything that decides s_ij and whether (i, j) is allowed, for one call.
struct AttentionRef {
  long d = 0, dv = 0;                                 // per-head sizes
  std::function<double(long i, long nq, long nk)> lambda;  // λ_i (default 1/√d)
  bool causal = false;                                // j ≤ nk − nq + i
  long key_length = -1;                               // j < key_length
  std::vector<bool> key_valid;                        // key_valid[j]
  std::vector<int> segments;                          // UniLM: cumsum(seg)[j] ≤ cumsum(seg)[p_i]
  std::function<bool(long i, long j)> allowed;        // arbitrary
  std::function<double(long h, long i, long j)> bias; // additive
};

inline bool ref_allowed(const AttentionRef& c, long i, long j, long nq, long nk) {
  const long p = nk - nq + i;
  if (c.causal && j > p) return false;
  if (c.key_length >= 0 && j >= c.key_length) return false;
  if (!c.key_valid.empty() && !c.key_valid[std::size_t(j)]) return false;
  if (!c.segments.empty()) {
    if (p < 0) return false;
    long cj = 0, cp = 0;
    for (long t = 0; t <= j; ++t) cj += c.segments[std::size_t(t)];
    for (long t = 0; t <= p; ++t) cp += c.segments[std::size_t(t)];
    if (cj > cp) return false;
  }
  if (c.allowed && !c.allowed(i, j)) return false;
  return true;
}

/// The weights a_ij of head h (nq × nk); rows with no allowed key are all zero.
template <class Q, class K>
DMat attention_weights(const AttentionRef& c, const Q& q, const K& k, long h, long kvh) {
  const long nq = long(q.rows()), nk = long(k.rows());
  DMat a = DMat::Zero(nq, nk);
  for (long i = 0; i < nq; ++i) {
    const double lam = c.lambda ? c.lambda(i, nq, nk) : 1.0 / std::sqrt(double(c.d));
    std::vector<double> s(std::size_t(nk), -std::numeric_limits<double>::infinity());
    double mx = -std::numeric_limits<double>::infinity();
    for (long j = 0; j < nk; ++j) {
      if (!ref_allowed(c, i, j, nq, nk)) continue;
      double dot = 0;
      for (long t = 0; t < c.d; ++t) dot += double(q(i, h * c.d + t)) * double(k(j, kvh * c.d + t));
      s[std::size_t(j)] = lam * dot + (c.bias ? c.bias(h, i, j) : 0.0);
      mx = std::max(mx, s[std::size_t(j)]);
    }
    if (mx == -std::numeric_limits<double>::infinity()) continue;
    double sum = 0;
    for (long j = 0; j < nk; ++j) sum += std::exp(s[std::size_t(j)] - mx);  // pass 2
    for (long j = 0; j < nk; ++j) a(i, j) = std::exp(s[std::size_t(j)] - mx) / sum;
  }
  return a;
}

/// out (nq × H·dv) for q (nq × H·d), k (nk × H_kv·d), v (nk × H_kv·dv).
template <class Q, class K, class V>
DMat softmax_attention(const AttentionRef& c, const Q& q, const K& k, const V& v) {
  const long heads = long(q.cols()) / c.d, kv_heads = long(k.cols()) / c.d;
  const long nq = long(q.rows()), nk = long(k.rows());
  DMat out = DMat::Zero(nq, heads * c.dv);
  for (long h = 0; h < heads; ++h) {
    const long kvh = h / (heads / kv_heads);
    const DMat a = attention_weights(c, q, k, h, kvh);
    for (long i = 0; i < nq; ++i)
      for (long j = 0; j < nk; ++j)
        if (a(i, j) != 0)
          for (long t = 0; t < c.dv; ++t) out(i, h * c.dv + t) += a(i, j) * double(v(j, kvh * c.dv + t));
  }
  return out;
}

/// max |x − y| / max(max |y|, tiny): error relative to the output's magnitude.
template <class X>
double rel_error(const X& x, const DMat& y) {
  const double scale = std::max(y.cwiseAbs().maxCoeff(), 1e-300);
  return (x.template cast<double>() - y).cwiseAbs().maxCoeff() / scale;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_ATTENTION_HPP

// SPDX-License-Identifier: MIT
// Naive long-double softmax-attention partials (SPEC §18) of one block of keys, straight from
// the definitions m = max s, l = Σ e^{s−m}, o = Σ e^{s−m} v, and the attention o / l they give.
// Masks and scales come from reference/attention.hpp's AttentionRef (ref_allowed).
#ifndef XFMR_TESTS_REFERENCE_ATTENTION_PARTIALS_HPP
#define XFMR_TESTS_REFERENCE_ATTENTION_PARTIALS_HPP

#include <cmath>
#include <limits>
#include <vector>

#include "attention.hpp"

namespace xfmr_ref {

using LMat = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct PartialsLd {
  LMat m, l, o;  // rows × heads, rows × heads, rows × heads·dv
};

/// The partials of q (nq × H·d) against the block k, v (nk rows): (i, j) allowed per
/// ref_allowed(c, i, j, nq, nk); λ_i from c.lambda (default 1/√d), bias from c.bias.
template <class Q, class K, class V>
PartialsLd attention_partials_ld(const AttentionRef& c, const Q& q, const K& k, const V& v) {
  const long heads = long(q.cols()) / c.d, kv_heads = long(k.cols()) / c.d;
  const long nq = long(q.rows()), nk = long(k.rows());
  const long double ninf = -std::numeric_limits<long double>::infinity();
  PartialsLd p;
  p.m = LMat::Constant(nq, heads, ninf);
  p.l = LMat::Zero(nq, heads);
  p.o = LMat::Zero(nq, heads * c.dv);
  for (long h = 0; h < heads; ++h) {
    const long kvh = h / (heads / kv_heads);
    for (long i = 0; i < nq; ++i) {
      const long double lam = c.lambda ? c.lambda(i, nq, nk) : 1.0L / std::sqrt((long double)c.d);
      std::vector<long double> s(std::size_t(nk), ninf);
      for (long j = 0; j < nk; ++j) {
        if (!ref_allowed(c, i, j, nq, nk)) continue;
        long double dot = 0;
        for (long t = 0; t < c.d; ++t)
          dot += (long double)q(i, h * c.d + t) * (long double)k(j, kvh * c.d + t);
        s[std::size_t(j)] = lam * dot + (c.bias ? (long double)c.bias(h, i, j) : 0.0L);
        p.m(i, h) = std::max(p.m(i, h), s[std::size_t(j)]);
      }
      if (p.m(i, h) == ninf) continue;
      for (long j = 0; j < nk; ++j) {
        if (s[std::size_t(j)] == ninf) continue;
        const long double e = std::exp(s[std::size_t(j)] - p.m(i, h));
        p.l(i, h) += e;
        for (long t = 0; t < c.dv; ++t) p.o(i, h * c.dv + t) += e * (long double)v(j, kvh * c.dv + t);
      }
    }
  }
  return p;
}

/// Softmax attention in long double: the partials of all keys, o / l (zeros where l = 0), as a
/// double matrix for rel_error.
template <class Q, class K, class V>
DMat softmax_attention_ld(const AttentionRef& c, const Q& q, const K& k, const V& v) {
  const PartialsLd p = attention_partials_ld(c, q, k, v);
  DMat out = DMat::Zero(p.o.rows(), p.o.cols());
  for (long i = 0; i < long(p.o.rows()); ++i)
    for (long h = 0; h < long(p.m.cols()); ++h)
      if (p.l(i, h) != 0)
        for (long t = 0; t < c.dv; ++t)
          out(i, h * c.dv + t) = double(p.o(i, h * c.dv + t) / p.l(i, h));
  return out;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_ATTENTION_PARTIALS_HPP

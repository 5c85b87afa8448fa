// SPDX-License-Identifier: MIT
// Naive long-double linear attention: explicit O(n²) weights φ(q_i)·ϕ(k_j), written from SPEC
// §5.1–5.4 and §7.2 without the library (features from their definitions, no shifts).
#ifndef XFMR_TESTS_REFERENCE_LINEAR_ATTENTION_HPP
#define XFMR_TESTS_REFERENCE_LINEAR_ATTENTION_HPP

#include <cmath>
#include <functional>
#include <vector>

#include <xfmr/types.hpp>

#include "rope.hpp"

namespace xfmr_ref {

using LVec = std::vector<long double>;

enum class Map { EluPlusOne, Relu, Exp, OnePlusCosine, Taylor2, Custom, Efficient };

struct LinearRef {
  Map map = Map::EluPlusOne;
  long d = 0;
  long double relu_eps = 1e-3L;
  long double taylor_scale = 1;  // x' = s·x
  std::function<LVec(const LVec&)> custom;
  bool causal = false;
  long double eps = 1e-6L;
  // RoPE: numerator-only on features (features) or before the map (inputs); positions = row.
  enum class Rope { None, Features, Inputs } rope = Rope::None;
  bool interleaved = true;
  long double base = 10000;
};

inline LVec feature(const LinearRef& c, const LVec& x) {
  LVec y;
  switch (c.map) {
    case Map::EluPlusOne:
      for (long double v : x) y.push_back(v > 0 ? 1 + v : std::exp(v));
      break;
    case Map::Relu:
      for (long double v : x) y.push_back((v > 0 ? v : 0) + c.relu_eps);
      break;
    case Map::Exp:
    case Map::Efficient:
      for (long double v : x) y.push_back(std::exp(v));
      break;
    case Map::OnePlusCosine: {
      long double n2 = 0;
      for (long double v : x) n2 += v * v;
      y.push_back(1);
      for (long double v : x) y.push_back(n2 > 0 ? v / std::sqrt(n2) : 0);
      break;
    }
    case Map::Taylor2: {
      // Full (uncompressed) map [1, x', vec(x' x'^T)/√2]: dot products equal the compressed one.
      LVec xs;
      for (long double v : x) xs.push_back(c.taylor_scale * v);
      y.push_back(1);
      for (long double v : xs) y.push_back(v);
      for (long double a : xs)
        for (long double b : xs) y.push_back(a * b / std::sqrt(2.0L));
      break;
    }
    case Map::Custom:
      y = c.custom(x);
      break;
  }
  return y;
}

inline long double dot(const LVec& a, const LVec& b) {
  long double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

template <typename T>
LVec row_head(const xfmr::RowMatrix<T>& x, long r, long h, long w) {
  return LVec(x.data() + r * x.cols() + h * w, x.data() + r * x.cols() + (h + 1) * w);
}

/// out_i = Σ_j num_ij v_j / (Σ_j den_ij + eps) over allowed j (valid, and j <= i if causal), with
/// den_ij = φ(q_i)·ϕ(k_j), num_ij = (R_i φ(q_i))·(R_j ϕ(k_j)) under feature RoPE, else den_ij;
/// Efficient non-causal: φ(q) = softmax(q), ϕ(K) = column softmax over valid keys, no normaliser.
/// A row whose normaliser is 0 is 0.
template <typename T>
Mat linear_attention(const LinearRef& c, const xfmr::RowMatrix<T>& q, const xfmr::RowMatrix<T>& k,
                     const xfmr::RowMatrix<T>& v, const std::vector<bool>& valid = {}) {
  const long d = c.d, heads = q.cols() / d, dv = v.cols() / heads, nq = q.rows(), nk = k.rows();
  Mat out = Mat::Zero(nq, v.cols());
  auto ok = [&](long j) { return valid.empty() || valid[j]; };
  for (long h = 0; h < heads; ++h) {
    std::vector<LVec> fq(nq), fk(nk), rq(nq), rk(nk);
    auto rotate_vec = [&](const LVec& x, long pos) {
      const auto theta = inv_freq(static_cast<long>(x.size()), c.base);
      return rotate(x.data(), static_cast<long>(x.size()), static_cast<long>(x.size()),
                    c.interleaved, pos, theta);
    };
    for (long i = 0; i < nq; ++i) {
      LVec x = row_head(q, i, h, d);
      if (c.rope == LinearRef::Rope::Inputs) x = rotate_vec(x, i);
      fq[i] = feature(c, x);
      if (c.map == Map::Efficient) {
        long double s = 0;
        for (long double e : fq[i]) s += e;
        for (long double& e : fq[i]) e /= s;
      }
      rq[i] = c.rope == LinearRef::Rope::Features ? rotate_vec(fq[i], i) : fq[i];
    }
    for (long j = 0; j < nk; ++j) {
      LVec x = row_head(k, j, h, d);
      if (c.rope == LinearRef::Rope::Inputs) x = rotate_vec(x, j);
      fk[j] = feature(c, x);
    }
    if (c.map == Map::Efficient && !c.causal) {
      for (long f = 0; f < d; ++f) {
        long double s = 0;
        for (long j = 0; j < nk; ++j)
          if (ok(j)) s += fk[j][f];
        for (long j = 0; j < nk; ++j) fk[j][f] /= s;
      }
    }
    for (long j = 0; j < nk; ++j)
      rk[j] = c.rope == LinearRef::Rope::Features ? rotate_vec(fk[j], j) : fk[j];
    for (long i = 0; i < nq; ++i) {
      long double den = 0;
      LVec num(dv, 0);
      for (long j = 0; j < nk; ++j) {
        if (!ok(j) || (c.causal && j > i)) continue;
        den += dot(fq[i], fk[j]);
        const long double w = dot(rq[i], rk[j]);
        for (long e = 0; e < dv; ++e) num[e] += w * v(j, h * dv + e);
      }
      if (!(c.map == Map::Efficient && !c.causal)) den += c.eps;
      else den = 1;
      for (long e = 0; e < dv; ++e) out(i, h * dv + e) = den > 0 ? num[e] / den : 0;
    }
  }
  return out;
}

/// f_n(x) = Σ_{k<=n} x^k/k! by direct summation of powers.
inline long double taylor_exp(long double x, int n) {
  long double s = 0, term = 1;
  for (int k = 0; k <= n; ++k) {
    s += term;
    term *= x / (k + 1);
  }
  return s;
}

/// Quadratic Taylor attention: weights f_n(λ q_i·k_j), row-normalised (causal: j <= i).
template <typename T>
Mat taylor_attention(const xfmr::RowMatrix<T>& q, const xfmr::RowMatrix<T>& k,
                     const xfmr::RowMatrix<T>& v, long d, long double lambda, int n, bool causal) {
  const long heads = q.cols() / d, dv = v.cols() / heads;
  Mat out = Mat::Zero(q.rows(), v.cols());
  for (long h = 0; h < heads; ++h)
    for (long i = 0; i < q.rows(); ++i) {
      long double den = 0;
      LVec num(dv, 0);
      for (long j = 0; j < k.rows(); ++j) {
        if (causal && j > i) continue;
        const long double w = taylor_exp(lambda * dot(row_head(q, i, h, d), row_head(k, j, h, d)), n);
        den += w;
        for (long e = 0; e < dv; ++e) num[e] += w * v(j, h * dv + e);
      }
      for (long e = 0; e < dv; ++e) out(i, h * dv + e) = num[e] / den;
    }
  return out;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_LINEAR_ATTENTION_HPP

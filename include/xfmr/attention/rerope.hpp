// SPDX-License-Identifier: MIT
// ReRoPE and leaky ReRoPE attention (Su, kexue 9708, repo bojone/rerope; SPEC §1.5.6).
#ifndef XFMR_ATTENTION_REROPE_HPP
#define XFMR_ATTENTION_REROPE_HPP

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../position/rope.hpp"
#include "../position/rope_scaling.hpp"
#include "../types.hpp"
#include "contract.hpp"
#include "mask.hpp"

XFMR_NAMESPACE_BEGIN

/// Configuration of ReRopeAttention<T>; validated by the constructor.
struct ReRopeConfig {
  Index head_dim = 0;                          ///< d, > 0
  Index rotary_dim = 0;                        ///< even, <= head_dim; 0 means head_dim
  double base = 10000.0;                       ///< θ_r = base^(−2r/rotary_dim)
  RopeLayout layout = RopeLayout::Interleaved;  ///< pair layout of q and k (SPEC §1.2)
  Index window = 512;                          ///< w >= 1: exact RoPE for i − j < w
  double leaky_factor = 0;                     ///< k: 0 = ReRoPE (k → ∞), > 1 = leaky ReRoPE
  double scale = 0;                            ///< logit scale; 0 means 1/√head_dim
};

/// Causal attention with ReRoPE / leaky ReRoPE relative positions (SPEC §1.5.6):
/// ```
///   rel(Δ) = Δ                      Δ < w      (Δ = i − j >= 0)
///   rel(Δ) = min(Δ, w)              ReRoPE
///   rel(Δ) = w + (Δ − w)/k          leaky ReRoPE, Δ >= w
///   logit(i, j) = scale · q_iᵀ R_{−rel(i−j)} k_j = scale · ⟨R_{rel} q_i, k_j⟩
///   out_i = Σ_{j <= i} softmax_j(logit(i, ·)) v_j
/// ```
/// q and k are NOT rotated by the caller (the key cache stays pre-RoPE). forward() computes the
/// two score sets of the paper, S1 = ⟨R_i q_i, R_j k_j⟩ (plain RoPE) and S2 = ⟨R_w q_i, k_j⟩
/// (ReRoPE) or ⟨R_{w+(i−w)/k} q_i, R_{j/k} k_j⟩ (leaky), and selects S1 where i − j < w, tile by
/// tile with the online softmax (key tiles entirely inside or outside the window compute only
/// one set). A single query (n_q = 1, decoding) is scored against the cache in one pass, ⟨R_rel q, k_j⟩ with the
/// raw q rotated by rel(i − j) per key inside the window; beyond it ReRoPE needs one rotation,
/// R_w q against the raw keys, and leaky ReRoPE rotates q by rel per key (O(n·d) sin/cos).
/// Angles are evaluated in double for real-valued positions.
///
/// Shapes: q (n_q × Hq·d), k (n_k × Hk·d), v (n_k × Hk·d_v), out (n_q × Hq·d_v); Hk divides Hq
/// (grouped-query: q head h reads kv head h / (Hq/Hk)); d_v = v.cols() / Hk. Query row t has
/// position n_k − n_q + t (the queries are the last n_q tokens of the keys: the contract's
/// bottom-right alignment, attention/contract.hpp), so n_q <= n_k; decoding is n_q < n_k.
/// Mask: ReRoPE is causal by construction (mask.causal may be set or not: it is implied); every
/// other AttentionMask part throws. pos0 is accepted and ignored (the logits depend on i − j).
/// Allocation: rotated copies (n × d per head) and tile scratch, sized on the first call and
/// when a call needs more; cost 2× the score FLOPs of plain attention in the window-crossing
/// tiles, plus O((n_q + n_k)·d) sin/cos per head.
/// Non-finite input is never silent (tested, prefill and decode): a NaN or inf in q_i makes row
/// i NaN, a NaN in k_j every row i >= j, an inf in v_j makes rows i >= j non-finite (rows
/// before j in its tile of 64 keys may turn non-finite too: a zero weight times inf).
/// Not thread-safe (forward uses the object's scratch): one object per thread;
/// distinct objects are independent.
/// \throws std::invalid_argument on a bad configuration or shapes.
template <typename T>
class ReRopeAttention : public AttentionForward<ReRopeAttention<T>, T> {
  friend class AttentionForward<ReRopeAttention<T>, T>;

  static_assert(detail::is_real_v<T>, "xfmr::ReRopeAttention<T>: T must be float or double");

 public:
  explicit ReRopeAttention(const ReRopeConfig& config) : m_config(config) {
    const char* where = "ReRopeAttention";
    detail::resolve_rotary_shape(m_config, where);
    detail::require(config.window >= 1, where, "window must be >= 1 (got window=", config.window,
                    ")");
    detail::require(config.leaky_factor == 0 ||
                        (std::isfinite(config.leaky_factor) && config.leaky_factor > 1),
                    where, "leaky_factor must be 0 (ReRoPE) or finite and > 1 (got leaky_factor=",
                    config.leaky_factor, ")");
    detail::require(std::isfinite(config.scale) && config.scale >= 0, where,
                    "scale must be finite and >= 0, 0 meaning 1/sqrt(head_dim) (got scale=",
                    config.scale, ")");
    validate_rope_frequencies(m_config.rotary_dim, config.base, RopeScaling{}, where);
    m_inv_freq = rope_inv_freq(m_config.rotary_dim, config.base, RopeScaling{});
    m_scale = config.scale > 0 ? config.scale : 1.0 / std::sqrt(static_cast<double>(config.head_dim));
  }

  /// rel(Δ) for Δ >= 0 (see the class comment).
  double relative_position(Index delta) const noexcept {
    const auto w = static_cast<double>(m_config.window), dd = static_cast<double>(delta);
    if (delta < m_config.window) return dd;
    return leaky() ? w + (dd - w) / m_config.leaky_factor : w;
  }

  /// Causal ReRoPE attention of the n_q queries at the end of the n_k keys (see the class
  /// comment and the contract in attention/contract.hpp). out must not overlap q, k or v.
  /// \throws std::invalid_argument on a shape mismatch, n_q > n_k, an unsupported mask part,
  ///         pos0 < 0, or overlapping out.
  using AttentionForward<ReRopeAttention<T>, T>::forward;

  /// The configuration, with rotary_dim resolved.
  const ReRopeConfig& config() const noexcept { return m_config; }

 private:
  static constexpr const char* kWhere = "ReRopeAttention";
  static constexpr Index kTile = 64;
  struct Shape {
    Index hq, hk, group, dv;
  };

  std::pair<Index, Index> tensor_dims() const noexcept { return {m_config.head_dim, 0}; }

  // One sequence (AttentionForward): batch and key_length are not used (padding is refused).
  void run(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v, MatrixRef<T> out,
           const AttentionMask<T>& mask, Index pos0, Index /*batch*/, Index /*key_length*/) {
    detail::check_mask_support(kWhere, mask, kMaskCausal,
                               "ReRoPE attention is causal by construction; padding, segments, "
                               "boolean masks and biases are not implemented");
    detail::require(pos0 >= 0, kWhere, "expected pos0 >= 0 (got pos0=", pos0, ")");
    const Shape s = check(q, k, v, out);
    if (q.rows() == 0) return;
    if (q.rows() == 1)
      decode_one(q, k, v, out, s);
    else
      prefill(q, k, v, out, s);
  }

  // The n_q >= 2 path (see the class comment).
  void prefill(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v, MatrixRef<T> out,
               const Shape& s) {
    const Index d = m_config.head_dim, nq = q.rows(), nk = k.rows(), off = nk - nq;
    const Index w = m_config.window;
    const double kf = m_config.leaky_factor;
    m_q1.resize(nq, d);
    m_q2.resize(nq, d);
    m_k1.resize(nk, d);
    m_k2.resize(nk, d);
    m_s1.resize(kTile, kTile);
    m_s2.resize(kTile, kTile);
    m_acc.resize(kTile, s.dv);
    m_max.resize(kTile);
    m_sum.resize(kTile);
    for (Index hk = 0; hk < s.hk; ++hk) {
      // Keys: K1 = R_j k_j; K2 = k_j (ReRoPE) or R_{j/k} k_j (leaky).
      for (Index j = 0; j < nk; ++j) {
        const T* kr = k.data() + j * k.outerStride() + hk * d;
        rotate(kr, static_cast<double>(j), m_k1.row(j).data());
        if (leaky())
          rotate(kr, static_cast<double>(j) / kf, m_k2.row(j).data());
        else
          std::copy(kr, kr + d, m_k2.row(j).data());
      }
      for (Index g = 0; g < s.group; ++g) {
        const Index h = hk * s.group + g;
        for (Index t = 0; t < nq; ++t) {
          const T* qr = q.data() + t * q.outerStride() + h * d;
          const auto i = static_cast<double>(off + t);
          rotate(qr, i, m_q1.row(t).data());
          rotate(qr, leaky() ? w + (i - w) / kf : static_cast<double>(w), m_q2.row(t).data());
        }
        auto vh = v.middleCols(hk * s.dv, s.dv);
        auto oh = out.middleCols(h * s.dv, s.dv);
        for (Index t0 = 0; t0 < nq; t0 += kTile) {
          const Index bq = std::min(kTile, nq - t0), i_lo = off + t0, i_hi = i_lo + bq - 1;
          auto acc = m_acc.topRows(bq);
          acc.setZero();
          m_max.head(bq).setConstant(-std::numeric_limits<T>::infinity());
          m_sum.head(bq).setZero();
          for (Index j0 = 0; j0 <= i_hi; j0 += kTile) {
            const Index bk = std::min(kTile, i_hi + 1 - j0), j_hi = j0 + bk - 1;
            const Index dmin = i_lo - j_hi, dmax = i_hi - j0;  // Δ range of the tile
            auto s1 = m_s1.topLeftCorner(bq, bk);
            auto s2 = m_s2.topLeftCorner(bq, bk);
            const bool need1 = dmin < w, need2 = dmax >= w;
            if (need1) s1.noalias() = m_q1.middleRows(t0, bq) * m_k1.middleRows(j0, bk).transpose();
            if (need2) s2.noalias() = m_q2.middleRows(t0, bq) * m_k2.middleRows(j0, bk).transpose();
            if (!need1) s1 = s2;
            if (need1 && (need2 || dmin < 0)) {
              for (Index a = 0; a < bq; ++a)
                for (Index b = 0; b < bk; ++b) {
                  const Index delta = i_lo + a - (j0 + b);
                  if (delta < 0)
                    s1(a, b) = -std::numeric_limits<T>::infinity();
                  else if (delta >= w)
                    s1(a, b) = s2(a, b);
                }
            }
            online_softmax_step(s1, vh.middleRows(j0, bk), acc, bq);
          }
          for (Index a = 0; a < bq; ++a) oh.row(t0 + a) = acc.row(a) / m_sum[a];
        }
      }
    }
  }

  // One query at position i = n − 1 against the unrotated key/value cache of n tokens (the
  // cache includes the query's own key), one pass; equals the last row of prefill.
  void decode_one(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v,
                  MatrixRef<T> out, const Shape& s) {
    const Index d = m_config.head_dim, n = k.rows(), i = n - 1, w = m_config.window;
    m_scores.resize(n);
    m_q1.resize(1, d);
    m_q2.resize(1, d);
    for (Index h = 0; h < s.hq; ++h) {
      const Index hk = h / s.group;
      const T* qh = q.data() + h * d;
      // Beyond the window (j <= i − w) ReRoPE has one relative rotation: ⟨R_w q, k_j⟩.
      if (!leaky()) rotate(qh, static_cast<double>(w), m_q2.data());
      T mx = -std::numeric_limits<T>::infinity();
      for (Index j = 0; j < n; ++j) {
        const T* kj = k.data() + j * k.outerStride() + hk * d;
        const Index delta = i - j;
        const T* qr = m_q2.data();
        if (delta < w || leaky()) {
          rotate(qh, relative_position(delta), m_q1.data());  // ⟨R_rel q, k_j⟩
          qr = m_q1.data();
        }
        T dot = 0;
        for (Index c = 0; c < d; ++c) dot += qr[c] * kj[c];
        m_scores[j] = static_cast<T>(m_scale) * dot;
        mx = std::max(mx, m_scores[j]);
      }
      T sum = 0;
      for (Index j = 0; j < n; ++j) {
        m_scores[j] = std::exp(m_scores[j] - mx);
        sum += m_scores[j];
      }
      auto o = out.middleCols(h * s.dv, s.dv);
      o.noalias() = m_scores.transpose() * v.middleCols(hk * s.dv, s.dv);
      o /= sum;
    }
  }

  bool leaky() const noexcept { return m_config.leaky_factor != 0; }

  Shape check(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v,
              MatrixRef<T> out) const {
    const detail::AttentionShape s =
        detail::check_attention_shapes(kWhere, q, k, v, out, m_config.head_dim, 0);
    detail::require(q.rows() <= k.rows(), kWhere,
                    "expected q.rows() <= k.rows(): the queries are the last tokens of the keys "
                    "(got q.rows()=",
                    q.rows(), ", k.rows()=", k.rows(), ")");
    detail::check_attention_overlap(kWhere, q, k, v, out);
    return Shape{s.heads, s.kv_heads, s.group, s.d_v};
  }

  // y = R_pos x for one head (pos real): pairs (a_r, b_r) rotated by pos·θ_r, the channels past
  // rotary_dim copied. Angles in double.
  void rotate(const T* x, double pos, T* y) const {
    const Index half = m_config.rotary_dim / 2, d = m_config.head_dim;
    const bool inter = m_config.layout == RopeLayout::Interleaved;
    for (Index r = 0; r < half; ++r) {
      const Index a = inter ? 2 * r : r, b = inter ? 2 * r + 1 : r + half;
      const double ang = pos * m_inv_freq[static_cast<std::size_t>(r)];
      const double c = std::cos(ang), s = std::sin(ang);
      const double xa = x[a], xb = x[b];
      y[a] = static_cast<T>(xa * c - xb * s);
      y[b] = static_cast<T>(xa * s + xb * c);
    }
    for (Index c = m_config.rotary_dim; c < d; ++c) y[c] = x[c];
  }

  // Online softmax over one key tile: scores s (bq × bk, unscaled, −inf where masked).
  template <typename S, typename Vb, typename Acc>
  void online_softmax_step(S& s, const Vb& v, Acc& acc, Index bq) {
    const T scale = static_cast<T>(m_scale);
    for (Index a = 0; a < bq; ++a) {
      auto row = s.row(a);
      const T tile_max = row.maxCoeff() * scale;  // scale > 0 keeps the argmax
      if (tile_max == -std::numeric_limits<T>::infinity()) {
        row.setZero();
        continue;
      }
      const T m_new = std::max(m_max[a], tile_max);
      const T f = std::exp(m_max[a] - m_new);  // 0 on the first tile
      row = (row.array() * scale - m_new).exp().matrix();
      m_sum[a] = m_sum[a] * f + row.sum();
      acc.row(a) *= f;
      m_max[a] = m_new;
    }
    acc.noalias() += s * v;
  }

  ReRopeConfig m_config;
  std::vector<double> m_inv_freq;
  double m_scale = 1;
  RowMatrix<T> m_q1, m_q2, m_k1, m_k2, m_s1, m_s2, m_acc;
  Eigen::Matrix<T, Eigen::Dynamic, 1> m_max, m_sum, m_scores;
};

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_REROPE_HPP

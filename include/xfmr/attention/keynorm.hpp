// SPDX-License-Identifier: MIT
// KeyNorm, QueryNorm, cosine attention and QK-RMSNorm (kexue 9859; Henry et al. arXiv
// 2010.04245; SPEC §8): per-head transforms of q and k that feed SoftmaxAttention.
#ifndef XFMR_ATTENTION_KEYNORM_HPP
#define XFMR_ATTENTION_KEYNORM_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/isa.hpp"
#include "../simd/norm.hpp"
#include "../types.hpp"
#include "contract.hpp"
#include "scale.hpp"

XFMR_NAMESPACE_BEGIN

/// Which of q and k are normalised per head (x̂ = x / max(‖x‖, ε)):
///   None:    nothing; attention keeps 1/√d
///   Key:     KNA, a_ij ∝ exp(q_i·k̂_j), no 1/√d
///   Query:   QNA, a_ij ∝ exp(q̂_i·k_j), no 1/√d
///   Cosine:  CosA, a_ij ∝ exp(λ_i·q̂_i·k̂_j), λ = 4·ln n (n fixed, or n = position + 1), or a
///            user λ (QK-Norm's learnable scalar g)
///   QkRms:   modern "QK-norm": RMSNorm with per-channel gains γ_q, γ_k on q and k (before
///            RoPE), attention keeps 1/√d. Not equivalent to KeyNorm: the gains make norms vary.
enum class QkNormKind { None, Key, Query, Cosine, QkRms };

struct QkNormConfig {
  QkNormKind kind = QkNormKind::Key;
  Index head_dim = 0;             ///< d, >= 1; q and k widths must be multiples of it
  double eps = 1e-6;              ///< Key/Query/Cosine: norm floor; QkRms: added to mean(x²)
  double cosine_lambda = 0.0;     ///< Cosine: λ if > 0; 0 means 4·ln n
  Index cosine_length = 0;        ///< Cosine with λ = 4·ln n: n if > 0; 0 means n = position + 1
};

/// KeyNorm / QueryNorm / cosine / QK-RMSNorm attention is one way of running the attention
/// contract (attention/contract.hpp): a transform of q and k, then any softmax flavour.
///   QkNorm<T> norm(cfg);
///   norm.forward(q, k, pos0);                 // q, k normalised in place, per head
///   SoftmaxAttention<T>({d, 0, norm.attention_scale()}).forward(q, k, v, out, mask, pos0);
/// forward() takes the same q, k and pos0 as the attention call (key row j at pos0 + j, query
/// row i at pos0 + n_k − n_q + i). Cosine's λ_i is folded into the query rows (row i scaled by
/// λ(position_i)), so the per-position form works with every mask and with decoding (n_q = n_k
/// = 1 new rows at pos0 = t, the cache holding normalised keys). Norms are rotation invariant,
/// so forward() commutes with RoPE (tested); any mask, GQA or ReRoPE composes unchanged. A
/// transform rather than a SoftmaxAttentionConfig member: it keeps the softmax hot loop
/// untouched and serves ReRoPE and the KV cache alike. No allocation.
/// Non-finite input: a NaN or inf in a q or k row gives a NaN (or, for inf, NaN from inf/inf)
/// normalised row, which SoftmaxAttention then propagates (see its comment; tested end to end
/// for every kind).
/// Thread-safe: forward() is const and uses no scratch, so they may run concurrently;
/// changing the gains (query_gain(), key_gain()) meanwhile is a data race.
template <typename T, class Isa = simd::native_isa>
class QkNorm {
  static_assert(detail::is_real_v<T>, "xfmr::QkNorm<T>: T must be float or double");

 public:
  explicit QkNorm(const QkNormConfig& config)
      : m_config(config),
        m_query_gain(RowVector<T>::Ones(config.head_dim > 0 ? config.head_dim : 0)),
        m_key_gain(RowVector<T>::Ones(config.head_dim > 0 ? config.head_dim : 0)) {
    const char* where = "QkNorm";
    detail::require(config.head_dim >= 1, where, "head_dim must be >= 1 (got ", config.head_dim,
                    ")");
    detail::require(std::isfinite(config.eps) && config.eps > 0, where,
                    "eps must be finite and > 0 (got ", config.eps, ")");
    detail::require(std::isfinite(config.cosine_lambda) && config.cosine_lambda >= 0, where,
                    "cosine_lambda must be finite and >= 0 (0: 4 ln n) (got ", config.cosine_lambda,
                    ")");
    detail::require(config.cosine_length >= 0, where, "cosine_length must be >= 0 (got ",
                    config.cosine_length, ")");
  }

  const QkNormConfig& config() const noexcept { return m_config; }
  RowVector<T>& query_gain() noexcept { return m_query_gain; }  ///< QkRms γ_q (1 × d)
  RowVector<T>& key_gain() noexcept { return m_key_gain; }      ///< QkRms γ_k (1 × d)

  /// The scale to give SoftmaxAttention: 1/√d for None and QkRms, none otherwise.
  AttentionScale attention_scale() const noexcept {
    const QkNormKind k = m_config.kind;
    return k == QkNormKind::None || k == QkNormKind::QkRms ? AttentionScale::inv_sqrt_dim()
                                                           : AttentionScale::none();
  }

  /// λ of Cosine for a query at absolute position `pos`.
  double cosine_lambda(Index pos) const noexcept {
    if (m_config.cosine_lambda > 0) return m_config.cosine_lambda;
    const Index n = m_config.cosine_length > 0 ? m_config.cosine_length : pos + 1;
    return 4.0 * std::log(static_cast<double>(n));
  }

  /// Normalises q (n_q × H·d) and k (n_k × H_kv·d) in place, per head (see the class comment;
  /// q or k may have zero rows). q and k must not overlap.
  /// \throws std::invalid_argument if a width is not a multiple of head_dim, pos0 < 0, the
  ///         QkRms gains are not head_dim long, or q and k overlap.
  void forward(MatrixRef<T> q, MatrixRef<T> k, Index pos0 = 0) const {
    check(q, "q");
    check(k, "k");
    detail::require(pos0 >= 0, "QkNorm", "expected pos0 >= 0 (got pos0=", pos0, ")");
    detail::require(!detail::views_overlap(q.data(), q.outerStride(), q.rows(),
                                                     q.cols(), k.data(), k.outerStride(),
                                                     k.rows(), k.cols()),
                    "QkNorm", "expected q and k not to overlap (got overlapping views)");
    const Index qpos0 = pos0 + k.rows() - q.rows();
    switch (m_config.kind) {
      case QkNormKind::Query: normalize(q, [](Index) { return 1.0; }); break;
      case QkNormKind::Cosine:
        normalize(q, [&](Index r) { return cosine_lambda(std::max<Index>(0, qpos0 + r)); });
        break;
      case QkNormKind::QkRms: rms(q, m_query_gain, "query_gain"); break;
      default: break;
    }
    switch (m_config.kind) {
      case QkNormKind::Key:
      case QkNormKind::Cosine: normalize(k, [](Index) { return 1.0; }); break;
      case QkNormKind::QkRms: rms(k, m_key_gain, "key_gain"); break;
      default: break;
    }
  }

 private:
  void check(const MatrixRef<T>& x, const char* name) const {
    detail::require(x.cols() % m_config.head_dim == 0, "QkNorm", "expected the ", name,
                    " width to be a multiple of head_dim=", m_config.head_dim, " (got ", x.cols(),
                    ")");
  }

  template <class RowScale>
  void normalize(MatrixRef<T> x, RowScale row_scale) const {
    const Index d = m_config.head_dim, heads = x.cols() / d;
    const T eps = static_cast<T>(m_config.eps);
    for (Index r = 0; r < x.rows(); ++r) {
      const T scale = static_cast<T>(row_scale(r));
      T* row = x.data() + r * x.outerStride();
      for (Index h = 0; h < heads; ++h)
        simd::l2_normalize_row<Isa>(row + h * d, row + h * d, static_cast<std::size_t>(d), eps,
                                    scale);
    }
  }

  void rms(MatrixRef<T> x, const RowVector<T>& gain, const char* name) const {
    const Index d = m_config.head_dim, heads = x.cols() / d;
    detail::require(gain.size() == d, "QkNorm", name, " must have head_dim=", d,
                    " entries (got ", gain.size(), ")");
    const T eps = static_cast<T>(m_config.eps);
    for (Index r = 0; r < x.rows(); ++r) {
      T* row = x.data() + r * x.outerStride();
      for (Index h = 0; h < heads; ++h)
        simd::rms_norm_row<Isa>(row + h * d, row + h * d, static_cast<std::size_t>(d), gain.data(),
                                eps);
    }
  }

  QkNormConfig m_config;
  RowVector<T> m_query_gain, m_key_gain;
};

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_KEYNORM_HPP

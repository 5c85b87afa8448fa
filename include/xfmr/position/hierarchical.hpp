// SPDX-License-Identifier: MIT
// Hierarchical decomposition of a learned absolute position table: n trained positions extended
// to n² (Su, "hierarchical decomposition position encoding", kexue.fm/archives/7947).
#ifndef XFMR_POSITION_HIERARCHICAL_HPP
#define XFMR_POSITION_HIERARCHICAL_HPP

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// Extends a learned position table E (n × D, row p = embedding of position p) to n² positions
/// by reading a position as two base-n digits (SPEC §3.2, 0-based as in bert4keras):
///
///   u      = (E − α·E[0]) / (1 − α)                       (n × D)
///   emb(p) = α·u[p / n] + (1 − α)·u[p % n],               0 <= p < n²
///
/// For p < n this is E[p] exactly in exact arithmetic; lookup returns E's row bit for bit there
/// (a copy, no arithmetic), so a model fine-tuned within n positions sees no change. α ≠ 0.5
/// keeps (a, c) and (c, a) apart; Su recommends α < 0.5 so the fine digit p % n dominates.
///
/// Numerics: u is computed in double and stored rounded to T; emb is then formed in double from
/// the stored u and rounded once to T.
/// Thread-safe: const methods share only the immutable tables.
template <typename T>
class HierarchicalPositionEmbedding {
  static_assert(detail::is_real_v<T>,
                "xfmr::HierarchicalPositionEmbedding<T>: T must be float or double");

 public:
  /// table: the learned E (n × D), copied. alpha: α, default 0.4 as in the post.
  /// \throws std::invalid_argument if the table is empty or α is not finite, in (0, 1) and
  ///         != 0.5.
  explicit HierarchicalPositionEmbedding(ConstMatrixRef<T> table, double alpha = 0.4)
      : m_alpha(alpha) {
    const char* where = "HierarchicalPositionEmbedding";
    detail::require(table.rows() > 0 && table.cols() > 0, where,
                    "table must be non-empty (got ", table.rows(), "x", table.cols(), ")");
    detail::require(std::isfinite(alpha) && alpha > 0.0 && alpha < 1.0 && alpha != 0.5, where,
                    "alpha must be finite, in (0, 1) and != 0.5 (got alpha=", alpha, ")");
    const Index n = table.rows(), D = table.cols();
    constexpr Index kMaxRows = Index(3037000499);  // n² fits in Index
    detail::require(n <= kMaxRows, where, "table must have at most 3037000499 rows (got ", n,
                    ")");
    m_table = table;
    m_u.resize(n, D);
    for (Index p = 0; p < n; ++p)
      for (Index j = 0; j < D; ++j)
        m_u(p, j) = static_cast<T>((static_cast<double>(table(p, j)) -
                                    alpha * static_cast<double>(table(0, j))) /
                                   (1.0 - alpha));
  }

  /// Row t of out is emb(ids[t]). out: (ids.size() × D), rows may be strided, written only.
  /// \throws std::invalid_argument if out is not (ids.size() × D) or an id is outside [0, n²).
  void lookup(ConstPositionsRef ids, MatrixRef<T> out) const {
    require_shape(ids.size(), out);
    for (Index t = 0; t < ids.size(); ++t)
      detail::require(ids[t] >= 0 && ids[t] < max_positions(), "HierarchicalPositionEmbedding",
                      "position ids must be in [0, n²=", max_positions(), ") (got ids[", t,
                      "]=", ids[t], ")");
    for (Index t = 0; t < ids.size(); ++t) row(static_cast<Index>(ids[t]), out, t);
  }

  /// Consecutive positions: row t of out is emb(pos0 + t). out: (tokens × D), written only.
  /// \throws std::invalid_argument if out.cols() != D, pos0 < 0 or pos0 + tokens > n².
  void lookup(Index pos0, MatrixRef<T> out) const {
    require_shape(out.rows(), out);
    detail::require(pos0 >= 0 && pos0 <= max_positions() - out.rows(),
                    "HierarchicalPositionEmbedding",
                    "pos0 must be >= 0 and pos0 + tokens <= n²=", max_positions(),
                    " (got pos0=", pos0, ", tokens=", out.rows(), ")");
    for (Index t = 0; t < out.rows(); ++t) row(pos0 + t, out, t);
  }

  /// n², one past the largest position.
  Index max_positions() const noexcept { return m_table.rows() * m_table.rows(); }
  /// n, the rows of the learned table.
  Index table_positions() const noexcept { return m_table.rows(); }
  /// D, the embedding width.
  Index dim() const noexcept { return m_table.cols(); }
  double alpha() const noexcept { return m_alpha; }
  /// The learned table E, as given.
  const RowMatrix<T>& table() const noexcept { return m_table; }
  /// The decomposed table u = (E − α·E[0]) / (1 − α), rounded to T.
  const RowMatrix<T>& u() const noexcept { return m_u; }

 private:
  void require_shape(Index tokens, const MatrixRef<T>& out) const {
    detail::require(out.rows() == tokens && out.cols() == dim(), "HierarchicalPositionEmbedding",
                    "out must be ", tokens, "x", dim(), " (got ", out.rows(), "x", out.cols(),
                    ")");
  }

  void row(Index pos, MatrixRef<T>& out, Index t) const {
    const Index n = m_table.rows(), D = m_table.cols();
    T* y = out.data() + t * out.outerStride();
    if (pos < n) {  // exact: the original row
      std::memcpy(y, m_table.data() + pos * D, static_cast<std::size_t>(D) * sizeof(T));
      return;
    }
    const T* hi = m_u.data() + (pos / n) * D;
    const T* lo = m_u.data() + (pos % n) * D;
    const double a = m_alpha, b = 1.0 - m_alpha;
    for (Index j = 0; j < D; ++j)
      y[j] = static_cast<T>(a * static_cast<double>(hi[j]) + b * static_cast<double>(lo[j]));
  }

  double m_alpha;
  RowMatrix<T> m_table;  // E, n × D
  RowMatrix<T> m_u;      // u, n × D
};

XFMR_NAMESPACE_END

#endif  // XFMR_POSITION_HIERARCHICAL_HPP

// SPDX-License-Identifier: MIT
// Mergeable softmax-attention partials for blocks of keys (SPEC §18): per query row and head the
// running max m, the sum of exponentials l and the unnormalised accumulator o, merged exactly
// (up to rounding) in any order; the building block of ring attention.
#ifndef XFMR_ATTENTION_PARTIALS_HPP
#define XFMR_ATTENTION_PARTIALS_HPP

#include <cmath>
#include <limits>

#include "../config.hpp"
#include "../detail/eigen.hpp"
#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// Softmax-attention partials of n query rows and H heads over a block B of keys (SPEC §18):
///   m(i, h) = max_{j∈B allowed} s_ij,   l(i, h) = Σ_{j∈B allowed} e^{s_ij − m},
///   o(i, h·d_v + t) = Σ_{j∈B allowed} e^{s_ij − m} v_jt,
/// with s_ij the scaled score of SoftmaxAttention (λ_i·q_i·k_j + bias_ij). A row with no allowed
/// key in B holds the identity m = −∞, l = 0, o = 0. Shapes: m and l are (rows × heads), o is
/// (rows × heads·value_dim), head h at columns [h·d_v, (h+1)·d_v) as in the attention output.
///
/// Produced by SoftmaxAttention::forward_partial (one key block; the running max m is the
/// block's true maximum), combined by merge() and turned into attention by finish():
///   merge:  m = max(m₁, m₂), l = e^{m₁−m}·l₁ + e^{m₂−m}·l₂, o = e^{m₁−m}·o₁ + e^{m₂−m}·o₂,
///   finish: out = o / l, and exact zeros where l = 0 (no allowed key in any block).
/// Merging is associative and commutative up to rounding, so the blocks of a sequence merged in
/// any order give full attention; a fixed merge order gives bit-identical results run to run.
/// The identity (m = −∞) merges exactly: merging it changes nothing, and merging into it copies.
/// Non-finite values propagate: a NaN m or l (a NaN input in the block) makes the merged row NaN.
///
/// A plain value (public members, like AttentionMask): members may be read, written and sent
/// (each is one contiguous row-major buffer); merge() and finish() check the shapes.
template <typename T>
struct AttentionPartials {
  static_assert(detail::is_real_v<T>, "xfmr::AttentionPartials<T>: T must be float or double");

  RowMatrix<T> m;  ///< running max per row and head (rows × heads)
  RowMatrix<T> l;  ///< sum of e^{s − m} per row and head (rows × heads)
  RowMatrix<T> o;  ///< unnormalised accumulator Σ e^{s − m} v (rows × heads·value_dim)

  AttentionPartials() = default;
  /// The identity for `rows` query rows, `heads` heads of value_dim values each.
  /// \throws std::invalid_argument if a size is negative.
  AttentionPartials(Index rows, Index heads, Index value_dim) { reset(rows, heads, value_dim); }

  /// Sets the shape and the identity (m = −∞, l = 0, o = 0) everywhere. Allocates only when the
  /// number of elements changes. \throws std::invalid_argument if a size is negative.
  void reset(Index rows, Index heads, Index value_dim) {
    detail::require(rows >= 0 && heads >= 0 && value_dim >= 0, kWhere,
                    "expected rows, heads and value_dim >= 0 (got ", rows, ", ", heads, ", ",
                    value_dim, ")");
    m.resize(rows, heads);
    l.resize(rows, heads);
    o.resize(rows, heads * value_dim);
    reset();
  }
  /// The identity everywhere, shape unchanged. noexcept.
  void reset() noexcept {
    m.setConstant(-std::numeric_limits<T>::infinity());
    l.setZero();
    o.setZero();
  }

  Index rows() const noexcept { return m.rows(); }
  Index heads() const noexcept { return m.cols(); }
  /// d_v: o.cols() / heads (0 without heads).
  Index value_dim() const noexcept { return m.cols() > 0 ? o.cols() / m.cols() : 0; }

  /// *this ← *this ⊕ other (see the class comment), row by row and head by head. Where other is
  /// the identity nothing changes; where *this is, other is copied (both exact). O(rows·heads·d_v)
  /// with one exp per row, head and side; no allocation.
  /// \throws std::invalid_argument unless both have the same rows, heads and value_dim and each
  ///         is consistent (l the shape of m, o.cols() a multiple of the heads).
  void merge(const AttentionPartials& other) {
    check("merge");
    other.check("merge");
    detail::require(other.rows() == rows() && other.heads() == heads() &&
                        other.o.cols() == o.cols(),
                    kWhere, "merge expected partials of the same shape: ", rows(), " rows, ",
                    heads(), " heads, value_dim=", value_dim(), " (got ", other.rows(),
                    " rows, ", other.heads(), " heads, o with ", other.o.cols(), " columns)");
    const T ninf = -std::numeric_limits<T>::infinity();
    const Index heads_ = heads(), dv = value_dim();
    for (Index i = 0; i < rows(); ++i) {
      for (Index h = 0; h < heads_; ++h) {
        const T m2 = other.m(i, h);
        if (m2 == ninf) continue;  // other is the identity here
        T* o1 = o.data() + i * o.cols() + h * dv;
        const T* o2 = other.o.data() + i * other.o.cols() + h * dv;
        const T m1 = m(i, h);
        if (m1 == ninf) {  // *this is the identity here: take other as it is
          m(i, h) = m2;
          l(i, h) = other.l(i, h);
          for (Index t = 0; t < dv; ++t) o1[t] = o2[t];
          continue;
        }
        // A NaN max must win (std::max would keep the other side and hide it).
        const T mx = (m1 != m1 || m2 != m2) ? std::numeric_limits<T>::quiet_NaN()
                                             : (m1 < m2 ? m2 : m1);
        const T a1 = std::exp(m1 - mx), a2 = std::exp(m2 - mx);
        m(i, h) = mx;
        l(i, h) = a1 * l(i, h) + a2 * other.l(i, h);
        for (Index t = 0; t < dv; ++t) o1[t] = a1 * o1[t] + a2 * o2[t];
      }
    }
  }

  /// out(i, h·d_v + t) = o(i, h·d_v + t) / l(i, h), and exact zeros where l(i, h) = 0 (a query
  /// with no allowed key in any block). out is (rows × heads·value_dim), any row stride; it may
  /// be o itself (same data and stride) and must not partly overlap it. No allocation.
  /// \throws std::invalid_argument on an inconsistent object, a wrong out shape, or a partial
  ///         overlap of out and o.
  void finish(MatrixRef<T> out) const {
    check("finish");
    detail::require(out.rows() == o.rows() && out.cols() == o.cols(), kWhere,
                    "finish expected out to be ", o.rows(), "x", o.cols(), " (got ", out.rows(),
                    "x", out.cols(), ")");
    detail::require_same_or_disjoint(o.data(), o.cols(), out.data(), out.outerStride(), o.rows(),
                                     o.cols(), kWhere);
    const Index heads_ = heads(), dv = value_dim();
    for (Index i = 0; i < rows(); ++i) {
      for (Index h = 0; h < heads_; ++h) {
        const T* src = o.data() + i * o.cols() + h * dv;
        T* dst = out.data() + i * out.outerStride() + h * dv;
        const T li = l(i, h);
        if (li == T(0)) {  // no allowed key anywhere: exact zeros (a NaN l flows through)
          for (Index t = 0; t < dv; ++t) dst[t] = T(0);
        } else {
          const T inv = T(1) / li;  // as SoftmaxAttention: one division per row and head
          for (Index t = 0; t < dv; ++t) dst[t] = src[t] * inv;
        }
      }
    }
  }

 private:
  static constexpr const char* kWhere = "AttentionPartials";

  void check(const char* what) const {
    detail::require(l.rows() == m.rows() && l.cols() == m.cols() && o.rows() == m.rows() &&
                        (m.cols() == 0 ? o.cols() == 0 : o.cols() % m.cols() == 0),
                    kWhere, what, " expected l to be ", m.rows(), "x", m.cols(), " and o ",
                    m.rows(), "x(heads·value_dim) with heads=", m.cols(), " (got l ", l.rows(),
                    "x", l.cols(), ", o ", o.rows(), "x", o.cols(), ")");
  }
};

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_PARTIALS_HPP

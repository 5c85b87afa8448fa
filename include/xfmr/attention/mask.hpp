// SPDX-License-Identifier: MIT
// Attention masks (SPEC §0.3, §4.2): causal, key padding, prefix-LM / UniLM segments, boolean
// masks and an additive bias, combined with AND and resolved per query row.
#ifndef XFMR_ATTENTION_MASK_HPP
#define XFMR_ATTENTION_MASK_HPP

#include <algorithm>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// Which keys each query may see, and an optional additive bias. Every part is optional; the
/// parts combine with AND. Views are non-owning: the arrays must outlive the attention call.
///
/// Query row i of an (n_q × ·) query matrix sits at absolute position p_i = n_k − n_q + i
/// ("bottom-right" alignment): with a KV cache of n_k keys the new queries are its last rows.
///   causal:       allowed(i, j) = j ≤ p_i
///   key_length:   allowed(i, j) = j < key_length          (right padding; −1 = no padding)
///   key_lengths:  the same, one length per batch sequence (tensor-4 overload; size 1 = all)
///   key_valid:    allowed(i, j) = key_valid[j]             (size n_k)
///   segment_ids:  UniLM / prefix-LM (bert4keras UniLM_Mask): with c = cumsum(seg) over the
///                 n_k keys, allowed(i, j) = c[j] ≤ c[p_i]: source tokens (seg 0) see the whole
///                 source, the t-th target token sees the source and targets 1…t.
///   allowed:      an arbitrary (n_q × n_k) boolean matrix (true = may attend)
///   bias:         added to the scaled scores, s_ij = λ_i·q_i·k_j + bias_ij; (n_q × n_k) shared
///                 by all heads, or (heads·n_q × n_k) with head h in rows [h·n_q, (h+1)·n_q).
///                 −inf entries act as masked; +inf and NaN are not allowed (not checked).
/// A query with no allowed key outputs the zero vector.
template <typename T>
struct AttentionMask {
  using BoolVector = Eigen::Matrix<bool, Eigen::Dynamic, 1>;
  using BoolMatrix = Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using SegmentVector = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1>;
  using LengthVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

  bool causal = false;
  Index key_length = -1;
  Eigen::Map<const LengthVector> key_lengths{nullptr, 0};
  Eigen::Map<const BoolVector> key_valid{nullptr, 0};
  Eigen::Map<const SegmentVector> segment_ids{nullptr, 0};
  Eigen::Map<const BoolMatrix, 0, Eigen::OuterStride<>> allowed{nullptr, 0, 0,
                                                                Eigen::OuterStride<>(0)};
  Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>> bias{nullptr, 0, 0,
                                                               Eigen::OuterStride<>(0)};

  template <typename M>
  using PlainTemporary = std::enable_if_t<
      !std::is_lvalue_reference_v<M> &&
      std::is_base_of_v<Eigen::PlainObjectBase<std::decay_t<M>>, std::decay_t<M>>>;

  /// Fluent setters (each stores a view of its argument).
  AttentionMask& set_causal(bool on = true) {
    causal = on;
    return *this;
  }
  AttentionMask& set_key_length(Index n) {
    key_length = n;
    return *this;
  }
  AttentionMask& set_key_lengths(const Eigen::Ref<const LengthVector>& n) {
    new (&key_lengths) Eigen::Map<const LengthVector>(n.data(), n.size());
    return *this;
  }
  AttentionMask& set_key_valid(const Eigen::Ref<const BoolVector>& v) {
    new (&key_valid) Eigen::Map<const BoolVector>(v.data(), v.size());
    return *this;
  }
  AttentionMask& set_segment_ids(const Eigen::Ref<const SegmentVector>& seg) {
    new (&segment_ids) Eigen::Map<const SegmentVector>(seg.data(), seg.size());
    return *this;
  }
  AttentionMask& set_allowed(
      const Eigen::Ref<const BoolMatrix, 0, Eigen::OuterStride<>>& a) {
    new (&allowed) Eigen::Map<const BoolMatrix, 0, Eigen::OuterStride<>>(
        a.data(), a.rows(), a.cols(), Eigen::OuterStride<>(a.outerStride()));
    return *this;
  }
  AttentionMask& set_bias(ConstMatrixRef<T> b) {
    new (&bias) Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>>(
        b.data(), b.rows(), b.cols(), Eigen::OuterStride<>(b.outerStride()));
    return *this;
  }

  // The mask keeps views: a temporary array (an rvalue Eigen matrix) would dangle before the
  // attention call, so those overloads do not compile.
  template <typename M, typename = PlainTemporary<M>>
  AttentionMask& set_key_lengths(M&&) = delete;
  template <typename M, typename = PlainTemporary<M>>
  AttentionMask& set_key_valid(M&&) = delete;
  template <typename M, typename = PlainTemporary<M>>
  AttentionMask& set_segment_ids(M&&) = delete;
  template <typename M, typename = PlainTemporary<M>>
  AttentionMask& set_allowed(M&&) = delete;
  template <typename M, typename = PlainTemporary<M>>
  AttentionMask& set_bias(M&&) = delete;

  /// True when some row may have allowed keys that are not a prefix [0, limit_i).
  bool has_elementwise() const noexcept { return key_valid.size() > 0 || allowed.size() > 0; }
};

namespace detail {

/// A mask resolved for one (n_q, n_k) call: per query row a key limit (allowed keys form the
/// prefix [0, limit_i) before the element-wise parts), plus the element-wise parts.
/// limit_i = min(n_k, key_length, p_i + 1 if causal, first j with c[j] > c[p_i] if segments).
class ResolvedMask {
 public:
  /// Checks the mask against the shapes. `where` names the component in messages.
  template <typename T>
  static void check(const AttentionMask<T>& m, Index nq, Index nk, Index heads, Index batch,
                    const char* where) {
    require(m.key_length >= -1 && m.key_length <= nk, where,
            "mask.key_length must be in [-1, n_k=", nk, "] (got ", m.key_length, ")");
    require(m.key_lengths.size() == 0 || m.key_lengths.size() == 1 ||
                m.key_lengths.size() == batch,
            where, "mask.key_lengths must have 1 or batch=", batch, " entries (got ",
            m.key_lengths.size(), ")");
    for (Index b = 0; b < m.key_lengths.size(); ++b)
      require(m.key_lengths[b] >= 0 && m.key_lengths[b] <= nk, where,
              "mask.key_lengths must be in [0, n_k=", nk, "] (got ", m.key_lengths[b],
              " at index ", b, ")");
    require(m.key_valid.size() == 0 || m.key_valid.size() == nk, where,
            "mask.key_valid must have n_k=", nk, " entries (got ", m.key_valid.size(), ")");
    require(m.segment_ids.size() == 0 || m.segment_ids.size() == nk, where,
            "mask.segment_ids must have n_k=", nk, " entries (got ", m.segment_ids.size(), ")");
    for (Index j = 0; j < m.segment_ids.size(); ++j)
      require(m.segment_ids[j] == 0 || m.segment_ids[j] == 1, where,
              "mask.segment_ids must be 0 or 1 (got ", m.segment_ids[j], " at index ", j, ")");
    require(m.allowed.size() == 0 || (m.allowed.rows() == nq && m.allowed.cols() == nk), where,
            "mask.allowed must be ", nq, "x", nk, " (got ", m.allowed.rows(), "x",
            m.allowed.cols(), ")");
    require(m.bias.size() == 0 ||
                ((m.bias.rows() == nq || m.bias.rows() == heads * nq) && m.bias.cols() == nk),
            where, "mask.bias must be ", nq, "x", nk, " or ", heads * nq, "x", nk, " (got ",
            m.bias.rows(), "x", m.bias.cols(), ")");
  }

  /// Fills limits (size n_q) for a call; `key_length` is the effective padding length (or −1).
  /// Uses `cumsum` (size n_k) as scratch when there are segment ids.
  template <typename T>
  static void limits(const AttentionMask<T>& m, Index nq, Index nk, Index key_length,
                     std::vector<Index>& limit, std::vector<std::int32_t>& cumsum) {
    limit.assign(static_cast<std::size_t>(nq), nk);
    const Index shift = nk - nq;
    if (key_length >= 0)
      for (auto& l : limit) l = std::min(l, key_length);
    if (m.causal)
      for (Index i = 0; i < nq; ++i)
        limit[std::size_t(i)] = std::min(limit[std::size_t(i)], std::max<Index>(0, shift + i + 1));
    if (m.segment_ids.size() > 0) {
      cumsum.resize(static_cast<std::size_t>(nk));
      std::int32_t c = 0;
      for (Index j = 0; j < nk; ++j) cumsum[std::size_t(j)] = c += m.segment_ids[j];
      for (Index i = 0; i < nq; ++i) {
        const Index p = shift + i;
        if (p < 0) {  // query before the first key: sees nothing
          limit[std::size_t(i)] = 0;
          continue;
        }
        // c is non-decreasing, so {j : c[j] ≤ c[p]} is a prefix.
        const auto end = std::upper_bound(cumsum.begin(), cumsum.end(), cumsum[std::size_t(p)]);
        limit[std::size_t(i)] =
            std::min(limit[std::size_t(i)], static_cast<Index>(end - cumsum.begin()));
      }
    }
  }
};

}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_MASK_HPP

// SPDX-License-Identifier: MIT
// Attention masks (SPEC §0.3, §4.2): causal, key padding, prefix-LM / UniLM segments, boolean
// masks and an additive bias, combined with AND and resolved per query row.
#ifndef XFMR_ATTENTION_MASK_HPP
#define XFMR_ATTENTION_MASK_HPP

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../detail/eigen.hpp"
#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// Which keys each query may see, and an optional additive bias. Every part is optional; the
/// parts combine with AND.
///
/// Ownership: the mask OWNS its arrays. Each setter copies what it is given (any Eigen
/// expression of the right element type: a column of a row-major matrix, a comparison such as
/// `(ids.array() != pad).matrix()`, a column-major matrix), so the argument may die right after
/// the call. Keeping views instead would dangle whenever Eigen converts the argument into a
/// private temporary (a `Ref<const X>` bound to an expression or to another layout), and a
/// deleted-rvalue overload cannot catch those conversions; "accept only exact types" would make
/// the common expressions above fail to compile. The copies are small next to one attention
/// call (n_k flags or ids, or one n_q × n_k bias per set, never per call).
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
/// A query with no allowed key outputs exact zeros. Non-finite bias entries: −inf is a
/// legitimate "masked" entry (the pair gets weight 0, a row of only −inf is fully masked and
/// outputs zeros); +inf and NaN are not masks: on an allowed pair they make the row NaN (never
/// checked up front, they propagate through the softmax).
/// Thread safety: a plain value; attention calls only read it, so one mask may serve concurrent
/// calls, but setting a part while a call reads the mask is a data race.
template <typename T>
struct AttentionMask {
  using BoolVector = Eigen::Matrix<bool, Eigen::Dynamic, 1>;
  using BoolMatrix = Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using SegmentVector = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1>;
  using LengthVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

  // Owned parts (empty = not set). Public so that a component can read them; assigning them
  // directly is as safe as the setters (they are values, not views).
  bool causal = false;
  Index key_length = -1;
  LengthVector key_lengths;
  BoolVector key_valid;
  SegmentVector segment_ids;
  BoolMatrix allowed;
  RowMatrix<T> bias;

  /// Fluent setters. Each copies its argument (cost: one pass over it, and an allocation when
  /// the size grows); the argument need not outlive the call.
  AttentionMask& set_causal(bool on = true) {
    causal = on;
    return *this;
  }
  AttentionMask& set_key_length(Index n) {
    key_length = n;
    return *this;
  }
  /// One padding length per batch sequence: any integer vector (row or column), copied as
  /// Index (n_batch values).
  template <class Derived>
  AttentionMask& set_key_lengths(const Eigen::DenseBase<Derived>& n) {
    static_assert(std::is_integral_v<typename Derived::Scalar> &&
                      !std::is_same_v<typename Derived::Scalar, bool>,
                  "xfmr::AttentionMask::set_key_lengths: the lengths must be integers");
    copy_vector(n, key_lengths, "key_lengths");
    return *this;
  }
  /// Per-key validity (true = may attend): a bool vector (row or column) of n_k entries,
  /// copied (n_k bytes).
  template <class Derived>
  AttentionMask& set_key_valid(const Eigen::DenseBase<Derived>& v) {
    static_assert(std::is_same_v<typename Derived::Scalar, bool>,
                  "xfmr::AttentionMask::set_key_valid: the flags must be bool");
    copy_vector(v, key_valid, "key_valid");
    return *this;
  }
  /// UniLM segment ids (0 or 1, checked at the attention call): any integer vector of n_k
  /// entries, copied as int32 (4·n_k bytes).
  template <class Derived>
  AttentionMask& set_segment_ids(const Eigen::DenseBase<Derived>& seg) {
    static_assert(std::is_integral_v<typename Derived::Scalar> &&
                      !std::is_same_v<typename Derived::Scalar, bool>,
                  "xfmr::AttentionMask::set_segment_ids: the segment ids must be integers");
    copy_vector(seg, segment_ids, "segment_ids");
    return *this;
  }
  /// Boolean (n_q × n_k) mask, any layout; copied row-major (n_q·n_k bytes).
  template <class Derived>
  AttentionMask& set_allowed(const Eigen::DenseBase<Derived>& a) {
    static_assert(std::is_same_v<typename Derived::Scalar, bool>,
                  "xfmr::AttentionMask::set_allowed: the mask must be bool");
    allowed = a;
    return *this;
  }
  /// Additive bias (n_q × n_k or heads·n_q × n_k) of element type T, any layout; copied
  /// row-major (n_q·n_k·sizeof(T) bytes per set, never per attention call).
  template <class Derived>
  AttentionMask& set_bias(const Eigen::DenseBase<Derived>& b) {
    static_assert(std::is_same_v<typename Derived::Scalar, T>,
                  "xfmr::AttentionMask<T>::set_bias: the bias must have element type T");
    bias = b;
    return *this;
  }

  /// True when some row may have allowed keys that are not a prefix [0, limit_i).
  bool has_elementwise() const noexcept { return key_valid.size() > 0 || allowed.size() > 0; }

 private:
  template <class Derived, class Plain>
  static void copy_vector(const Eigen::DenseBase<Derived>& x, Plain& dst, const char* name) {
    detail::require(x.rows() == 1 || x.cols() == 1 || x.size() == 0, "AttentionMask", name,
                    " must be a vector (got ", x.rows(), "x", x.cols(), ")");
    dst.resize(x.size());
    if (x.cols() == 1)
      for (Index i = 0; i < x.size(); ++i)
        dst[i] = static_cast<typename Plain::Scalar>(x.derived().coeff(i, 0));
    else
      for (Index i = 0; i < x.size(); ++i)
        dst[i] = static_cast<typename Plain::Scalar>(x.derived().coeff(0, i));
  }
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
    limits(m, nq, nk, key_length, nk - nq, limit, cumsum);
  }
  /// The same with query row i at key index shift + i (causal: j ≤ shift + i) instead of the
  /// bottom-right n_k − n_q + i: a block of keys that starts elsewhere than the queries' sequence
  /// (SoftmaxAttention::forward_partial). Segment ids need the default shift (a query row must
  /// be one of the keys).
  template <typename T>
  static void limits(const AttentionMask<T>& m, Index nq, Index nk, Index key_length, Index shift,
                     std::vector<Index>& limit, std::vector<std::int32_t>& cumsum) {
    limit.assign(static_cast<std::size_t>(nq), nk);
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

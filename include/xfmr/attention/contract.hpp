// SPDX-License-Identifier: MIT
// The attention contract shared by every flavour (softmax, ReRoPE, linear, Taylor, Performer,
// and softmax with QK normalisation): one shape check, one overlap rule, one mask-capability
// check, one tensor-view adapter and one meaning of positions.
#ifndef XFMR_ATTENTION_CONTRACT_HPP
#define XFMR_ATTENTION_CONTRACT_HPP

#include <algorithm>
#include <cstddef>
#include <functional>
#include <utility>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../detail/tensor_fwd.hpp"
#include "../error.hpp"
#include "../types.hpp"
#include "mask.hpp"

XFMR_NAMESPACE_BEGIN

// The contract, as every attention class follows it:
//
//   forward(q, k, v, out, mask = {}, pos0 = 0)        SoftmaxAttention, ReRopeAttention,
//                                                       LinearAttention (Taylor too), Performer
//     q (n_q × H·d), k (n_k × H_kv·d), v (n_k × H_kv·d_v), out (n_q × H·d_v): one token per
//     row, head h at columns [h·d, (h+1)·d); rows may be strided (Eigen Ref). H and H_kv come
//     from the widths; H_kv must divide H (grouped-query: head h reads K/V head h / (H/H_kv)),
//     in every flavour.
//   forward(q3, k3, v3, out3, mask, pos0): row-major [tokens, heads, d] tensor views, the same
//     call without a copy; forward(q4, …) on [batch, tokens, heads, d]: each sequence attends
//     only to itself, the mask is shared by the batch except mask.key_lengths (1 or batch
//     entries, one padding length per sequence).
//
//   Positions: key row j sits at absolute position pos0 + j and query row i at
//     pos0 + n_k − n_q + i (bottom-right alignment: the queries are the last n_q tokens; a
//     decoding step is n_q = 1 against a cache of n_k keys). The mask's causal and segment
//     parts are relative to this alignment, so pos0 does not move them. Who reads pos0:
//       SoftmaxAttention: the log-position scale λ_i (ScaleKind::LogPosition);
//       QkNorm (cosine, λ = 4·ln(position + 1)): the query rows' λ;
//       LinearAttention / Taylor: RoPE on features or inputs (config.rope);
//       ReRoPE: nothing (its logits depend on i − j only; pos0 is accepted and ignored);
//       Performer: nothing (no position-dependent part).
//     The decoding state (RecurrentAttentionState, for linear attention and Performer) counts
//     positions itself: step(q, k, v, out) appends the next token (token t at
//     set_position_offset() + t). QK normalisation is a transform with the same positions:
//     QkNorm::forward(q, k, pos0), then any flavour (attention/keynorm.hpp).
//
//   Overlap rule: out must not share an element with q, k or v. Exact in-place (out == q) is
//     NOT allowed for any attention flavour: every output row depends on every key (or every
//     earlier key), and the tiled and chunked kernels write rows of out before they have read
//     all of q, k or v. Views that interleave in one buffer without sharing an element (column
//     slices of one fused QKV matrix) are disjoint and allowed. q, k and v may overlap each other
//     freely (they are only read).
//
//   Mask: each flavour declares which AttentionMask parts it supports (MaskParts) and throws
//     std::invalid_argument "xfmr::<Component>: <part> masks are not supported (<why>)" for the
//     rest, before any work.
//
//   Errors: std::invalid_argument, worded "xfmr::<Component>: expected … (got …)".

/// Parts of an AttentionMask, as a bit set (a flavour's supported parts: OR of these).
enum MaskPart : unsigned {
  kMaskCausal = 1u << 0,     ///< mask.causal
  kMaskKeyLength = 1u << 1,  ///< mask.key_length and mask.key_lengths (right padding)
  kMaskKeyValid = 1u << 2,   ///< mask.key_valid (arbitrary key padding)
  kMaskSegments = 1u << 3,   ///< mask.segment_ids (UniLM / prefix-LM)
  kMaskAllowed = 1u << 4,    ///< mask.allowed (arbitrary boolean n_q × n_k)
  kMaskBias = 1u << 5,       ///< mask.bias (additive)
  kMaskAll = (1u << 6) - 1u,
};
using MaskParts = unsigned;

namespace detail {

/// The resolved shapes of one attention call (see the contract above).
struct AttentionShape {
  Index heads = 0;     ///< H = q.cols() / d
  Index kv_heads = 0;  ///< H_kv = k.cols() / d
  Index group = 0;     ///< H / H_kv: query heads per key/value head
  Index n_q = 0;       ///< query rows
  Index n_k = 0;       ///< key (and value) rows
  Index d = 0;         ///< query/key size per head
  Index d_v = 0;       ///< value size per head
};

/// The one q/k/v/out shape check. d ≥ 1 is the head size; d_v the value size per head, or 0 to
/// take it from v (v.cols() / H_kv). Messages: "xfmr::<where>: expected … (got …)".
/// \throws std::invalid_argument on any mismatch.
template <class Q, class K, class V, class O>
AttentionShape check_attention_shapes(const char* where, const Q& q, const K& k, const V& v,
                                      const O& out, Index d, Index d_v) {
  require(q.cols() >= d && q.cols() % d == 0, where,
          "expected q.cols() to be a positive multiple of head_dim=", d, " (got q.cols()=",
          q.cols(), ")");
  require(k.cols() >= d && k.cols() % d == 0, where,
          "expected k.cols() to be a positive multiple of head_dim=", d, " (got k.cols()=",
          k.cols(), ")");
  AttentionShape s;
  s.d = d;
  s.heads = q.cols() / d;
  s.kv_heads = k.cols() / d;
  require(s.heads % s.kv_heads == 0, where,
          "expected the key/value heads to divide the query heads (got ", s.heads,
          " query heads, ", s.kv_heads, " key/value heads)");
  s.group = s.heads / s.kv_heads;
  if (d_v == 0) {
    require(v.cols() >= s.kv_heads && v.cols() % s.kv_heads == 0, where,
            "expected v.cols() to be a positive multiple of the key/value heads=", s.kv_heads,
            " (got v.cols()=", v.cols(), ")");
    d_v = v.cols() / s.kv_heads;
  } else {
    require(v.cols() == s.kv_heads * d_v, where, "expected v.cols() = kv_heads·value_dim=",
            s.kv_heads * d_v, " (got v.cols()=", v.cols(), ")");
  }
  s.d_v = d_v;
  require(v.rows() == k.rows(), where, "expected v.rows() = k.rows() (got v.rows()=", v.rows(),
          ", k.rows()=", k.rows(), ")");
  require(out.rows() == q.rows() && out.cols() == s.heads * d_v, where, "expected out to be ",
          q.rows(), "x", s.heads * d_v, " (got ", out.rows(), "x", out.cols(), ")");
  s.n_q = q.rows();
  s.n_k = k.rows();
  return s;
}

/// The one overlap rule (see the contract): out shares no element with q, k or v.
/// \throws std::invalid_argument naming the input that overlaps.
template <class Q, class K, class V, class O>
void check_attention_overlap(const char* where, const Q& q, const K& k, const V& v,
                             const O& out) {
  const auto check = [&](const auto& x, const char* name) {
    require(!views_overlap(out.data(), out.outerStride(), out.rows(), out.cols(),
                                     x.data(), x.outerStride(), x.rows(), x.cols()),
            where, "expected out not to overlap ", name,
            " (got overlapping views; attention is never computed in place)");
  };
  check(q, "q");
  check(k, "k");
  check(v, "v");
}

/// f(q_h, k_h, v_h, out_h) for every query head h, with the column blocks of its own q and out
/// and of the key/value head h / group it reads (grouped-query attention).
template <class Q, class K, class V, class O, class F>
void for_each_head(const AttentionShape& s, const Q& q, const K& k, const V& v, O& out, F&& f) {
  for (Index h = 0; h < s.heads; ++h) {
    const Index hk = h / s.group;
    f(q.middleCols(h * s.d, s.d), k.middleCols(hk * s.d, s.d), v.middleCols(hk * s.d_v, s.d_v),
      out.middleCols(h * s.d_v, s.d_v));
  }
}

/// Throws "xfmr::<where>: <part> masks are not supported (<why>)" for the first part of `mask`
/// that is set and not in `supported`.
template <typename T>
void check_mask_support(const char* where, const AttentionMask<T>& mask, MaskParts supported,
                        const char* why) {
  const auto need = [&](bool present, MaskPart part, const char* name) {
    require(!present || (supported & part) != 0, where, name, " masks are not supported (", why,
            ")");
  };
  need(mask.causal, kMaskCausal, "causal");
  need(mask.key_length >= 0 || mask.key_lengths.size() > 0, kMaskKeyLength, "key-length");
  need(mask.key_valid.size() > 0, kMaskKeyValid, "key_valid");
  need(mask.segment_ids.size() > 0, kMaskSegments, "segment (UniLM)");
  need(mask.allowed.size() > 0, kMaskAllowed, "boolean (allowed)");
  need(mask.bias.size() > 0, kMaskBias, "bias");
}

/// The padding length of sequence b (of a batch of `batch`) from mask.key_length /
/// mask.key_lengths, −1 for none. key_lengths must have 1 or `batch` entries.
template <typename T>
Index sequence_key_length(const char* where, const AttentionMask<T>& mask, Index b, Index batch) {
  if (mask.key_lengths.size() == 0) return mask.key_length;
  require(mask.key_lengths.size() == 1 || mask.key_lengths.size() == batch, where,
          "expected mask.key_lengths to have 1 or batch=", batch, " entries (got ",
          mask.key_lengths.size(), ")");
  return mask.key_lengths.size() == 1 ? mask.key_lengths[0] : mask.key_lengths[b];
}

/// Per-key validity of one sequence from its padding length and mask.key_valid: valid[j] =
/// (j < key_length or key_length < 0) and key_valid[j]. Returns false (and leaves `valid`
/// untouched) when every key is valid.
template <typename T>
bool key_validity(const AttentionMask<T>& mask, Index key_length, Index nk,
                  Eigen::Matrix<bool, Eigen::Dynamic, 1>& valid) {
  if (key_length < 0 && mask.key_valid.size() == 0) return false;
  valid.resize(nk);
  for (Index j = 0; j < nk; ++j)
    valid[j] = (key_length < 0 || j < key_length) &&
                            (mask.key_valid.size() == 0 || mask.key_valid[j]);
  return true;
}

/// The one tensor-view adapter: [tokens, heads, d] (Rank 3) or [batch, tokens, heads, d]
/// (Rank 4) row-major views mapped onto (tokens × heads·d) matrices without a copy. Calls
/// run(q, k, v, out, batch, key_length) once per sequence, with Eigen::Map views and that
/// sequence's padding length (sequence_key_length). Checks that the last dimensions are d
/// (q, k) and d_v (v, out; d_v = 0: v's own) and that the batch sizes agree; the rest of the
/// shape check is the matrix path's.
template <typename T, class Q, class K, class V, class O, class Run>
void for_each_sequence(const char* where, const Q& q, const K& k, const V& v, O& out, Index d,
                       Index d_v, const AttentionMask<T>& mask, Run&& run) {
  constexpr int R = Q::NumIndices;
  static_assert(R == 3 || R == 4, "xfmr: attention tensor views are rank 3 or 4");
  using CMap = Eigen::Map<const RowMatrix<T>>;
  using MMap = Eigen::Map<RowMatrix<T>>;
  require(q.dimension(R - 1) == d && k.dimension(R - 1) == d, where,
          "expected the last dimension of q and k to be head_dim=", d, " (got ",
          q.dimension(R - 1), " and ", k.dimension(R - 1), ")");
  const Index dv = d_v > 0 ? d_v : v.dimension(R - 1);
  require(v.dimension(R - 1) == dv && out.dimension(R - 1) == dv, where,
          "expected the last dimension of v and out to be value_dim=", dv, " (got ",
          v.dimension(R - 1), " and ", out.dimension(R - 1), ")");
  const Index batch = R == 4 ? q.dimension(0) : 1;
  if constexpr (R == 4)
    require(k.dimension(0) == batch && v.dimension(0) == batch && out.dimension(0) == batch,
            where, "expected q, k, v and out to have the same batch size (got ", batch, ", ",
            k.dimension(0), ", ", v.dimension(0), ", ", out.dimension(0), ")");
  const Index nq = q.dimension(R - 3), nk = k.dimension(R - 3), nv = v.dimension(R - 3),
              no = out.dimension(R - 3);
  const Index wq = q.dimension(R - 2) * d, wk = k.dimension(R - 2) * d,
              wv = v.dimension(R - 2) * dv, wo = out.dimension(R - 2) * dv;
  for (Index b = 0; b < batch; ++b)
    run(CMap(q.data() + b * nq * wq, nq, wq), CMap(k.data() + b * nk * wk, nk, wk),
        CMap(v.data() + b * nv * wv, nv, wv), MMap(out.data() + b * no * wo, no, wo), batch,
        sequence_key_length(where, mask, b, batch));
}

}  // namespace detail

/// The forward overloads every attention flavour shares (CRTP): one sequence as matrices, and
/// row-major tensor views [tokens, heads, d] and [batch, tokens, heads, d] mapped onto the
/// matrix path without a copy (detail::for_each_sequence: each sequence attends only to itself,
/// the mask is shared by the batch except mask.key_lengths, one padding length per sequence).
/// All three reach Derived::run(q, k, v, out, mask, pos0, batch, key_length) once per sequence
/// (batch: the number of sequences in the call; key_length: this sequence's padding length from
/// the mask, −1 for none). Derived befriends this class and provides run(), kWhere (its name in
/// messages) and tensor_dims() (head_dim, and value_dim or 0 for v's own width).
/// \throws std::invalid_argument as Derived::run, and for tensor views whose last dimensions or
///         batch sizes disagree.
template <class Derived, typename T>
class AttentionForward {
 public:
  using ConstTensor3 = ConstTensorView<T, 3>;  // include xfmr/tensor.hpp to build the views
  using Tensor3 = TensorView<T, 3>;
  using ConstTensor4 = ConstTensorView<T, 4>;
  using Tensor4 = TensorView<T, 4>;

  void forward(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v, MatrixRef<T> out,
               const AttentionMask<T>& mask = {}, Index pos0 = 0) {
    self().run(q, k, v, out, mask, pos0, 1,
               detail::sequence_key_length(Derived::kWhere, mask, 0, 1));
  }
  void forward(const ConstTensor3& q, const ConstTensor3& k, const ConstTensor3& v, Tensor3 out,
               const AttentionMask<T>& mask = {}, Index pos0 = 0) {
    forward_tensor(q, k, v, out, mask, pos0);
  }
  void forward(const ConstTensor4& q, const ConstTensor4& k, const ConstTensor4& v, Tensor4 out,
               const AttentionMask<T>& mask = {}, Index pos0 = 0) {
    forward_tensor(q, k, v, out, mask, pos0);
  }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }

  template <class Q, class O>
  void forward_tensor(const Q& q, const Q& k, const Q& v, O& out, const AttentionMask<T>& mask,
                      Index pos0) {
    const auto dims = self().tensor_dims();
    detail::for_each_sequence<T>(Derived::kWhere, q, k, v, out, dims.first, dims.second, mask,
                                 [&](auto qs, auto ks, auto vs, auto os, Index batch, Index len) {
                                   self().run(qs, ks, vs, os, mask, pos0, batch, len);
                                 });
  }
};

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_CONTRACT_HPP

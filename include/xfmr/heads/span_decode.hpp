// SPDX-License-Identifier: MIT
// Span decoding for token-pair heads (GlobalPointer; kexue.fm/archives/8373): every
// (sequence, type, start, end) whose score is above a threshold.
#ifndef XFMR_HEADS_SPAN_DECODE_HPP
#define XFMR_HEADS_SPAN_DECODE_HPP

#include <cmath>
#include <vector>

#include "../error.hpp"
#include "../tensor.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// One decoded span: tokens [start, end] (both inclusive) of sequence `sequence` are an entity of
/// type `type`, with logit `score`.
struct Span {
  Index sequence = 0;
  Index type = 0;
  Index start = 0;
  Index end = 0;
  double score = 0.0;
};

namespace detail {

/// scores: [batch, types, n, n] row-major at `data`; lengths == nullptr: every length is n.
template <typename T>
std::vector<Span> decode_spans_impl(const T* data, Index batch, Index types, Index n, Index n2,
                                    const Eigen::Ref<const IdVector>* lengths, double threshold) {
  const char* where = "decode_spans";
  require(n == n2, where,
          "scores must be [batch, types, n, n] with equal last two dimensions (got ", n, "x", n2,
          ")");
  require(std::isfinite(threshold), where, "threshold must be finite (got ", threshold, ")");
  if (lengths != nullptr) {
    require(lengths->size() == batch, where, "one length per sequence: lengths.size() == ",
            batch, " (got ", lengths->size(), ")");
    for (Index b = 0; b < batch; ++b)
      require((*lengths)[b] >= 0 && (*lengths)[b] <= n, where, "lengths must be in [0, ", n,
              "] (got lengths[", b, "]=", (*lengths)[b], ")");
  }
  std::vector<Span> spans;
  for (Index b = 0; b < batch; ++b) {
    const Index len = lengths == nullptr ? n : (*lengths)[b];
    for (Index a = 0; a < types; ++a) {
      const T* s = data + (b * types + a) * n * n;
      for (Index i = 0; i < len; ++i)
        for (Index j = i; j < len; ++j) {
          const double v = static_cast<double>(s[i * n + j]);
          if (v > threshold) spans.push_back(Span{b, a, i, j, v});  // NaN is never > threshold
        }
    }
  }
  return spans;
}

}  // namespace detail

/// Decodes GlobalPointer logits: returns exactly the (sequence, type, start, end) with
/// start <= end < length and score > threshold (strictly), nested and overlapping spans
/// included, in the order (sequence, type, start, end) ascending. Threshold 0 on logits is the
/// one the multilabel categorical cross-entropy trains for (SPEC §10.1). Padded positions
/// (>= the sequence's length) and the lower triangle are never read, so masked entries are never
/// decoded whatever the mask value; without `lengths`, every sequence has length n.
///
/// scores: row-major [batch, types, n, n] (the layout GlobalPointer<T>::scores writes).
/// \throws std::invalid_argument if the last two dimensions differ, threshold is not finite,
///         lengths.size() != batch, or a length is outside [0, n].
template <typename T>
using ScoresView = Eigen::TensorMap<const Eigen::Tensor<T, 4, Eigen::RowMajor>>;

template <typename T>
std::vector<Span> decode_spans(const ScoresView<T>& scores, ConstIdsRef lengths,
                               double threshold = 0.0) {
  static_assert(detail::is_real_v<T>, "xfmr::decode_spans: T must be float or double");
  return detail::decode_spans_impl(scores.data(), scores.dimension(0), scores.dimension(1),
                                   scores.dimension(2), scores.dimension(3), &lengths, threshold);
}
/// Every sequence has length n.
template <typename T>
std::vector<Span> decode_spans(const ScoresView<T>& scores, double threshold = 0.0) {
  static_assert(detail::is_real_v<T>, "xfmr::decode_spans: T must be float or double");
  return detail::decode_spans_impl<T>(scores.data(), scores.dimension(0), scores.dimension(1),
                                      scores.dimension(2), scores.dimension(3), nullptr,
                                      threshold);
}
/// Mutable maps and owning tensors, as the view.
template <typename T>
std::vector<Span> decode_spans(const Eigen::TensorMap<Eigen::Tensor<T, 4, Eigen::RowMajor>>& s,
                               ConstIdsRef lengths, double threshold = 0.0) {
  return decode_spans(ScoresView<T>(s.data(), s.dimensions()), lengths, threshold);
}
template <typename T>
std::vector<Span> decode_spans(const Eigen::TensorMap<Eigen::Tensor<T, 4, Eigen::RowMajor>>& s,
                               double threshold = 0.0) {
  return decode_spans(ScoresView<T>(s.data(), s.dimensions()), threshold);
}
template <typename T>
std::vector<Span> decode_spans(const Eigen::Tensor<T, 4, Eigen::RowMajor>& s, ConstIdsRef lengths,
                               double threshold = 0.0) {
  return decode_spans(ScoresView<T>(s.data(), s.dimensions()), lengths, threshold);
}
template <typename T>
std::vector<Span> decode_spans(const Eigen::Tensor<T, 4, Eigen::RowMajor>& s,
                               double threshold = 0.0) {
  return decode_spans(ScoresView<T>(s.data(), s.dimensions()), threshold);
}

XFMR_NAMESPACE_END

#endif  // XFMR_HEADS_SPAN_DECODE_HPP

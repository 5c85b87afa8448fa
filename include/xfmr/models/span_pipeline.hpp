// SPDX-License-Identifier: MIT
// Token ids → encoder → GlobalPointer / Efficient GlobalPointer logits → entity spans, as one
// object (bert4keras NER with GlobalPointer; SPEC §15.5).
#ifndef XFMR_MODELS_SPAN_PIPELINE_HPP
#define XFMR_MODELS_SPAN_PIPELINE_HPP

#include <utility>
#include <vector>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../heads/global_pointer.hpp"
#include "../heads/span_decode.hpp"
#include "../tensor.hpp"
#include "../types.hpp"
#include "encoder_model.hpp"

XFMR_NAMESPACE_BEGIN

/// NER as bert4keras does it with a GlobalPointer head: the encoder's last hidden state of a
/// padded batch feeds the head (GlobalPointer<T> or EfficientGlobalPointer<T>, weights set by the
/// caller), whose logits s_a(i, j) are decoded into spans (a, i, j) with s_a(i, j) > threshold.
/// bert4keras' decoding drops the first and last token of each sequence ([CLS] and [SEP]:
/// `scores[:, [0, -1]] -= inf; scores[:, :, [0, -1]] -= inf`), which extract() does unless
/// told not to; token indices in the spans are positions in the tokenised sequence ([CLS] = 0).
///
/// Model: BertModel<T, Isa> or RoFormerModel<T, Isa> (anything with hidden_size() and
/// forward(const EncoderInput&, MatrixRef<T>)). Owns the model, the head and the scratch
/// (hidden states and the [batch, types, n, n] logits, grown on demand): not thread-safe.
template <typename T, class Model, class Head>
class SpanPipeline {
 public:
  using Scores = Eigen::Tensor<T, 4, Eigen::RowMajor>;

  /// \throws std::invalid_argument if the head's hidden_size is not the model's.
  SpanPipeline(Model model, Head head) : m_model(std::move(model)), m_head(std::move(head)) {
    detail::require(m_head.config().hidden_size == m_model.hidden_size(), "SpanPipeline",
                    "expected a head with the model's hidden_size=", m_model.hidden_size(),
                    " (got ", m_head.config().hidden_size, ")");
  }

  Model& model() noexcept { return m_model; }
  Head& head() noexcept { return m_head; }

  /// The head's logits of a padded batch: [batch, types, n, n] row-major, masked entries
  /// (padding, and j < i with tril_mask) at the head's mask_value. Valid until the next call.
  /// \throws as the model's forward and the head's scores (std::logic_error before the head's
  ///         set_weights).
  const Scores& scores(const EncoderInput& in) {
    const Index batch = in.batch(), n = in.n();
    if (m_hidden.rows() != batch * n || m_hidden.cols() != m_model.hidden_size())
      m_hidden.resize(batch * n, m_model.hidden_size());
    m_model.forward(in, m_hidden);
    const Index types = m_head.config().types;
    if (m_scores.dimension(0) != batch || m_scores.dimension(1) != types ||
        m_scores.dimension(2) != n)
      m_scores.resize(batch, types, n, n);
    m_lengths.resize(batch);
    for (Index b = 0; b < batch; ++b) m_lengths[b] = in.length(b);
    m_head.scores(m_hidden, m_lengths, ScoreTensor<T>(m_scores.data(), batch, types, n, n));
    return m_scores;
  }

  /// Spans (sequence, type, start, end, score) with score > threshold, start <= end, in the
  /// order (sequence, type, start, end); with drop_cls_sep, spans touching position 0 or
  /// length − 1 of their sequence are left out. \throws as scores(), or std::invalid_argument
  /// for a non-finite threshold.
  std::vector<Span> extract(const EncoderInput& in, double threshold = 0.0,
                            bool drop_cls_sep = true) {
    const Scores& s = scores(in);
    std::vector<Span> spans = decode_spans<T>(s, m_lengths, threshold);
    if (!drop_cls_sep) return spans;
    std::vector<Span> kept;
    kept.reserve(spans.size());
    for (const Span& sp : spans)
      if (sp.start >= 1 && sp.end <= m_lengths[sp.sequence] - 2) kept.push_back(sp);
    return kept;
  }

 private:
  Model m_model;
  Head m_head;
  RowMatrix<T> m_hidden;
  Scores m_scores;
  IdVector m_lengths;
};

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_SPAN_PIPELINE_HPP

// SPDX-License-Identifier: MIT
// What BertModel and RoFormerModel share: the padded-batch input, validation, packing of the
// valid tokens, embeddings, the encoder stack and the padded output (SPEC §15.1–15.2).
#ifndef XFMR_MODELS_ENCODER_MODEL_HPP
#define XFMR_MODELS_ENCODER_MODEL_HPP

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../layers/dense.hpp"
#include "../layers/embedding.hpp"
#include "../layers/norm.hpp"
#include "../simd/isa.hpp"
#include "../types.hpp"
#include "../weights/safetensors.hpp"
#include "checkpoint.hpp"
#include "config.hpp"
#include "encoder.hpp"
#include "pooling.hpp"

XFMR_NAMESPACE_BEGIN

/// A padded batch of token sequences, as a tokenizer hands it over (HF's input_ids,
/// attention_mask as lengths, token_type_ids). Owns its arrays.
///   ids:            (batch × n) token ids; sequence b's tokens are ids(b, 0…lengths[b]−1), the
///                   rest is padding and never read (any value).
///   lengths:        batch values in [0, n] (right padding), or empty: every sequence has n
///                   tokens. A length-0 sequence is allowed: its hidden rows and pooled vectors
///                   are zero.
///   token_type_ids: empty (all 0, as HF's default) or (batch × n) in [0, type_vocab_size).
///   segment_ids:    empty (bidirectional attention within each sequence) or (batch × n) UniLM
///                   segments in {0, 1} (RoFormer-Sim / bert4keras UniLM_Mask: token i sees
///                   token j iff cumsum(seg)[j] ≤ cumsum(seg)[i]; source 0…, target 1…).
struct EncoderInput {
  IdMatrix ids;
  LengthVector lengths;
  IdMatrix token_type_ids;
  IdMatrix segment_ids;

  Index batch() const noexcept { return ids.rows(); }
  Index n() const noexcept { return ids.cols(); }
  /// Length of sequence b (n when lengths is empty).
  Index length(Index b) const noexcept { return lengths.size() == 0 ? ids.cols() : lengths[b]; }
};

namespace detail {

/// The shared body of BertModel and RoFormerModel (see their comments).
template <typename T, class Isa>
class EncoderModel {
 public:
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  const EncoderConfig& config() const noexcept { return m_config; }
  Index hidden_size() const noexcept { return m_config.hidden_size; }
  Encoder<T, Isa>& encoder() noexcept { return m_encoder; }
  const Encoder<T, Isa>& encoder() const noexcept { return m_encoder; }

  /// Last hidden state of a padded batch: hidden (batch·n × H), sequence b at rows
  /// [b·n, (b+1)·n); rows of valid tokens get the encoder's output, padded rows exact zeros.
  /// The valid tokens are packed (Σ lengths rows) for the GEMMs and every sequence attends to
  /// itself only, so padding neither costs FLOPs nor changes valid rows: a sequence gives the
  /// same rows alone or in any batch (bit for bit).
  /// \throws std::invalid_argument (everything checked before any work, naming the sequence
  ///         and position): hidden's shape; lengths not batch values in [0, n]; token_type_ids
  ///         or segment_ids neither empty nor batch × n; an id outside [0, vocab_size), a token
  ///         type outside [0, type_vocab_size), a segment id not 0 or 1 (valid tokens only);
  ///         BERT: a sequence longer than max_position_embeddings.
  void forward(const EncoderInput& in, MatrixRef<T> hidden) {
    check(in, hidden);
    pack(in);
    const Index tokens = m_batch.tokens();
    const Index E = m_config.embedding_dim(), H = m_config.hidden_size;
    grow(m_h, tokens, H);
    auto h = m_h.topRows(tokens);
    if (tokens > 0) {
      const bool project = m_project.has_value();
      if (project) grow(m_e, tokens, E);
      auto e = project ? m_e.topRows(tokens) : m_h.topRows(tokens);
      m_word.forward(m_ids.head(tokens), e);
      m_type.add(m_types.head(tokens), e);
      if (m_position)
        for (Index s = 0; s < m_batch.sequences(); ++s) {
          const Index r0 = m_batch.offsets[std::size_t(s)];
          const Index len = m_batch.offsets[std::size_t(s) + 1] - r0;
          if (len > 0) m_position->add_range(0, e.middleRows(r0, len));
        }
      m_norm.apply(e);
      if (project) m_project->forward(e, h);
      m_encoder.forward(h, m_batch);
    }
    const Index n = in.n();
    for (Index b = 0; b < in.batch(); ++b) {
      const Index len = in.length(b), r0 = m_batch.offsets[std::size_t(b)];
      if (len > 0) hidden.middleRows(b * n, len) = h.middleRows(r0, len);
      if (len < n) hidden.middleRows(b * n + len, n - len).setZero();
    }
  }

  /// The same, into a new (batch·n × H) matrix.
  RowMatrix<T> forward(const EncoderInput& in) {
    RowMatrix<T> hidden(in.batch() * in.n(), m_config.hidden_size);
    forward(in, hidden);
    return hidden;
  }

  /// FLOPs of forward(in) (Encoder::flops plus the embedding projection).
  double flops(const EncoderInput& in) const {
    PackedBatch b;
    double tokens = 0;
    for (Index s = 0; s < in.batch(); ++s) {
      tokens += double(in.length(s));
      b.offsets.push_back(b.offsets.back() + in.length(s));
    }
    const double proj = m_project ? 2 * tokens * double(m_config.embedding_dim()) *
                                        double(m_config.hidden_size)
                                  : 0.0;
    return m_encoder.flops(b) + proj;
  }

 protected:
  EncoderModel(const EncoderConfig& config, const EncoderWeights<T>& w, const char* where)
      : m_where(where),
        m_config(checked(config, w, where)),
        m_word(w.word_embeddings),
        m_type(w.token_type_embeddings),
        m_norm(LayerNormConfig{config.embedding_dim(), config.layer_norm_eps, true, true}),
        m_encoder(config, w.layers, w.final_norm_weight, w.final_norm_bias) {
    m_norm.gamma() = w.embeddings_norm_weight.transpose();
    m_norm.beta() = w.embeddings_norm_bias.transpose();
    if (config.family == EncoderFamily::Bert) m_position.emplace(w.position_embeddings);
    if (w.embeddings_project.size() > 0)
      m_project.emplace(w.embeddings_project, w.embeddings_project_bias);
  }

  static const EncoderConfig& checked_family(const EncoderConfig& c, EncoderFamily family,
                                             const char* where) {
    detail::require(c.family == family, where, "expected a config with model_type \"",
                    to_string(family), "\" (got \"", to_string(c.family), "\")");
    return c;
  }

 private:
  static const EncoderConfig& checked(const EncoderConfig& c, const EncoderWeights<T>& w,
                                      const char* where) {
    c.validate();
    const Index E = c.embedding_dim(), H = c.hidden_size;
    const auto mat = [&](const RowMatrix<T>& m, Index r, Index k, const char* name) {
      detail::require(m.rows() == r && m.cols() == k, where, "expected ", name, " of ", r, "x", k,
                      " (got ", m.rows(), "x", m.cols(), ")");
    };
    const auto vec = [&](const Vector& v, Index n, const char* name) {
      detail::require(v.size() == n, where, "expected ", name, " of ", n, " values (got ",
                      v.size(), ")");
    };
    mat(w.word_embeddings, c.vocab_size, E, "word_embeddings");
    mat(w.token_type_embeddings, c.type_vocab_size, E, "token_type_embeddings");
    if (c.family == EncoderFamily::Bert)
      mat(w.position_embeddings, c.max_position_embeddings, E, "position_embeddings");
    else
      mat(w.position_embeddings, 0, 0, "position_embeddings (none for roformer)");
    vec(w.embeddings_norm_weight, E, "embeddings_norm_weight");
    vec(w.embeddings_norm_bias, E, "embeddings_norm_bias");
    const bool project = c.family == EncoderFamily::RoFormer && E != H;
    mat(w.embeddings_project, project ? H : 0, project ? E : 0,
        project ? "embeddings_project" : "embeddings_project (none unless roformer with E != H)");
    vec(w.embeddings_project_bias, project ? H : 0, "embeddings_project_bias");
    return c;
  }

  static void grow(RowMatrix<T>& m, Index rows, Index cols) {
    if (m.rows() < rows || m.cols() != cols) m.resize(std::max(rows, m.rows()), cols);
  }
  static void grow(IdVector& v, Index n) {
    if (v.size() < n) v.resize(n);
  }

  void check(const EncoderInput& in, const MatrixRef<T>& hidden) const {
    const char* where = m_where;
    const Index batch = in.batch(), n = in.n();
    detail::require(hidden.rows() == batch * n && hidden.cols() == m_config.hidden_size, where,
                    "expected hidden of ", batch * n, "x", m_config.hidden_size,
                    " (batch*n x hidden_size) (got ", hidden.rows(), "x", hidden.cols(), ")");
    detail::require(in.lengths.size() == 0 || in.lengths.size() == batch, where,
                    "expected lengths empty or one per sequence (", batch, ") (got ",
                    in.lengths.size(), ")");
    const auto same_shape = [&](const IdMatrix& m, const char* name) {
      detail::require(m.size() == 0 || (m.rows() == batch && m.cols() == n), where, "expected ",
                      name, " empty or ", batch, "x", n, " like ids (got ", m.rows(), "x",
                      m.cols(), ")");
    };
    same_shape(in.token_type_ids, "token_type_ids");
    same_shape(in.segment_ids, "segment_ids");
    const Index max_len = m_config.family == EncoderFamily::Bert
                              ? std::min(n, m_config.max_position_embeddings)
                              : n;
    for (Index b = 0; b < batch; ++b) {
      const Index len = in.length(b);
      detail::require(len >= 0 && len <= n, where, "expected lengths in [0, n=", n, "] (got ",
                      len, " for sequence ", b, ")");
      if (len > max_len)
        detail::throw_invalid(where, "expected sequences of at most max_position_embeddings=",
                              m_config.max_position_embeddings,
                              " tokens (the position table) (got ", len, " for sequence ", b,
                              ")");
      for (Index t = 0; t < len; ++t) {
        const std::int64_t id = in.ids(b, t);
        if (id < 0 || id >= m_config.vocab_size)
          detail::throw_invalid(where, "expected ids in [0, vocab_size=", m_config.vocab_size,
                                ") (got ", id, " at sequence ", b, ", position ", t, ")");
        if (in.token_type_ids.size() > 0) {
          const std::int64_t ty = in.token_type_ids(b, t);
          if (ty < 0 || ty >= m_config.type_vocab_size)
            detail::throw_invalid(where, "expected token_type_ids in [0, type_vocab_size=",
                                  m_config.type_vocab_size, ") (got ", ty, " at sequence ", b,
                                  ", position ", t, ")");
        }
        if (in.segment_ids.size() > 0) {
          const std::int64_t sg = in.segment_ids(b, t);
          if (sg != 0 && sg != 1)
            detail::throw_invalid(where, "expected segment_ids 0 or 1 (got ", sg, " at sequence ",
                                  b, ", position ", t, ")");
        }
      }
    }
  }

  // The valid tokens, sequence after sequence: ids, token types, offsets, segments.
  void pack(const EncoderInput& in) {
    Index tokens = 0;
    for (Index b = 0; b < in.batch(); ++b) tokens += in.length(b);
    grow(m_ids, tokens);
    grow(m_types, tokens);
    m_batch.offsets.resize(std::size_t(in.batch()) + 1);
    m_batch.offsets[0] = 0;
    m_batch.segments.resize(in.segment_ids.size() > 0 ? std::size_t(tokens) : 0);
    Index r = 0;
    for (Index b = 0; b < in.batch(); ++b) {
      for (Index t = 0; t < in.length(b); ++t, ++r) {
        m_ids[r] = in.ids(b, t);
        m_types[r] = in.token_type_ids.size() > 0 ? in.token_type_ids(b, t) : 0;
        if (in.segment_ids.size() > 0)
          m_batch.segments[std::size_t(r)] = static_cast<std::int32_t>(in.segment_ids(b, t));
      }
      m_batch.offsets[std::size_t(b) + 1] = r;
    }
  }

  const char* m_where;
  EncoderConfig m_config;
  Embedding<T> m_word, m_type;
  std::optional<Embedding<T>> m_position;
  LayerNorm<T, Isa> m_norm;
  std::optional<Dense<T, Isa>> m_project;
  Encoder<T, Isa> m_encoder;
  // Scratch, grown on demand.
  PackedBatch m_batch;
  IdVector m_ids, m_types;
  RowMatrix<T> m_e, m_h;
};

}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_ENCODER_MODEL_HPP

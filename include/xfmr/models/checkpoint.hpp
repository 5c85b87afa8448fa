// SPDX-License-Identifier: MIT
// HF checkpoint names → encoder weights (SPEC §15.3): prefix detection, and every missing,
// unused or mis-shaped tensor reported in one message.
#ifndef XFMR_MODELS_CHECKPOINT_HPP
#define XFMR_MODELS_CHECKPOINT_HPP

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"
#include "../weights/safetensors.hpp"
#include "config.hpp"
#include "encoder.hpp"

XFMR_NAMESPACE_BEGIN

/// Every weight of a BERT / RoFormer encoder model, in HF's layout ([out × in] matrices).
template <typename T>
struct EncoderWeights {
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  RowMatrix<T> word_embeddings;      ///< [V × E]
  RowMatrix<T> position_embeddings;  ///< [P × E], BERT only (empty for RoFormer)
  RowMatrix<T> token_type_embeddings;  ///< [types × E]
  Vector embeddings_norm_weight, embeddings_norm_bias;  ///< E each
  RowMatrix<T> embeddings_project;  ///< [H × E], RoFormer with E ≠ H only (else empty)
  Vector embeddings_project_bias;
  std::vector<EncoderLayerWeights<T>> layers;
  Vector final_norm_weight, final_norm_bias;  ///< pre-LN only (else empty)
};

/// How strictly read_encoder_weights matches names.
struct WeightLoadOptions {
  /// Accept tensors the encoder does not use (task heads: "cls.*", "classifier.*", "qa_outputs.*"
  /// …). Off: each of them is named in the error. Always ignored, on or off:
  /// `{p}embeddings.position_ids`, `{p}embeddings.token_type_ids` (buffers, not weights),
  /// `{p}pooler.*` (BERT's pooler; not used by CLS or mean pooling) and
  /// `{p}encoder.embed_positions.weight` (RoFormer's sinusoidal table, rebuilt exactly).
  bool allow_unused = false;
  /// How the loaded model keeps its encoder layers' Dense weights: Native (as T) or Bf16 (float
  /// models: rounded to bf16 once; see WeightStorage). The loaders set the config's
  /// weight_storage to this.
  WeightStorage weight_storage = WeightStorage::Native;
  /// The bf16 GEMM kernel with WeightStorage::Bf16 (simd::Bf16Kernel); the loaders set the
  /// config's bf16_kernel to this.
  simd::Bf16Kernel bf16_kernel = simd::Bf16Kernel::Auto;
};

namespace detail {

/// The weight-name prefix of a checkpoint: "bert." / "roformer." (task checkpoints, BertFor…,
/// RoFormerFor…) if the word embeddings sit under it, else "" (BertModel.save_pretrained,
/// sentence-transformers folders).
inline std::string detect_weight_prefix(const EncoderConfig& c, const SafetensorsFile& file) {
  const std::string family = std::string(to_string(c.family)) + ".";
  return file.contains(family + "embeddings.word_embeddings.weight") ? family : std::string();
}

inline bool ignored_weight_name(const std::string& name, const std::string& p) {
  const auto starts = [&](const std::string& s) { return name.compare(0, s.size(), s) == 0; };
  return name == p + "embeddings.position_ids" || name == p + "embeddings.token_type_ids" ||
         starts(p + "pooler.") || name == p + "encoder.embed_positions.weight";
}

}  // namespace detail

/// Reads the encoder's weights from an HF checkpoint (SPEC §15.3), names
///   {p}embeddings.{word,position,token_type}_embeddings.weight, {p}embeddings.LayerNorm.*,
///   {p}embeddings_project.* (RoFormer, E ≠ H), {p}encoder.layer.{i}.attention.self.
///   {query,key,value}.*, ….attention.output.dense.*, ….attention.output.LayerNorm.*,
///   ….intermediate.dense.*, ….output.dense.*, ….output.LayerNorm.*
/// with {p} = "bert." / "roformer." or empty (detect_weight_prefix). Pre-LN
/// (config.pre_layer_norm) reads the norms as HF roberta-prelayernorm names them:
/// ….attention.LayerNorm.* (before attention), ….intermediate.LayerNorm.* (before the FFN) and
/// the final {p}LayerNorm.*. F32, F16 and BF16 tensors convert to T.
/// Everything is checked before any tensor is converted, and every problem is reported at once
/// (each list sorted by name).
/// \throws xfmr::format_error "xfmr::<where>: weights in <file> do not match the config
///         (prefix "<p>"): missing [names]; mis-shaped [name: expected [r, c] (got [..])];
///         not a float dtype [name: I64]; unused [names] (WeightLoadOptions::allow_unused)".
template <typename T>
EncoderWeights<T> read_encoder_weights(const EncoderConfig& config, const SafetensorsFile& file,
                                       const WeightLoadOptions& options = {},
                                       const char* where = "read_encoder_weights") {
  config.validate();
  const std::string p = detail::detect_weight_prefix(config, file);
  const Index V = config.vocab_size, E = config.embedding_dim(), H = config.hidden_size,
              I = config.intermediate_size;
  const bool bert = config.family == EncoderFamily::Bert, pre = config.pre_layer_norm;

  struct Expected {
    std::string name;
    std::vector<Index> shape;
  };
  std::vector<Expected> expected;
  const auto want = [&](std::string name, std::vector<Index> shape) {
    expected.push_back({std::move(name), std::move(shape)});
  };
  const auto linear = [&](const std::string& base, Index out, Index in) {
    want(base + ".weight", {out, in});
    want(base + ".bias", {out});
  };
  const auto norm = [&](const std::string& base, Index n) {
    want(base + ".weight", {n});
    want(base + ".bias", {n});
  };
  want(p + "embeddings.word_embeddings.weight", {V, E});
  if (bert) want(p + "embeddings.position_embeddings.weight", {config.max_position_embeddings, E});
  want(p + "embeddings.token_type_embeddings.weight", {config.type_vocab_size, E});
  norm(p + "embeddings.LayerNorm", E);
  if (!bert && E != H) linear(p + "embeddings_project", H, E);
  for (Index l = 0; l < config.num_hidden_layers; ++l) {
    const std::string b = p + "encoder.layer." + std::to_string(l) + ".";
    linear(b + "attention.self.query", H, H);
    linear(b + "attention.self.key", H, H);
    linear(b + "attention.self.value", H, H);
    linear(b + "attention.output.dense", H, H);
    norm(b + (pre ? "attention.LayerNorm" : "attention.output.LayerNorm"), H);
    linear(b + "intermediate.dense", I, H);
    linear(b + "output.dense", H, I);
    norm(b + (pre ? "intermediate.LayerNorm" : "output.LayerNorm"), H);
  }
  if (pre) norm(p + "LayerNorm", H);

  std::vector<std::string> missing, misshaped, not_float, unused;
  std::set<std::string> used;
  for (const auto& e : expected) {
    used.insert(e.name);
    if (!file.contains(e.name)) {
      missing.push_back(e.name);
      continue;
    }
    const TensorInfo& t = file.info(e.name);
    if (t.dtype == Dtype::I64) not_float.push_back(e.name + ": " + dtype_name(t.dtype));
    if (t.shape != e.shape)
      misshaped.push_back(e.name + ": expected " + SafetensorsFile::shape_string(e.shape) +
                          " (got " + SafetensorsFile::shape_string(t.shape) + ")");
  }
  if (!options.allow_unused)
    for (const auto& name : file.names())
      if (used.count(name) == 0 && !detail::ignored_weight_name(name, p)) unused.push_back(name);
  if (!missing.empty() || !misshaped.empty() || !not_float.empty() || !unused.empty()) {
    for (auto* v : {&missing, &misshaped, &not_float}) std::sort(v->begin(), v->end());
    std::ostringstream os;
    const auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      os << "; " << what << " [";
      for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
      os << "]";
    };
    list("missing", missing);
    list("mis-shaped", misshaped);
    list("not a float dtype", not_float);
    list("unused", unused);
    if (!unused.empty()) os << " (WeightLoadOptions::allow_unused accepts unused tensors)";
    detail::throw_format(where, "weights in ", file.source(), " do not match the ",
                         to_string(config.family), " config (prefix \"", p, "\", ",
                         config.num_hidden_layers, " layers, hidden ", H, ", embedding ", E,
                         ", intermediate ", I, ")", os.str());
  }

  EncoderWeights<T> w;
  const auto mat = [&](const std::string& name) { return file.matrix<T>(name); };
  const auto vec = [&](const std::string& name) { return file.vector<T>(name); };
  w.word_embeddings = mat(p + "embeddings.word_embeddings.weight");
  if (bert) w.position_embeddings = mat(p + "embeddings.position_embeddings.weight");
  w.token_type_embeddings = mat(p + "embeddings.token_type_embeddings.weight");
  w.embeddings_norm_weight = vec(p + "embeddings.LayerNorm.weight");
  w.embeddings_norm_bias = vec(p + "embeddings.LayerNorm.bias");
  if (!bert && E != H) {
    w.embeddings_project = mat(p + "embeddings_project.weight");
    w.embeddings_project_bias = vec(p + "embeddings_project.bias");
  }
  w.layers.resize(static_cast<std::size_t>(config.num_hidden_layers));
  for (Index l = 0; l < config.num_hidden_layers; ++l) {
    const std::string b = p + "encoder.layer." + std::to_string(l) + ".";
    EncoderLayerWeights<T>& x = w.layers[static_cast<std::size_t>(l)];
    x.query = mat(b + "attention.self.query.weight");
    x.query_bias = vec(b + "attention.self.query.bias");
    x.key = mat(b + "attention.self.key.weight");
    x.key_bias = vec(b + "attention.self.key.bias");
    x.value = mat(b + "attention.self.value.weight");
    x.value_bias = vec(b + "attention.self.value.bias");
    x.attention_output = mat(b + "attention.output.dense.weight");
    x.attention_output_bias = vec(b + "attention.output.dense.bias");
    const std::string n1 = b + (pre ? "attention.LayerNorm" : "attention.output.LayerNorm");
    x.attention_norm_weight = vec(n1 + ".weight");
    x.attention_norm_bias = vec(n1 + ".bias");
    x.intermediate = mat(b + "intermediate.dense.weight");
    x.intermediate_bias = vec(b + "intermediate.dense.bias");
    x.output = mat(b + "output.dense.weight");
    x.output_bias = vec(b + "output.dense.bias");
    const std::string n2 = b + (pre ? "intermediate.LayerNorm" : "output.LayerNorm");
    x.output_norm_weight = vec(n2 + ".weight");
    x.output_norm_bias = vec(n2 + ".bias");
  }
  if (pre) {
    w.final_norm_weight = vec(p + "LayerNorm.weight");
    w.final_norm_bias = vec(p + "LayerNorm.bias");
  }
  return w;
}

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_CHECKPOINT_HPP

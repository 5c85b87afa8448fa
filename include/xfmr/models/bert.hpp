// SPDX-License-Identifier: MIT
// BertModel: HF transformers' BertModel (and sentence-transformers' BERT encoders) on xfmr's
// blocks (SPEC §15.1–15.3).
#ifndef XFMR_MODELS_BERT_HPP
#define XFMR_MODELS_BERT_HPP

#include <string>

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/isa.hpp"
#include "../types.hpp"
#include "../weights/safetensors.hpp"
#include "checkpoint.hpp"
#include "config.hpp"
#include "encoder_model.hpp"

XFMR_NAMESPACE_BEGIN

/// BERT encoder (HF BertModel without the pooler):
///   x_t = LN(word[id_t] + token_type[type_t] + position[t]),  t = 0…L−1 per sequence,
///   then num_hidden_layers post-LN encoder layers (EncoderLayer), or pre-LN with the
///   xfmr_pre_layer_norm option.
/// forward(input, hidden): see detail::EncoderModel::forward (padded batch in, padded hidden
/// states out, padded rows zero). Pool with cls_pool / mean_pool / l2_normalize
/// (models/pooling.hpp): all-MiniLM-L6-v2's sentence vector is mean_pool then l2_normalize.
/// Owns its weights (packed for the GEMM engine) and its scratch; not thread-safe (one model
/// object per thread; the scratch grows to the largest batch seen).
template <typename T, class Isa = simd::native_isa>
class BertModel : public detail::EncoderModel<T, Isa> {
  using Base = detail::EncoderModel<T, Isa>;

 public:
  /// \throws std::invalid_argument if config is not a valid bert config or a weight has the
  ///         wrong shape.
  BertModel(const EncoderConfig& config, const EncoderWeights<T>& weights)
      : Base(Base::checked_family(config, EncoderFamily::Bert, kWhere), weights, kWhere) {}

  /// From a checkpoint already opened (names as read_encoder_weights), the layers' weights
  /// kept as options.weight_storage and options.bf16_kernel say (the config's are not read).
  /// \throws xfmr::format_error if the weights do not match the config (every missing, unused,
  ///         mis-shaped tensor named); std::invalid_argument if config is not bert.
  static BertModel load(const EncoderConfig& config, const SafetensorsFile& file,
                        const WeightLoadOptions& options = {}) {
    Base::checked_family(config, EncoderFamily::Bert, kWhere);
    EncoderConfig c = config;
    c.weight_storage = options.weight_storage;
    c.bf16_kernel = options.bf16_kernel;
    return BertModel(c, read_encoder_weights<T>(c, file, options, kWhere));
  }

  /// From an HF model folder: dir/config.json and dir/model.safetensors (a sentence-
  /// transformers folder is one: its BERT weights have no prefix).
  /// \throws xfmr::format_error for a malformed, unsupported or non-bert config.json, a malformed
  ///         safetensors file, or weights that do not match; std::runtime_error if a file cannot
  ///         be read.
  static BertModel load(const std::string& dir, const WeightLoadOptions& options = {}) {
    const EncoderConfig config = EncoderConfig::load(dir + "/config.json");
    if (config.family != EncoderFamily::Bert)
      detail::throw_format(kWhere, "expected model_type \"bert\" in ", dir,
                           "/config.json (got \"", to_string(config.family),
                           "\"; load it with RoFormerModel)");
    return load(config, SafetensorsFile::open(dir + "/model.safetensors"), options);
  }

 private:
  static constexpr const char* kWhere = "BertModel";
};

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_BERT_HPP

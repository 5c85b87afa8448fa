// SPDX-License-Identifier: MIT
// RoFormerModel: HF transformers' RoFormerModel (RoFormer, RoFormer-Sim) on xfmr's
// blocks (SPEC §15.1–15.3).
#ifndef XFMR_MODELS_ROFORMER_HPP
#define XFMR_MODELS_ROFORMER_HPP

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

/// RoFormer encoder (HF RoFormerModel; Su et al. 2021):
///   e_t = LN(word[id_t] + token_type[type_t])       (no absolute positions),
///   x_t = e_t·W_pᵀ + b_p  only when embedding_size E ≠ hidden_size H (embeddings_project),
///   then num_hidden_layers post-LN encoder layers with RoPE on q and k per head (interleaved
///   pairs, θ_i = 10000^(−2i/d), positions 0…L−1 per sequence; v too when rotary_value).
/// HF's sinusoidal table (encoder.embed_positions) is not read: the rotation is rebuilt in
/// double. Sequences longer than max_position_embeddings are accepted (HF would fail).
/// UniLM (RoFormer-Sim): EncoderInput::segment_ids.
/// forward(input, hidden): see detail::EncoderModel::forward (padded batch in, padded hidden
/// states out, padded rows zero). Pool with cls_pool / mean_pool / l2_normalize
/// (models/pooling.hpp).
/// Owns its weights (packed for the GEMM engine) and its scratch; not thread-safe (one model
/// object per thread; the scratch grows to the largest batch seen).
template <typename T, class Isa = simd::native_isa>
class RoFormerModel : public detail::EncoderModel<T, Isa> {
  using Base = detail::EncoderModel<T, Isa>;

 public:
  /// \throws std::invalid_argument if config is not a valid roformer config or a weight has the
  ///         wrong shape.
  RoFormerModel(const EncoderConfig& config, const EncoderWeights<T>& weights)
      : Base(Base::checked_family(config, EncoderFamily::RoFormer, kWhere), weights, kWhere) {}

  /// From a checkpoint already opened (names as read_encoder_weights), the layers' weights
  /// kept as options.weight_storage and options.bf16_kernel say (the config's are not read).
  /// \throws xfmr::format_error if the weights do not match the config (every missing, unused,
  ///         mis-shaped tensor named); std::invalid_argument if config is not roformer.
  static RoFormerModel load(const EncoderConfig& config, const SafetensorsFile& file,
                        const WeightLoadOptions& options = {}) {
    Base::checked_family(config, EncoderFamily::RoFormer, kWhere);
    EncoderConfig c = config;
    c.weight_storage = options.weight_storage;
    c.bf16_kernel = options.bf16_kernel;
    return RoFormerModel(c, read_encoder_weights<T>(c, file, options, kWhere));
  }

  /// From an HF model folder: dir/config.json and dir/model.safetensors (names with the
  /// "roformer." prefix or none).
  /// \throws xfmr::format_error for a malformed, unsupported or non-roformer config.json, a
  ///         malformed safetensors file, or weights that do not match; std::runtime_error if a
  ///         file cannot be read.
  static RoFormerModel load(const std::string& dir, const WeightLoadOptions& options = {}) {
    const EncoderConfig config = EncoderConfig::load(dir + "/config.json");
    if (config.family != EncoderFamily::RoFormer)
      detail::throw_format(kWhere, "expected model_type \"roformer\" in ", dir,
                           "/config.json (got \"", to_string(config.family),
                           "\"; load it with BertModel)");
    return load(config, SafetensorsFile::open(dir + "/model.safetensors"), options);
  }

 private:
  static constexpr const char* kWhere = "RoFormerModel";
};

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_ROFORMER_HPP

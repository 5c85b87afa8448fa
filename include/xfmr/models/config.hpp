// SPDX-License-Identifier: MIT
// EncoderConfig: the shape and options of a BERT / RoFormer encoder, read from an HF config.json
// (SPEC §15).
#ifndef XFMR_MODELS_CONFIG_HPP
#define XFMR_MODELS_CONFIG_HPP

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../config.hpp"
#include "../error.hpp"
#include "../layers/activation.hpp"
#include "../simd/gemm_bf16.hpp"
#include "../position/rope.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// The two encoder families (SPEC §15.1–15.2): BERT adds learned absolute positions to the
/// embeddings; RoFormer rotates q and k per head instead (RoPE) and may project a narrower
/// embedding to the hidden size.
enum class EncoderFamily { Bert, RoFormer };

/// Name as in config.json's "model_type": "bert" or "roformer".
inline const char* to_string(EncoderFamily f) noexcept {
  return f == EncoderFamily::Bert ? "bert" : "roformer";
}

/// Everything an encoder needs besides its weights. Field names follow HF's config.json; the
/// defaults are HF's (BertConfig, RoFormerConfig) where config.json may omit a key.
struct EncoderConfig {
  EncoderFamily family = EncoderFamily::Bert;  ///< "model_type"
  Index vocab_size = 0;                        ///< V, rows of the word embedding table
  Index hidden_size = 0;                       ///< H
  Index embedding_size = 0;  ///< E (RoFormer "embedding_size"); 0 = H. BERT: must be 0 or H
  Index num_hidden_layers = 0;
  Index num_attention_heads = 0;  ///< must divide H; head size d = H / heads
  Index intermediate_size = 0;    ///< FFN width
  ActivationKind hidden_act = ActivationKind::GeluErf;  ///< HF "gelu" = erf form
  double layer_norm_eps = 1e-12;
  /// BERT: rows of the absolute position table, the longest sequence accepted. RoFormer: HF's
  /// sinusoidal table length, kept for reference only (RoPE needs no table: longer sequences
  /// are accepted, HF would fail on them).
  Index max_position_embeddings = 512;
  Index type_vocab_size = 2;  ///< rows of the token-type table (>= 1)
  bool rotary_value = false;  ///< RoFormer: rotate v too (HF "rotary_value")
  /// RoFormer: channel pairing of the rotation. HF RoFormer and bert4keras use Interleaved
  /// (pairs 2i, 2i+1); HalfSplit (pairs i, i + d/2) for checkpoints converted that way.
  RopeLayout rope_layout = RopeLayout::Interleaved;
  double rope_base = 10000.0;  ///< RoFormer: θ_i = base^(−2i/d)
  /// Our own option (config.json key "xfmr_pre_layer_norm"): pre-LN layers
  /// x += Attn(LN₁(x)); x += FFN(LN₂(x)), and a final LayerNorm after the last layer, with
  /// HF roberta-prelayernorm's weight names (see models/encoder.hpp). Default: post-LN, as BERT.
  bool pre_layer_norm = false;
  /// Not a config.json key: how the layers keep their Dense weights (WeightStorage::Bf16: float
  /// models only, half the bytes, bf16 GEMMs; the loaders take it from WeightLoadOptions).
  WeightStorage weight_storage = WeightStorage::Native;
  /// Not a config.json key: the bf16 GEMM kernel of those layers (simd::Bf16Kernel; Auto:
  /// vdpbf16ps where it outruns fp32 FMAs, see there), with WeightStorage::Bf16 only.
  simd::Bf16Kernel bf16_kernel = simd::Bf16Kernel::Auto;

  Index head_dim() const noexcept {
    return num_attention_heads > 0 ? hidden_size / num_attention_heads : 0;
  }
  /// E, with 0 resolved to H.
  Index embedding_dim() const noexcept { return embedding_size > 0 ? embedding_size : hidden_size; }

  /// \throws std::invalid_argument naming the field, what is expected and what came: sizes
  ///         < 1, H not divisible by the heads, an odd head size for RoFormer (RoPE pairs), a
  ///         BERT embedding_size != H, rotary_value on BERT, eps not finite or < 0, a rope_base
  ///         not finite and > 1.
  void validate() const {
    const char* where = "EncoderConfig";
    const auto positive = [&](Index v, const char* name) {
      detail::require(v >= 1, where, "expected ", name, " >= 1 (got ", v, ")");
    };
    positive(vocab_size, "vocab_size");
    positive(hidden_size, "hidden_size");
    positive(num_hidden_layers, "num_hidden_layers");
    positive(num_attention_heads, "num_attention_heads");
    positive(intermediate_size, "intermediate_size");
    positive(max_position_embeddings, "max_position_embeddings");
    positive(type_vocab_size, "type_vocab_size");
    detail::require(embedding_size >= 0, where,
                    "expected embedding_size >= 0 (0 = hidden_size) (got ", embedding_size, ")");
    detail::require(
        hidden_size % num_attention_heads == 0, where,
        "expected hidden_size to be a multiple of num_attention_heads (got hidden_size=",
        hidden_size, ", num_attention_heads=", num_attention_heads, ")");
    detail::require(std::isfinite(layer_norm_eps) && layer_norm_eps >= 0, where,
                    "expected layer_norm_eps finite and >= 0 (got ", layer_norm_eps, ")");
    if (family == EncoderFamily::Bert) {
      detail::require(embedding_size == 0 || embedding_size == hidden_size, where,
                      "expected embedding_size = hidden_size for bert (got embedding_size=",
                      embedding_size, ", hidden_size=", hidden_size, ")");
      detail::require(!rotary_value, where,
                      "expected rotary_value = false for bert (RoPE is RoFormer's; got true)");
    } else {
      detail::require(head_dim() % 2 == 0, where,
                      "expected an even head size for roformer (RoPE rotates channel pairs; got "
                      "hidden_size/num_attention_heads=",
                      head_dim(), ")");
      detail::require(std::isfinite(rope_base) && rope_base > 1, where,
                      "expected rope_base finite and > 1 (got ", rope_base, ")");
    }
  }

  /// Reads an HF config.json object. Required keys: "model_type" ("bert" or "roformer"),
  /// "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
  /// "intermediate_size". Optional, with HF's defaults: "hidden_act" ("gelu"; any name
  /// activation_from_name knows), "layer_norm_eps" (1e-12), "max_position_embeddings" (512),
  /// "type_vocab_size" (2), "embedding_size" (RoFormer; null or absent = hidden_size),
  /// "rotary_value" (false), "position_embedding_type" (only "absolute"), "is_decoder" and
  /// "add_cross_attention" (only false), "xfmr_pre_layer_norm" (false). Other keys are ignored
  /// (dropout, initializer_range, architectures, …).
  /// \throws xfmr::format_error naming the key, what was expected and what came (wrong type,
  ///         unsupported option, or a validate() failure).
  static EncoderConfig from_json(const nlohmann::json& j) {
    const char* where = "EncoderConfig";
    if (!j.is_object())
      detail::throw_format(where, "expected a JSON object (got ", j.type_name(), ")");
    EncoderConfig c;
    const std::string type = get_string(j, "model_type", nullptr);
    if (type == "bert")
      c.family = EncoderFamily::Bert;
    else if (type == "roformer")
      c.family = EncoderFamily::RoFormer;
    else
      detail::throw_format(where, "expected \"model_type\" \"bert\" or \"roformer\" (got \"", type,
                           "\")");
    c.vocab_size = get_index(j, "vocab_size", -1);
    c.hidden_size = get_index(j, "hidden_size", -1);
    c.num_hidden_layers = get_index(j, "num_hidden_layers", -1);
    c.num_attention_heads = get_index(j, "num_attention_heads", -1);
    c.intermediate_size = get_index(j, "intermediate_size", -1);
    c.max_position_embeddings = get_index(j, "max_position_embeddings", 512);
    c.type_vocab_size = get_index(j, "type_vocab_size", 2);
    c.embedding_size = get_index(j, "embedding_size", 0);
    c.layer_norm_eps = get_number(j, "layer_norm_eps", 1e-12);
    const std::string act = get_string(j, "hidden_act", "gelu");
    try {
      c.hidden_act = activation_from_name(act);
    } catch (const std::invalid_argument& e) {
      detail::throw_format(where, "unsupported \"hidden_act\" (", e.what(), ")");
    }
    c.rotary_value = get_bool(j, "rotary_value", false);
    c.pre_layer_norm = get_bool(j, "xfmr_pre_layer_norm", false);
    const std::string pos = get_string(j, "position_embedding_type", "absolute");
    if (pos != "absolute")
      detail::throw_format(where, "expected \"position_embedding_type\" \"absolute\" (got \"", pos,
                           "\"; relative_key and relative_key_query are not supported)");
    if (get_bool(j, "is_decoder", false))
      detail::throw_format(where,
                           "expected \"is_decoder\" false (got true; only encoders are supported)");
    if (get_bool(j, "add_cross_attention", false))
      detail::throw_format(
          where, "expected \"add_cross_attention\" false (got true; only encoders are supported)");
    if (c.family == EncoderFamily::Bert && j.contains("rotary_value") && c.rotary_value)
      detail::throw_format(where, "expected \"rotary_value\" false for bert (got true)");
    try {
      c.validate();
    } catch (const std::invalid_argument& e) {
      XFMR_THROW(format_error(e.what()));
    }
    return c;
  }

  /// Parses JSON text (see from_json). \throws xfmr::format_error on malformed JSON too.
  static EncoderConfig from_json_text(std::string_view text) {
    nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded())
      detail::throw_format("EncoderConfig", "expected valid JSON (got a parse error)");
    return from_json(j);
  }

  /// Reads a config.json file (see from_json).
  /// \throws xfmr::format_error if the file cannot be read, or as from_json, the message
  ///         prefixed with the path.
  static EncoderConfig load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      detail::throw_format("EncoderConfig", "expected a readable config file (got none at \"", path,
                           "\")");
    std::ostringstream ss;
    ss << in.rdbuf();
    try {
      return from_json_text(ss.str());
    } catch (const format_error& e) {
      XFMR_THROW(format_error(std::string(e.what()) + " [in " + path + "]"));
    }
  }

 private:
  // A key's value, or null when absent. HF writes absent options as null too.
  static const nlohmann::json* find(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] static void bad(const char* key, const char* expected, const nlohmann::json* v) {
    detail::throw_format("EncoderConfig", "expected \"", key, "\" to be ", expected, " (got ",
                         v ? v->dump() : std::string("nothing"), ")");
  }
  // fallback < 0: required.
  static Index get_index(const nlohmann::json& j, const char* key, Index fallback) {
    const nlohmann::json* v = find(j, key);
    if (!v) {
      if (fallback < 0) bad(key, "an integer (required)", nullptr);
      return fallback;
    }
    if (!v->is_number_integer() ||
        (v->is_number_unsigned() &&
         v->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<Index>::max())))
      bad(key, "an integer", v);
    return static_cast<Index>(v->get<std::int64_t>());
  }
  static double get_number(const nlohmann::json& j, const char* key, double fallback) {
    const nlohmann::json* v = find(j, key);
    if (!v) return fallback;
    if (!v->is_number()) bad(key, "a number", v);
    return v->get<double>();
  }
  static bool get_bool(const nlohmann::json& j, const char* key, bool fallback) {
    const nlohmann::json* v = find(j, key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(key, "true or false", v);
    return v->get<bool>();
  }
  // fallback == nullptr: required.
  static std::string get_string(const nlohmann::json& j, const char* key, const char* fallback) {
    const nlohmann::json* v = find(j, key);
    if (!v) {
      if (!fallback) bad(key, "a string (required)", nullptr);
      return fallback;
    }
    if (!v->is_string()) bad(key, "a string", v);
    return v->get<std::string>();
  }
};

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_CONFIG_HPP

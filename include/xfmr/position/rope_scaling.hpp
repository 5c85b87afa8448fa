// SPDX-License-Identifier: MIT
// RoPE frequencies and context-extension variants: PI, NTK-aware, NTK-fixed / mixed (Su, kexue
// 9675, 9706), dynamic NTK, YaRN (arXiv:2309.00071), Llama-3.1, and the log-n query scale.
#ifndef XFMR_POSITION_ROPE_SCALING_HPP
#define XFMR_POSITION_ROPE_SCALING_HPP

#include <algorithm>
#include <cmath>
#include <vector>

#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// How the rotary frequencies θ_r = b^(−2r/d_rot) are changed to reach a context s times longer.
enum class RopeScalingType {
  None,        ///< θ'_r = θ_r
  Linear,      ///< position interpolation: θ'_r = θ_r / s
  NtkAware,    ///< b' = b · s^(d_rot/(d_rot−2))
  NtkFixed,    ///< θ'_r = θ_r · s^(−2(r+1)/d_rot)  (last pair exactly PI)
  NtkMixed,    ///< θ'_r = θ_r · exp(−a(r+1)^β), a = ln s / (d_rot/2)^β  (β=1 fixed, β=0 PI)
  DynamicNtk,  ///< NtkAware with s replaced by s·L/L_train − (s−1) once L > L_train (HF
               ///< "dynamic"); rebuild the Rope when L grows, as HF recomputes its cache
  Yarn,        ///< NTK-by-parts ramp between extrapolation and PI, plus attention factor μ
  Llama3,      ///< wavelength bands: long ones PI, short ones kept, linear blend between
};

/// One context-extension configuration. Only the fields of the chosen type are read; a factor
/// of 1 gives plain RoPE for every type.
struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;                ///< s = L_new / L_train, finite and >= 1
  Index original_max_positions = 0;   ///< L_train: Yarn, DynamicNtk, Llama3 (pre-extension!)
  double mixed_beta = 0.625;          ///< NtkMixed β in [0, ∞); Su's blog 0.625, repo 0.75
  Index dynamic_length = 0;           ///< DynamicNtk: the current sequence length L
  double yarn_beta_fast = 32.0;       ///< Yarn: pairs rotating more than this in L_train: kept
  double yarn_beta_slow = 1.0;        ///< Yarn: pairs rotating fewer times than this: PI
  double yarn_ext_factor = 1.0;       ///< Yarn: weight of extrapolation in the ramp, [0, 1]
  double yarn_attention_factor = 0;   ///< Yarn μ; 0 means the default 0.1·ln s + 1
  double llama3_low_freq_factor = 1.0;
  double llama3_high_freq_factor = 4.0;
};

namespace detail {

inline const char* scaling_name(RopeScalingType t) {
  switch (t) {
    case RopeScalingType::None: return "None";
    case RopeScalingType::Linear: return "Linear";
    case RopeScalingType::NtkAware: return "NtkAware";
    case RopeScalingType::NtkFixed: return "NtkFixed";
    case RopeScalingType::NtkMixed: return "NtkMixed";
    case RopeScalingType::DynamicNtk: return "DynamicNtk";
    case RopeScalingType::Yarn: return "Yarn";
    case RopeScalingType::Llama3: return "Llama3";
  }
  return "unknown";
}

inline void validate_scaling(const RopeScaling& sc, const char* where) {
  using T = RopeScalingType;
  const int t = static_cast<int>(sc.type);
  require(t >= static_cast<int>(T::None) && t <= static_cast<int>(T::Llama3), where,
          "scaling.type must be a RopeScalingType enumerator (got ", t, ")");
  if (sc.type == T::None) return;
  const char* name = scaling_name(sc.type);
  require(std::isfinite(sc.factor) && sc.factor >= 1.0, where, "scaling.factor must be finite and >= 1 for ",
          name, " (got ", sc.factor, ")");
  if (sc.type == T::Yarn || sc.type == T::DynamicNtk || sc.type == T::Llama3)
    require(sc.original_max_positions > 0, where,
            "scaling.original_max_positions (the pre-extension context length) must be > 0 for ",
            name, " (got ", sc.original_max_positions, ")");
  if (sc.type == T::NtkMixed)
    require(std::isfinite(sc.mixed_beta) && sc.mixed_beta >= 0, where,
            "scaling.mixed_beta must be finite and >= 0 (got ", sc.mixed_beta, ")");
  if (sc.type == T::DynamicNtk)
    require(sc.dynamic_length >= 0, where, "scaling.dynamic_length must be >= 0 (got ",
            sc.dynamic_length, ")");
  if (sc.type == T::Yarn) {
    require(std::isfinite(sc.yarn_beta_fast) && std::isfinite(sc.yarn_beta_slow) &&
                sc.yarn_beta_slow > 0 && sc.yarn_beta_fast > sc.yarn_beta_slow,
            where, "scaling.yarn_beta_fast > yarn_beta_slow > 0 (got beta_fast=", sc.yarn_beta_fast,
            ", beta_slow=", sc.yarn_beta_slow, ")");
    require(std::isfinite(sc.yarn_ext_factor) && sc.yarn_ext_factor >= 0 &&
                sc.yarn_ext_factor <= 1,
            where, "scaling.yarn_ext_factor must be in [0, 1] (got ", sc.yarn_ext_factor, ")");
    require(std::isfinite(sc.yarn_attention_factor) && sc.yarn_attention_factor >= 0, where,
            "scaling.yarn_attention_factor must be finite and >= 0, 0 for the default (got ",
            sc.yarn_attention_factor, ")");
  }
  if (sc.type == T::Llama3)
    require(std::isfinite(sc.llama3_low_freq_factor) && std::isfinite(sc.llama3_high_freq_factor) &&
                sc.llama3_low_freq_factor > 0 &&
                sc.llama3_high_freq_factor > sc.llama3_low_freq_factor,
            where, "scaling.llama3_high_freq_factor > llama3_low_freq_factor > 0 (got low=",
            sc.llama3_low_freq_factor, ", high=", sc.llama3_high_freq_factor, ")");
}

}  // namespace detail

/// Checks a rotary configuration: rotary_dim even and > 0, base finite and > 1, scaling fields
/// consistent. `where` names the component in the message.
/// \throws std::invalid_argument naming the offending field and value.
inline void validate_rope_frequencies(Index rotary_dim, double base, const RopeScaling& scaling,
                                      const char* where = "rope_inv_freq") {
  detail::require(rotary_dim > 0 && rotary_dim % 2 == 0, where,
                  "rotary_dim must be even and > 0 (got rotary_dim=", rotary_dim, ")");
  detail::require(std::isfinite(base) && base > 1.0, where,
                  "base must be finite and > 1 (got base=", base, ")");
  detail::validate_scaling(scaling, where);
}

/// The angular frequencies θ'_r, r < rotary_dim/2, in double (SPEC §1.5):
///   θ_r = b^(−2r/d_rot) = exp(−(2r/d_rot)·ln b), then the scaling variant's rule.
/// \throws std::invalid_argument as validate_rope_frequencies.
inline std::vector<double> rope_inv_freq(Index rotary_dim, double base,
                                         const RopeScaling& scaling = {}) {
  validate_rope_frequencies(rotary_dim, base, scaling);
  using T = RopeScalingType;
  const double d = static_cast<double>(rotary_dim);
  const double s = scaling.type == T::None ? 1.0 : scaling.factor;
  const Index pairs = rotary_dim / 2;
  double b = base;
  if (scaling.type == T::NtkAware && rotary_dim > 2) b = base * std::pow(s, d / (d - 2));
  // Factor 1 disables dynamic NTK too (HF's formula would still grow the base past L_train).
  if (scaling.type == T::DynamicNtk && rotary_dim > 2 && s > 1.0 &&
      scaling.dynamic_length > scaling.original_max_positions) {
    const double L = static_cast<double>(scaling.dynamic_length);
    const double L0 = static_cast<double>(scaling.original_max_positions);
    b = base * std::pow(s * L / L0 - (s - 1), d / (d - 2));
  }
  const double log_b = std::log(b);

  std::vector<double> theta(static_cast<std::size_t>(pairs));
  for (Index r = 0; r < pairs; ++r) theta[r] = std::exp(-(2.0 * r / d) * log_b);
  if (s == 1.0) return theta;  // every variant is the identity at s = 1

  switch (scaling.type) {
    case T::Linear:
      for (auto& t : theta) t /= s;
      break;
    case T::NtkFixed:
      for (Index r = 0; r < pairs; ++r) theta[r] *= std::exp(-2.0 * (r + 1) / d * std::log(s));
      break;
    case T::NtkMixed: {
      const double beta = scaling.mixed_beta;
      const double a = std::log(s) / std::pow(d / 2, beta);
      for (Index r = 0; r < pairs; ++r) theta[r] *= std::exp(-a * std::pow(r + 1.0, beta));
      break;
    }
    case T::Yarn: {
      // Ramp bounds in pair-index space, as the reference code: corr(n) is the pair index
      // whose wavelength fits n times into L_train.
      const double L0 = static_cast<double>(scaling.original_max_positions);
      const auto corr = [&](double n_rot) {
        return d * std::log(L0 / (2 * detail::kPi * n_rot)) / (2 * std::log(base));
      };
      const double lo = std::max(std::floor(corr(scaling.yarn_beta_fast)), 0.0);
      double hi = std::min(std::ceil(corr(scaling.yarn_beta_slow)), d - 1);
      if (hi == lo) hi += 0.001;
      for (Index r = 0; r < pairs; ++r) {
        const double gamma = std::clamp((r - lo) / (hi - lo), 0.0, 1.0);
        const double w = (1 - gamma) * scaling.yarn_ext_factor;  // 1: extrapolate, 0: PI
        theta[r] = theta[r] / s * (1 - w) + theta[r] * w;
      }
      break;
    }
    case T::Llama3: {
      const double L0 = static_cast<double>(scaling.original_max_positions);
      const double f_lo = scaling.llama3_low_freq_factor, f_hi = scaling.llama3_high_freq_factor;
      for (auto& t : theta) {
        const double wavelength = 2 * detail::kPi / t;
        if (wavelength < L0 / f_hi) continue;  // high frequency: kept
        if (wavelength > L0 / f_lo) {          // low frequency: interpolated
          t /= s;
          continue;
        }
        const double smooth = (L0 / wavelength - f_lo) / (f_hi - f_lo);
        t = (1 - smooth) * t / s + smooth * t;
      }
      break;
    }
    default:  // None, NtkAware, DynamicNtk: the base already carries the change
      break;
  }
  return theta;
}

/// Factor μ that multiplies the cos/sin tables (so every q·k logit gets μ²). YaRN:
/// μ = 0.1·ln s + 1 (or the explicit yarn_attention_factor); 1 for every other variant.
inline double rope_attention_factor(const RopeScaling& scaling) {
  detail::validate_scaling(scaling, "rope_attention_factor");
  if (scaling.type != RopeScalingType::Yarn) return 1.0;
  if (scaling.yarn_attention_factor > 0) return scaling.yarn_attention_factor;
  return scaling.factor <= 1.0 ? 1.0 : 0.1 * std::log(scaling.factor) + 1.0;
}

/// Su's log-n query scale for length extrapolation (SPEC §1.5.3):
///   scale(i) = max(1, ln(i + 1) / ln L_train),  i the 0-based query position.
/// \throws std::invalid_argument if training_length < 2 or position < 0.
inline double log_n_query_scale(Index position, Index training_length) {
  detail::require(training_length >= 2, "log_n_query_scale",
                  "training_length must be >= 2 (got ", training_length, ")");
  detail::require(position >= 0, "log_n_query_scale", "position must be >= 0 (got ", position,
                  ")");
  return std::max(1.0, std::log(static_cast<double>(position) + 1.0) /
                           std::log(static_cast<double>(training_length)));
}

namespace detail {
template <typename T>
void scale_queries_log_n(MatrixRef<T> q, Index pos0, Index training_length) {
  require(pos0 >= 0, "scale_queries_log_n", "pos0 must be >= 0 (got ", pos0, ")");
  log_n_query_scale(0, training_length);  // validates training_length
  // Rows inside the training window keep scale 1: skip them.
  for (Index t = std::max<Index>(0, training_length - 1 - pos0); t < q.rows(); ++t)
    q.row(t) *= static_cast<T>(log_n_query_scale(pos0 + t, training_length));
}
}  // namespace detail

/// Multiplies query row t (position pos0 + t) by log_n_query_scale(pos0 + t, training_length),
/// in place. q: (tokens × any width).
/// \throws std::invalid_argument if pos0 < 0 or training_length < 2.
inline void scale_queries_log_n(MatrixRef<float> q, Index pos0, Index training_length) {
  detail::scale_queries_log_n<float>(q, pos0, training_length);
}
inline void scale_queries_log_n(MatrixRef<double> q, Index pos0, Index training_length) {
  detail::scale_queries_log_n<double>(q, pos0, training_length);
}

XFMR_NAMESPACE_END

#endif  // XFMR_POSITION_ROPE_SCALING_HPP

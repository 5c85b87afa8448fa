// SPDX-License-Identifier: MIT
// Score scales of softmax attention (SPEC §4.1, §4.4, §1.5.3): 1/√d, none, a user factor, the
// entropy-invariant log-n scale and the train-free log-position scale.
#ifndef XFMR_ATTENTION_SCALE_HPP
#define XFMR_ATTENTION_SCALE_HPP

#include <algorithm>
#include <cmath>

#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// How λ in s_ij = λ_i·q_i·k_j is chosen.
///   InvSqrtDim:  λ = 1/√d (default; d = head_dim, the key size)
///   None:        λ = 1 (T5)
///   Factor:      λ = factor
///   LogN:        λ_i = (1/√d)·ln(max(ℓ_i, min_length)) / ln(base_length), ℓ_i = number of keys
///                row i may attend to (entropy-invariant "softmax_plus", kexue 8823; bert4keras
///                uses base_length 512 and min_length 16). Equals 1/√d when ℓ_i = base_length.
///   LogPosition: λ_i = (1/√d)·max(1, ln(p_i + 1) / ln(base_length)), p_i the absolute query
///                position (n_k − n_q + i) and base_length the training length (Su's train-free
///                log-n scaling, bojone/rerope, SPEC §1.5.3).
enum class ScaleKind { InvSqrtDim, None, Factor, LogN, LogPosition };

struct AttentionScale {
  ScaleKind kind = ScaleKind::InvSqrtDim;
  double factor = 1.0;         ///< Factor: λ (finite)
  double base_length = 512.0;  ///< LogN, LogPosition: finite, > 1
  double min_length = 16.0;    ///< LogN: clamp ℓ_i ≥ min_length (finite, ≥ 1)

  static AttentionScale inv_sqrt_dim() { return {}; }
  static AttentionScale none() { return {ScaleKind::None, 1.0, 512.0, 16.0}; }
  static AttentionScale user(double f) { return {ScaleKind::Factor, f, 512.0, 16.0}; }
  static AttentionScale log_n(double base = 512.0, double min_len = 16.0) {
    return {ScaleKind::LogN, 1.0, base, min_len};
  }
  static AttentionScale log_position(double training_length) {
    return {ScaleKind::LogPosition, 1.0, training_length, 1.0};
  }
};

namespace detail {

/// \throws std::invalid_argument on a non-finite factor, base_length ≤ 1 or min_length < 1.
inline void check_scale(const AttentionScale& s, const char* where) {
  require(std::isfinite(s.factor), where, "scale.factor must be finite (got ", s.factor, ")");
  require(std::isfinite(s.base_length) && s.base_length > 1.0, where,
          "scale.base_length must be finite and > 1 (got ", s.base_length, ")");
  require(std::isfinite(s.min_length) && s.min_length >= 1.0, where,
          "scale.min_length must be finite and >= 1 (got ", s.min_length, ")");
}

/// The row-independent part of λ (everything but the log-n / log-position factor).
inline double base_scale(const AttentionScale& s, Index head_dim) {
  switch (s.kind) {
    case ScaleKind::None: return 1.0;
    case ScaleKind::Factor: return s.factor;
    default: return 1.0 / std::sqrt(static_cast<double>(head_dim));
  }
}

/// λ_i for a row with `allowed` keys at absolute position `pos` (see ScaleKind).
inline double row_scale(const AttentionScale& s, double base, Index allowed, Index pos) {
  switch (s.kind) {
    case ScaleKind::LogN:
      return base * std::log(std::max(static_cast<double>(allowed), s.min_length)) /
             std::log(s.base_length);
    case ScaleKind::LogPosition:
      return base * std::max(1.0, std::log(static_cast<double>(pos) + 1.0) / std::log(s.base_length));
    default: return base;
  }
}

inline bool scale_varies_by_row(const AttentionScale& s) {
  return s.kind == ScaleKind::LogN || s.kind == ScaleKind::LogPosition;
}

}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_SCALE_HPP

// SPDX-License-Identifier: MIT
// Feature maps for linear attention (SPEC §5.2, §7.2): elu+1, relu+ε, exp, 1+cosine, the
// "efficient attention" softmax pair, compressed order-2 Taylor, and a user functor.
#ifndef XFMR_ATTENTION_FEATURE_MAP_HPP
#define XFMR_ATTENTION_FEATURE_MAP_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <type_traits>

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/feature_map.hpp"
#include "../simd/isa.hpp"
#include "../simd/row.hpp"
#include "../simd/taylor.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// The similarity sim(q, k) = φ(q)·ϕ(k) of linear attention (SPEC §5.2; d = head_dim, m = feature
/// dimension):
///   EluPlusOne          φ = ϕ = elu(x) + 1 (= 1 + x for x ≥ 0, e^x below)            m = d
///   Relu                φ = ϕ = max(x, 0) + ε, ε = relu_eps (default 1e-3)          m = d
///   Exp                 φ = ϕ = e^x (computed with exact max-shifts, see below)     m = d
///   OnePlusCosine       φ = ϕ = [1, x/‖x‖] (x = 0 maps to [1, 0]), sim = 1 + cos    m = d + 1
///   EfficientAttention  φ(q) = softmax over q's features; ϕ(k) = softmax of each feature over
///                       the (unpadded) key positions, no denominator (Shen et al.). Causal:
///                       ϕ(k) = e^k with the usual denominator (lucidrains)            m = d
///   Taylor2             φ = ϕ = [1, x', {x'_a²/√2}_a, {x'_a x'_c}_{a<c}], x' = s·x
///                       (s = taylor_scale, default d^(−1/4)): φ(q)·φ(k) = 1 + q'·k' +
///                       (q'·k')²/2, the order-2 Taylor kernel (SPEC §7.2)       m = 1 + d + d(d+1)/2
///   Custom              φ = ϕ = the user's functor (x: d values → φ: m values, all ≥ 0)
/// Exp: rows are computed as e^{x − c} with c the row maximum (queries) or a running maximum over
/// keys; the factors e^c are carried in log form into the normaliser's ε term, so the result
/// equals the unshifted formula (including ε) and never overflows.
enum class FeatureMap { EluPlusOne, Relu, Exp, OnePlusCosine, EfficientAttention, Taylor2, Custom };

/// Name of a feature map, for messages and benchmark labels.
inline const char* feature_map_name(FeatureMap f) noexcept {
  switch (f) {
    case FeatureMap::EluPlusOne: return "elu+1";
    case FeatureMap::Relu: return "relu";
    case FeatureMap::Exp: return "exp";
    case FeatureMap::OnePlusCosine: return "1+cosine";
    case FeatureMap::EfficientAttention: return "efficient";
    case FeatureMap::Taylor2: return "taylor2";
    case FeatureMap::Custom: return "custom";
  }
  return "?";
}

/// User feature map: reads x (head_dim values), writes φ(x) (custom_feature_dim values, ≥ 0).
template <typename T>
using CustomFeatureFn = std::function<void(const T* x, T* phi)>;

/// Feature dimension m of a built-in map for head size d (Custom: custom_dim).
inline Index feature_dim(FeatureMap f, Index d, Index custom_dim = 0) noexcept {
  switch (f) {
    case FeatureMap::OnePlusCosine: return d + 1;
    case FeatureMap::Taylor2: return 1 + d + d * (d + 1) / 2;
    case FeatureMap::Custom: return custom_dim;
    default: return d;
  }
}

namespace detail {

/// Maps rows of one head to features. Queries and keys share it; the key side of the
/// non-causal efficient-attention pair (a softmax over positions) is a whole-block operation.
/// Thread-safe: immutable after construction, every method const and scratch-free (a Custom
/// functor must be safe to call concurrently too).
template <typename T>
class FeatureMapper {
  using Isa = simd::native_isa;

 public:
  FeatureMapper() = default;
  FeatureMapper(FeatureMap kind, Index d, Index m, T relu_eps, T taylor_scale,
                CustomFeatureFn<T> custom)
      : m_kind(kind), m_d(d), m_m(m), m_relu_eps(relu_eps), m_taylor_scale(taylor_scale),
        m_custom(std::move(custom)) {}

  FeatureMap kind() const noexcept { return m_kind; }
  Index dim() const noexcept { return m_m; }
  /// Keys are exponentiated with a running shift (Exp, and causal efficient attention).
  bool exp_keys(bool causal) const noexcept {
    return m_kind == FeatureMap::Exp || (causal && m_kind == FeatureMap::EfficientAttention);
  }

  /// Query features of `rows` rows; log_scale[t] receives c_t with φ_true = e^{c_t}·φ (0 unless
  /// the map is Exp).
  void queries(const T* x, Index xs, Index rows, T* phi, Index ps, T* log_scale) const {
    for (Index t = 0; t < rows; ++t) log_scale[t] = row(x + t * xs, phi + t * ps, Side::Query, T(0));
  }
  /// Key features with the fixed shift c (used only by exp keys); rows with valid[t] == false
  /// (valid may be null) get φ = 0, so they never reach S or z.
  void keys(const T* x, Index xs, Index rows, T* phi, Index ps, const bool* valid, T c,
            bool causal) const {
    for (Index t = 0; t < rows; ++t) {
      T* p = phi + t * ps;
      if (valid != nullptr && !valid[t])
        std::fill(p, p + m_m, T(0));
      else
        row(x + t * xs, p, causal ? Side::CausalKey : Side::Key, c);
    }
  }

  /// max over the valid key rows of max_i k_i (−inf if none): the shift for exp keys.
  T key_max(const T* x, Index xs, Index rows, const bool* valid) const {
    T c = -std::numeric_limits<T>::infinity();
    for (Index t = 0; t < rows; ++t)
      if (valid == nullptr || valid[t])
        c = std::max(c, simd::row_max<Isa, T>(x + t * xs, static_cast<std::size_t>(m_d)));
    return c;
  }

  /// One query row (for decoding): returns the log scale.
  T query_row(const T* x, T* phi) const { return row(x, phi, Side::Query, T(0)); }
  /// One key row, exponentiated keys shifted by c.
  void key_row(const T* x, T* phi, T c, bool causal) const {
    row(x, phi, causal ? Side::CausalKey : Side::Key, c);
  }

 private:
  enum class Side { Query, Key, CausalKey };

  T row(const T* x, T* y, Side side, T c) const {
    const auto d = static_cast<std::size_t>(m_d);
    switch (m_kind) {
      case FeatureMap::EluPlusOne: simd::elu_plus_one_row<Isa, T>(x, y, d); return T(0);
      case FeatureMap::Relu: simd::relu_row<Isa, T>(x, y, d, m_relu_eps); return T(0);
      case FeatureMap::OnePlusCosine: simd::one_plus_cosine_row<Isa, T>(x, y, d); return T(0);
      case FeatureMap::Taylor2: simd::taylor2_row<Isa, T>(x, y, d, m_taylor_scale); return T(0);
      case FeatureMap::Custom: m_custom(x, y); return T(0);
      case FeatureMap::Exp:
      case FeatureMap::EfficientAttention:
        if (side == Side::Query) {
          T mx = simd::row_max<Isa, T>(x, d);
          if (!std::isfinite(mx)) mx = 0;  // all −inf or NaN: leave them to propagate
          const T sum = simd::exp_shift_row<Isa, T>(x, y, d, mx);
          if (m_kind == FeatureMap::Exp) return mx;
          simd::scale_row<Isa, T>(y, d, T(1) / sum);  // softmax over features
          return T(0);
        }
        simd::exp_shift_row<Isa, T>(x, y, d, c);
        return T(0);
    }
    return T(0);
  }

  FeatureMap m_kind = FeatureMap::EluPlusOne;
  Index m_d = 0, m_m = 0;
  T m_relu_eps = T(1e-3), m_taylor_scale = T(1);
  CustomFeatureFn<T> m_custom;
};

}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_FEATURE_MAP_HPP

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
#include "../simd/exp.hpp"
#include "../simd/isa.hpp"
#include "../simd/vec.hpp"
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

// ---- row kernels over Vec<T, Isa>: raw pointers, no alignment, masked tails -----------------

/// e^x for x <= 0, cheaper than simd::exp: no overflow side, one 2^n factor. x is clamped at
/// the smallest argument whose e^x is still a normal number (−87 float, −708 double), so
/// e^x for x below it returns ≈ e^{−87} = 1.6e-38 (e^{−708}) instead of a smaller value or 0:
/// an absolute difference under 1.7e-38 (3.3e-308). Accuracy as simd::exp on [−87, 0].
template <class Isa, typename T>
XFMR_INLINE typename simd::Vec<T, Isa>::type exp_nonpositive(typename simd::Vec<T, Isa>::type x) noexcept {
  using V = simd::Vec<T, Isa>;
  using C = simd::detail::ExpConstants<T>;
  constexpr T lo = std::is_same_v<T, float> ? T(-87) : T(-708);
  x = V::max(V::set1(lo), x);  // NaN stays NaN (x86 max rule: the second operand, x)
  const auto n = V::round(V::mul(x, V::set1(C::log2e)));
  auto r = V::fnmadd(n, V::set1(C::ln2_hi), x);
  r = V::fnmadd(n, V::set1(C::ln2_lo), r);
  auto p = V::set1(C::poly[0]);
  for (int k = 1; k <= C::degree; ++k) p = V::fmadd(p, r, V::set1(C::poly[k]));
  const auto e = V::add(V::fmadd(V::mul(p, r), r, r), V::set1(T(1)));  // 1 + r + r²·P(r)
  return V::mul(e, V::pow2i(n));                                        // n ∈ [−126, 0]: normal
}

/// y = elu(x) + 1 = e^{min(x,0)} + max(x,0): 1 + x for x ≥ 0, e^x below (no blend needed).
/// For x < −87 (float) the e^x part is ≈ 1.6e-38 (see exp_nonpositive).
template <class Isa, typename T>
void elu_plus_one_row(const T* x, T* y, std::size_t n) noexcept {
  using V = simd::Vec<T, Isa>;
  const auto zero = V::zero();
  auto body = [&](typename V::type v) {
    return V::add(exp_nonpositive<Isa, T>(V::min(zero, v)), V::max(v, zero));
  };
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) V::store(y + i, body(V::load(x + i)));
  if (i < n) V::store_partial(y + i, body(V::load_partial(x + i, n - i)), n - i);
}

/// y = max(x, 0) + eps.
template <class Isa, typename T>
void relu_row(const T* x, T* y, std::size_t n, T eps) noexcept {
  using V = simd::Vec<T, Isa>;
  const auto zero = V::zero(), e = V::set1(eps);
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) V::store(y + i, V::add(V::max(V::load(x + i), zero), e));
  if (i < n) V::store_partial(y + i, V::add(V::max(V::load_partial(x + i, n - i), zero), e), n - i);
}

/// max_i x[i] (−inf for n = 0). NaN lanes are ignored (x86 max rule) unless all are NaN.
template <class Isa, typename T>
T row_max(const T* x, std::size_t n) noexcept {
  using V = simd::Vec<T, Isa>;
  auto m = V::set1(-std::numeric_limits<T>::infinity());
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) m = V::max(V::load(x + i), m);
  T r = V::reduce_max(m);
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

/// y = e^{x − shift}; returns Σ y (accumulated in T, lane-wise then reduced).
template <class Isa, typename T>
T exp_shift_row(const T* x, T* y, std::size_t n, T shift) noexcept {
  using V = simd::Vec<T, Isa>;
  const auto s = V::set1(shift);
  auto acc = V::zero();
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) {
    const auto e = simd::exp<Isa, T>(V::sub(V::load(x + i), s));
    V::store(y + i, e);
    acc = V::add(acc, e);
  }
  if (i < n) {
    // Masked-off lanes load 0, whose e^{−shift} must not enter the sum: store, then re-load.
    V::store_partial(y + i, simd::exp<Isa, T>(V::sub(V::load_partial(x + i, n - i), s)), n - i);
    acc = V::add(acc, V::load_partial(y + i, n - i));
  }
  return V::reduce_add(acc);
}

/// y = e^{x − shift[i]} (a per-feature shift), accumulating Σ_rows into col_sum[i].
template <class Isa, typename T>
void exp_sub_accumulate_row(const T* x, const T* shift, T* y, T* col_sum, std::size_t n) noexcept {
  using V = simd::Vec<T, Isa>;
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) {
    const auto e = simd::exp<Isa, T>(V::sub(V::load(x + i), V::load(shift + i)));
    V::store(y + i, e);
    V::store(col_sum + i, V::add(V::load(col_sum + i), e));
  }
  if (i < n) {
    const std::size_t r = n - i;
    const auto e = simd::exp<Isa, T>(V::sub(V::load_partial(x + i, r), V::load_partial(shift + i, r)));
    V::store_partial(y + i, e, r);
    V::store_partial(col_sum + i, V::add(V::load_partial(col_sum + i, r), e), r);
  }
}

/// y = a·x.
template <class Isa, typename T>
void scale_row(const T* x, T* y, std::size_t n, T a) noexcept {
  using V = simd::Vec<T, Isa>;
  const auto av = V::set1(a);
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) V::store(y + i, V::mul(av, V::load(x + i)));
  if (i < n) V::store_partial(y + i, V::mul(av, V::load_partial(x + i, n - i)), n - i);
}

/// Σ x[i]·y[i].
template <class Isa, typename T>
T dot_row(const T* x, const T* y, std::size_t n) noexcept {
  using V = simd::Vec<T, Isa>;
  auto acc = V::zero();
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) acc = V::fmadd(V::load(x + i), V::load(y + i), acc);
  if (i < n) acc = V::fmadd(V::load_partial(x + i, n - i), V::load_partial(y + i, n - i), acc);
  return V::reduce_add(acc);
}

/// Compressed order-2 Taylor features of x' = s·x (SPEC §7.2), m = 1 + d + d(d+1)/2:
///   [1, x'_0 … x'_{d−1}, then for a = 0 … d−1: x'_a²/√2, x'_a x'_{a+1}, …, x'_a x'_{d−1}]
/// so φ(q)·φ(k) = 1 + q'·k' + (q'·k')²/2. Each block a is a broadcast product of a contiguous
/// slice, which vectorises.
template <class Isa, typename T>
void taylor2_row(const T* x, T* y, std::size_t d, T s) noexcept {
  using V = simd::Vec<T, Isa>;
  y[0] = T(1);
  scale_row<Isa, T>(x, y + 1, d, s);
  const T* xs = y + 1;
  T* out = y + 1 + d;
  const T inv_sqrt2 = T(0.70710678118654752440);
  for (std::size_t a = 0; a < d; ++a) {
    const T xa = xs[a];
    out[0] = xa * xa * inv_sqrt2;
    const std::size_t len = d - a - 1;
    const auto b = V::set1(xa);
    std::size_t i = 0;
    for (; i + V::lanes <= len; i += V::lanes)
      V::store(out + 1 + i, V::mul(b, V::load(xs + a + 1 + i)));
    if (i < len)
      V::store_partial(out + 1 + i, V::mul(b, V::load_partial(xs + a + 1 + i, len - i)), len - i);
    out += len + 1;
  }
}

/// [1, x/‖x‖]; x = 0 gives [1, 0, …].
template <class Isa, typename T>
void one_plus_cosine_row(const T* x, T* y, std::size_t d) noexcept {
  // Norm in a scaled form: ‖x‖ = M·‖x/M‖ with M = max|x_i| avoids overflow for huge inputs.
  T big = 0;
  for (std::size_t i = 0; i < d; ++i) big = std::max(big, std::abs(x[i]));
  y[0] = T(1);
  if (big == T(0)) {
    for (std::size_t i = 0; i < d; ++i) y[1 + i] = T(0);
    return;
  }
  scale_row<Isa, T>(x, y + 1, d, T(1) / big);
  const T norm = std::sqrt(dot_row<Isa, T>(y + 1, y + 1, d));
  scale_row<Isa, T>(y + 1, y + 1, d, T(1) / norm);
}

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
        c = std::max(c, row_max<Isa, T>(x + t * xs, static_cast<std::size_t>(m_d)));
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
      case FeatureMap::EluPlusOne: elu_plus_one_row<Isa, T>(x, y, d); return T(0);
      case FeatureMap::Relu: relu_row<Isa, T>(x, y, d, m_relu_eps); return T(0);
      case FeatureMap::OnePlusCosine: one_plus_cosine_row<Isa, T>(x, y, d); return T(0);
      case FeatureMap::Taylor2: taylor2_row<Isa, T>(x, y, d, m_taylor_scale); return T(0);
      case FeatureMap::Custom: m_custom(x, y); return T(0);
      case FeatureMap::Exp:
      case FeatureMap::EfficientAttention:
        if (side == Side::Query) {
          T mx = row_max<Isa, T>(x, d);
          if (!std::isfinite(mx)) mx = 0;  // all −inf or NaN: leave them to propagate
          const T sum = exp_shift_row<Isa, T>(x, y, d, mx);
          if (m_kind == FeatureMap::Exp) return mx;
          scale_row<Isa, T>(y, y, d, T(1) / sum);  // softmax over features
          return T(0);
        }
        exp_shift_row<Isa, T>(x, y, d, c);
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

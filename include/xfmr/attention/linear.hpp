// SPDX-License-Identifier: MIT
// Linear attention (Katharopoulos et al., arXiv 2006.16236; kexue 7546, 8265): non-causal,
// causal by chunks, and a recurrent state for O(1)-per-token decoding (SPEC §5).
#ifndef XFMR_ATTENTION_LINEAR_HPP
#define XFMR_ATTENTION_LINEAR_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../detail/tensor_fwd.hpp"
#include "../error.hpp"
#include "../position/rope.hpp"
#include "../simd/feature_map.hpp"
#include "../simd/linear_scan.hpp"
#include "../simd/row.hpp"
#include "../types.hpp"
#include "contract.hpp"
#include "feature_map.hpp"
#include "mask.hpp"

XFMR_NAMESPACE_BEGIN

/// Where RoPE enters linear attention (SPEC §5.4).
///   Features: RoFormer's numerator-only trick for element-wise maps: the numerator uses the
///             rotated features R_i φ(q_i), R_j ϕ(k_j), the denominator the unrotated ones
///             (weights may be negative, rows need not sum to 1; the denominator stays > 0).
///             Needs an even feature dimension.
///   Inputs:   rotate q and k before the map; exact for kernels of the dot product only
///             (OnePlusCosine, Taylor2), where it keeps the weights non-negative.
///   Auto:     Inputs for OnePlusCosine and Taylor2, Features otherwise.
enum class RopePlacement { Auto, Features, Inputs };

/// How the causal form is computed (both exact, equal up to rounding; tested against each other).
///   Scan:      token blocks of chunk_size; the state S is swept in register strips across the
///              block (simd/linear_scan.hpp): 2·m·d_v FMAs per token, no masked work. Fastest.
///   Quadratic: chunks of chunk_size; tril(φ(Q_c) ϕ(K_c)^T) V_c inside the chunk plus φ(Q_c) S,
///              then S += ϕ(K_c)^T V_c: four Eigen GEMMs per chunk, C/d extra FLOPs.
enum class CausalKernel { Scan, Quadratic };

/// Configuration of LinearAttention and RecurrentAttentionState.
template <typename T>
struct LinearAttentionConfig {
  Index head_dim = 0;               ///< d: query/key size per head, >= 1
  Index value_dim = 0;              ///< d_v per head; 0 means head_dim
  FeatureMap feature_map = FeatureMap::EluPlusOne;
  Index chunk_size = 64;            ///< causal chunk C >= 1 (token block; state carried across)
  CausalKernel causal_kernel = CausalKernel::Scan;
  double eps = 1e-6;                ///< added to the normaliser φ(q)·z; finite, >= 0
  double relu_eps = 1e-3;           ///< ε of the Relu map; finite, >= 0
  double taylor_scale = 0;          ///< Taylor2 input scale s (x' = s·x); 0 means d^(−1/4)
  Index custom_feature_dim = 0;     ///< m of a Custom map, >= 1
  CustomFeatureFn<T> custom;        ///< the Custom map (must be set for FeatureMap::Custom)
  std::optional<RopeConfig> rope;   ///< RoPE (head_dim 0 = filled in: m for Features, d for Inputs)
  RopePlacement rope_placement = RopePlacement::Auto;
};

/// Configuration of order-2 Taylor linear attention: sim(q, k) = f_2(q·k/√d) = φ(q)·φ(k) with
/// the compressed map and x' = d^(−1/4)·x, so LinearAttention (or RecurrentAttentionState) equals
/// quadratic attention with Taylor-softmax weights f_2(q_i·k_j/√d) / Σ_j f_2(q_i·k_j/√d). The
/// normaliser is >= n_k/2 (f_2 >= 1/2), so eps is 0. Use RopePlacement::Auto (rotation of q, k
/// before the map: exact for the rotated kernel, SPEC §5.4). Cost O(n·d²·d_v/2): practical for
/// small heads (d <= 32, SPEC §7.2). Non-finite input propagates as in LinearAttention (tested).
/// Causal: give the call an AttentionMask with causal set, as for every flavour.
template <typename T>
LinearAttentionConfig<T> taylor_linear_attention_config(Index head_dim) {
  LinearAttentionConfig<T> c;
  c.head_dim = head_dim;
  c.feature_map = FeatureMap::Taylor2;
  c.eps = 0;
  return c;
}

namespace detail {

/// Shared validation and the resolved quantities of a configuration.
template <typename T>
struct LinearSetup {
  Index d = 0, dv = 0, m = 0;
  bool rope_features = false, rope_inputs = false;
  FeatureMapper<T> mapper;
  std::optional<Rope<T>> rope;

  explicit LinearSetup(const LinearAttentionConfig<T>& c, const char* where) {
    require(c.head_dim >= 1, where, "head_dim must be >= 1 (got head_dim=", c.head_dim, ")");
    require(c.value_dim >= 0, where, "value_dim must be >= 0 (got value_dim=", c.value_dim, ")");
    require(c.chunk_size >= 1, where, "chunk_size must be >= 1 (got chunk_size=", c.chunk_size,
            ")");
    require(std::isfinite(c.eps) && c.eps >= 0, where, "eps must be finite and >= 0 (got eps=",
            c.eps, ")");
    require(std::isfinite(c.relu_eps) && c.relu_eps >= 0, where,
            "relu_eps must be finite and >= 0 (got relu_eps=", c.relu_eps, ")");
    require(std::isfinite(c.taylor_scale) && c.taylor_scale >= 0, where,
            "taylor_scale must be finite and >= 0 (got taylor_scale=", c.taylor_scale, ")");
    if (c.feature_map == FeatureMap::Custom) {
      require(c.custom_feature_dim >= 1, where,
              "custom_feature_dim must be >= 1 for FeatureMap::Custom (got custom_feature_dim=",
              c.custom_feature_dim, ")");
      require(static_cast<bool>(c.custom), where,
              "a Custom feature map needs the functor `custom` (got an empty function)");
    }
    d = c.head_dim;
    dv = c.value_dim == 0 ? d : c.value_dim;
    m = feature_dim(c.feature_map, d, c.custom_feature_dim);
    const double s = c.taylor_scale > 0 ? c.taylor_scale : std::pow(double(d), -0.25);
    mapper = FeatureMapper<T>(c.feature_map, d, m, static_cast<T>(c.relu_eps), static_cast<T>(s),
                              c.custom);
    if (c.rope) {
      RopePlacement p = c.rope_placement;
      if (p == RopePlacement::Auto)
        p = (c.feature_map == FeatureMap::OnePlusCosine || c.feature_map == FeatureMap::Taylor2)
                ? RopePlacement::Inputs
                : RopePlacement::Features;
      rope_features = p == RopePlacement::Features;
      rope_inputs = !rope_features;
      require(!(rope_inputs && c.feature_map == FeatureMap::EfficientAttention), where,
              "RoPE on inputs is not supported with EfficientAttention (got "
              "rope_placement=Inputs); use Features");
      const Index want = rope_features ? m : d;
      RopeConfig rc = *c.rope;
      require(rc.head_dim == 0 || rc.head_dim == want, where, "rope.head_dim must be 0 or ", want,
              rope_features ? " (the feature dimension)" : " (head_dim)", " (got rope.head_dim=",
              rc.head_dim, ")");
      require(!rope_features || m % 2 == 0, where,
              "RoPE on features needs an even feature dimension (got ", m, " for ",
              feature_map_name(c.feature_map), ")");
      rc.head_dim = want;
      rope.emplace(rc);
    }
  }

  static T eps_term(double eps, T log_q, T log_k) {
    if (eps == 0) return T(0);
    if (log_q == 0 && log_k == 0) return static_cast<T>(eps);  // every map but Exp: no exp call
    return static_cast<T>(eps * std::exp(-(static_cast<double>(log_q) + static_cast<double>(log_k))));
  }
};

/// x /= den for a finite den > 0: a multiply by 1/den (a divide per element costs ~8% of the
/// causal kernel) unless 1/den would overflow (den subnormal).
template <class Row, typename T>
XFMR_INLINE void divide_row(Row&& x, T den) {
  if (den >= std::numeric_limits<T>::min())
    x *= T(1) / den;
  else
    x /= den;
}

/// out_i = x / den, den = φ(q_i)·z + ε-term, with the normaliser's special values (decided
/// per row, only off the common path):
///   z = 0 (m entries; no key, or every feature 0): the zero row, whatever q_i holds;
///   den NaN (a non-finite input): NaN;
///   den = 0 (eps = 0) or +inf (ε·e^{−(c_q + c_k)} overflowed: every weight is 0 at T's
///   range): the zero row, except that a non-finite numerator entry stays NaN (x·0).
template <class Row, typename T>
XFMR_INLINE void normalise_row(Row&& x, T den, const T* z, Index m) {
  if (den > 0 && den <= std::numeric_limits<T>::max()) {
    divide_row(x, den);
  } else if (std::all_of(z, z + m, [](T zi) { return zi == T(0); })) {
    x.setZero();
  } else if (den != den) {
    x.setConstant(std::numeric_limits<T>::quiet_NaN());
  } else {
    x.array() = x.array() * T(0) + T(0);  // +0 for finite x, NaN for ±inf and NaN
  }
}

}  // namespace detail

/// Linear attention over multi-head (tokens × heads·dim) matrices, one token per row:
///   out_i = φ(q_i)^T S / (φ(q_i)^T z + eps),  S = Σ_j ϕ(k_j) v_j^T (m × d_v),  z = Σ_j ϕ(k_j),
/// with j over every unpadded key, or j <= i when mask.causal (SPEC §5.1, §5.3). A query whose
/// normaliser is 0 (no key, eps = 0) outputs zeros. Non-causal efficient attention has no
/// normaliser (its implied rows already sum to 1; eps unused).
///
/// Causal: blocks of C = chunk_size tokens with the state S, z carried across blocks; inside a
/// block either the register-strip scan (CausalKernel::Scan, default) or the masked quadratic
/// form out_c = φ(Q_c) S + tril(φ(Q_c) ϕ(K_c)^T) V_c, S += ϕ(K_c)^T V_c (CausalKernel::Quadratic,
/// Eigen GEMMs).
/// Mask (the contract of attention/contract.hpp): causal (needs n_q == n_k), key padding
/// (key_length / key_lengths / key_valid: a padded key is removed after the feature map, φ(0) ≠
/// 0, so its feature row is zeroed, never the input). Segments, boolean masks and biases throw:
/// a per-pair mask or bias has no factorised form φ(q)ᵀ(Σ ϕ(k) vᵀ). RoPE (config.rope): see
/// RopePlacement; key row j has position pos0 + j, query row i pos0 + n_k − n_q + i.
///
/// Non-finite input is never silent (tested for every causal kernel and the recurrent state):
/// a NaN or inf in q_i makes row i NaN; a NaN in k_j makes every row that sees key j NaN (all
/// rows non-causal, rows i >= j causal); an inf in v_j makes them non-finite. The zero row is
/// kept for a query with no key (z = 0), whatever q_i holds. A padded key's k row may hold
/// anything (its features are zeroed), but its v row must be finite: it meets a zero weight in
/// the state product and 0·NaN = NaN. Exception: FeatureMap::Relu maps NaN to ε today (its
/// kernel's max(x, 0) keeps 0 for NaN; see feature_map.hpp).
///
/// Shapes: q (n_q × H·d), k (n_k × H_kv·d), v (n_k × H_kv·d_v), out (n_q × H·d_v); H_kv divides H
/// (grouped-query); rows may be strided. out must not overlap q, k or v (never in place).
/// Cost: O(n·m·d_v) per head (+ O(n·C·(m + d_v)) inside Quadratic chunks). Allocation: scratch
/// is sized on the first call and when shapes grow; Eigen's GEMM may allocate packing buffers.
/// Not thread-safe (forward uses the object's scratch): one object per thread.
/// \throws std::invalid_argument on a bad configuration or shapes (see the constructor, forward).
template <typename T>
class LinearAttention : public AttentionForward<LinearAttention<T>, T> {
  friend class AttentionForward<LinearAttention<T>, T>;

  static_assert(detail::is_real_v<T>, "xfmr::LinearAttention<T>: T must be float or double");

 public:
  /// \throws std::invalid_argument if head_dim < 1, value_dim < 0, chunk_size < 1, eps,
  ///         relu_eps or taylor_scale is negative or not finite, a Custom map lacks its functor
  ///         or dimension, or RoPE does not fit (odd feature dimension, wrong rope.head_dim).
  explicit LinearAttention(const LinearAttentionConfig<T>& config)
      : m_config(config), m_setup(config, "LinearAttention") {}

  /// See the class comment and attention/contract.hpp. \throws std::invalid_argument on a
  /// shape mismatch, an unsupported mask part (segments, allowed, bias), causal with
  /// n_q != n_k, pos0 < 0, or out overlapping q, k or v.
  /// Tensor views: every batch sequence starts at pos0.
  using AttentionForward<LinearAttention<T>, T>::forward;

  /// m, the feature dimension.
  Index feature_dim() const noexcept { return m_setup.m; }
  Index value_dim() const noexcept { return m_setup.dv; }
  const LinearAttentionConfig<T>& config() const noexcept { return m_config; }

 private:
  static constexpr Index kBlock = 256;  // non-causal rows per block: features stay in L2

  static constexpr const char* kWhere = "LinearAttention";

  std::pair<Index, Index> tensor_dims() const noexcept { return {m_setup.d, m_setup.dv}; }

  void run(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v, MatrixRef<T> out,
           const AttentionMask<T>& mask, Index pos0, Index batch, Index key_length) {
    const detail::AttentionShape s =
        detail::check_attention_shapes(kWhere, q, k, v, out, m_setup.d, m_setup.dv);
    detail::check_mask_support(kWhere, mask, kMaskCausal | kMaskKeyLength | kMaskKeyValid,
                               "linear attention factorises φ(q)ᵀ(Σ_j ϕ(k_j) v_jᵀ): a per-pair "
                               "mask or bias has no such form");
    detail::ResolvedMask::check(mask, s.n_q, s.n_k, s.heads, batch, kWhere);
    m_causal = mask.causal;
    detail::require(!m_causal || s.n_q == s.n_k, kWhere,
                    "expected as many queries as keys for causal attention (got q.rows()=",
                    s.n_q, ", k.rows()=", s.n_k, ")");
    detail::require(pos0 >= 0, kWhere, "expected pos0 >= 0 (got pos0=", pos0, ")");
    detail::check_attention_overlap(kWhere, q, k, v, out);
    if (out.rows() == 0) return;
    const bool* valid =
        detail::key_validity(mask, key_length, s.n_k, m_valid) ? m_valid.data() : nullptr;
    const Index qpos0 = pos0 + s.n_k - s.n_q;
    detail::require(!m_setup.rope || qpos0 >= 0, kWhere,
                    "expected pos0 + n_k - n_q >= 0 with RoPE: the first query's position (got ",
                    qpos0, ")");
    reserve(m_causal ? std::min(m_config.chunk_size, q.rows()) : kBlock);
    detail::for_each_head(s, q, k, v, out, [&](auto qh, auto kh, auto vh, auto oh) {
      if (m_causal)
        causal_head(qh, kh, vh, valid, oh, pos0);
      else
        full_head(qh, kh, vh, valid, oh, pos0, qpos0);
    });
  }

  void reserve(Index rows) {
    const Index d = m_setup.d, m = m_setup.m, dv = m_setup.dv;
    auto fit = [](RowMatrix<T>& a, Index r, Index c) {
      if (a.rows() < r || a.cols() != c) a.resize(r, c);
    };
    fit(m_phiq, rows, m);
    fit(m_phik, rows, m);
    if (m_setup.rope_features) {
      fit(m_phiq_rot, rows, m);
      fit(m_phik_rot, rows, m);
    }
    if (m_setup.rope_inputs) {
      fit(m_xq, rows, d);
      fit(m_xk, rows, d);
    }
    if (m_causal && m_config.causal_kernel == CausalKernel::Quadratic) fit(m_a, rows, rows);
    fit(m_s, m, dv);
    if (m_z.size() != m) m_z.resize(m);
    if (m_zc.size() != m) m_zc.resize(m);
    if (m_col.size() < 2 * d) m_col.resize(2 * d);
    if (m_lq.size() < rows) m_lq.resize(rows);
  }

  // Rows [r0, r0 + n) of one head's q or k as the feature map reads them: in place, or rotated
  // into `scratch` (RoPE on inputs). Returns the first row and the row stride.
  template <class X>
  std::pair<const T*, Index> map_input(const X& xh, Index r0, Index n, Index pos0,
                                       RowMatrix<T>& scratch) {
    if (!m_setup.rope_inputs) return {xh.data() + r0 * xh.outerStride(), xh.outerStride()};
    scratch.topRows(n) = xh.middleRows(r0, n);
    m_setup.rope->apply(scratch.topRows(n), pos0 + r0);
    return {scratch.data(), scratch.outerStride()};
  }
  // Features of rows [r0, r0 + n) into phi, and their rotated copy into phi_rot (RoPE on
  // features).
  void rotate_features(const RowMatrix<T>& phi, RowMatrix<T>& phi_rot, Index r0, Index n,
                       Index pos0) {
    if (!m_setup.rope_features) return;
    phi_rot.topRows(n) = phi.topRows(n);
    m_setup.rope->apply(phi_rot.topRows(n), pos0 + r0);
  }
  template <class X>
  void map_queries(const X& qh, Index r0, Index n, Index pos0) {
    const auto [x, xs] = map_input(qh, r0, n, pos0, m_xq);
    m_setup.mapper.queries(x, xs, n, m_phiq.data(), m_phiq.outerStride(), m_lq.data());
    rotate_features(m_phiq, m_phiq_rot, r0, n, pos0);
  }
  template <class X>
  void map_keys(const X& kh, Index r0, Index n, const bool* valid, T c, Index pos0) {
    const auto [x, xs] = map_input(kh, r0, n, pos0, m_xk);
    m_setup.mapper.keys(x, xs, n, m_phik.data(), m_phik.outerStride(),
                        valid ? valid + r0 : nullptr, c, m_causal);
    rotate_features(m_phik, m_phik_rot, r0, n, pos0);
  }
  // Rotated features for the numerator (the plain ones without RoPE-on-features).
  auto num_q(Index n) { return (m_setup.rope_features ? m_phiq_rot : m_phiq).topRows(n); }
  auto num_k(Index n) { return (m_setup.rope_features ? m_phik_rot : m_phik).topRows(n); }

  // Shift for exponentiated keys: the largest valid key entry of the head (any constant is
  // exact, see FeatureMap; the maximum keeps every e^{k − c} <= 1, or <= e^{(√2−1)c} after a
  // rotation of the inputs).
  template <class X>
  T key_shift(const X& kh, const bool* valid) {
    if (!m_setup.mapper.exp_keys(m_causal)) return T(0);
    T c = -std::numeric_limits<T>::infinity();
    const auto d = static_cast<std::size_t>(m_setup.d);
    for (Index t = 0; t < kh.rows(); ++t)
      if (valid == nullptr || valid[t])
        c = std::max(c, simd::row_max<simd::native_isa, T>(kh.data() + t * kh.outerStride(), d));
    return std::isfinite(c) ? c : T(0);
  }

  template <class Q, class K, class Vm, class O>
  void full_head(const Q& qh, const K& kh, const Vm& vh, const bool* valid, O& oh, Index pos0,
                 Index qpos0) {
    const Index nk = kh.rows(), nq = qh.rows(), m = m_setup.m, d = m_setup.d;
    const bool efficient = m_setup.mapper.kind() == FeatureMap::EfficientAttention;
    m_s.setZero();
    m_z.setZero();
    const T c = key_shift(kh, valid);
    T* cmax = m_col.data();
    T* csum = m_col.data() + d;
    if (efficient) {  // ϕ(k): softmax over positions, per feature: column max first
      std::fill(cmax, cmax + d, -std::numeric_limits<T>::infinity());
      std::fill(csum, csum + d, T(0));
      for (Index t = 0; t < nk; ++t)
        if (valid == nullptr || valid[t])
          for (Index i = 0; i < d; ++i) cmax[i] = std::max(cmax[i], kh(t, i));
      for (Index i = 0; i < d; ++i)
        if (!std::isfinite(cmax[i])) cmax[i] = 0;
    }
    if (efficient) {  // column sums first: each feature is normalised before any rotation
      for (Index t = 0; t < nk; ++t)
        if (valid == nullptr || valid[t]) {
          simd::exp_sub_accumulate_row<simd::native_isa, T>(
              kh.data() + t * kh.outerStride(), cmax, m_phik.data(), csum,
              static_cast<std::size_t>(d));
        }
      // csum = 0: no valid key (features 0); NaN (non-finite keys) stays NaN.
      for (Index i = 0; i < d; ++i) csum[i] = csum[i] == T(0) ? T(0) : T(1) / csum[i];
    }
    for (Index r0 = 0; r0 < nk; r0 += kBlock) {
      const Index n = std::min(kBlock, nk - r0);
      if (efficient) {
        T* scratch = m_zc.data();
        for (Index t = 0; t < n; ++t) {
          T* p = m_phik.data() + t * m_phik.outerStride();
          if (valid != nullptr && !valid[r0 + t]) {
            std::fill(p, p + m, T(0));
            continue;
          }
          std::fill(scratch, scratch + d, T(0));
          simd::exp_sub_accumulate_row<simd::native_isa, T>(
              kh.data() + (r0 + t) * kh.outerStride(), cmax, p, scratch,
              static_cast<std::size_t>(d));
          for (Index i = 0; i < d; ++i) p[i] *= csum[i];
        }
        if (m_setup.rope_features) {
          m_phik_rot.topRows(n) = m_phik.topRows(n);
          m_setup.rope->apply(m_phik_rot.topRows(n), pos0 + r0);
        }
      } else {
        map_keys(kh, r0, n, valid, c, pos0);
      }
      m_s.noalias() += num_k(n).transpose() * vh.middleRows(r0, n);
      m_z.noalias() += m_phik.topRows(n).colwise().sum().transpose();
    }
    for (Index r0 = 0; r0 < nq; r0 += kBlock) {
      const Index n = std::min(kBlock, nq - r0);
      map_queries(qh, r0, n, qpos0);
      auto ob = oh.middleRows(r0, n);
      ob.noalias() = num_q(n) * m_s;
      if (efficient) continue;
      for (Index t = 0; t < n; ++t) {
        const T den = m_phiq.row(t).dot(m_z) +
                      detail::LinearSetup<T>::eps_term(m_config.eps, m_lq[t], c);
        detail::normalise_row(ob.row(t), den, m_z.data(), m_z.size());
      }
    }
  }

  template <class Q, class K, class Vm, class O>
  void causal_head(const Q& qh, const K& kh, const Vm& vh, const bool* valid, O& oh, Index pos0) {
    const Index n_all = qh.rows(), C = std::min(m_config.chunk_size, n_all), m = m_setup.m;
    m_s.setZero();
    m_z.setZero();
    const T c = key_shift(kh, valid);
    for (Index r0 = 0; r0 < n_all; r0 += C) {
      const Index n = std::min(C, n_all - r0);
      map_queries(qh, r0, n, pos0);
      map_keys(kh, r0, n, valid, c, pos0);
      auto ob = oh.middleRows(r0, n);
      if (m_config.causal_kernel == CausalKernel::Scan) {
        const RowMatrix<T>& fq = m_setup.rope_features ? m_phiq_rot : m_phiq;
        const RowMatrix<T>& fk = m_setup.rope_features ? m_phik_rot : m_phik;
        ob.setZero();  // the scan accumulates (overwriting in its first strip measured slower)
        simd::linear_scan<simd::native_isa, T>(
            fq.data(), fk.data(), static_cast<std::size_t>(fq.outerStride()),
            vh.data() + r0 * vh.outerStride(), static_cast<std::size_t>(vh.outerStride()),
            m_s.data(), static_cast<std::size_t>(m_s.outerStride()), ob.data(),
            static_cast<std::size_t>(ob.outerStride()), static_cast<std::size_t>(n),
            static_cast<std::size_t>(m), static_cast<std::size_t>(m_setup.dv));
      } else {
        auto a = m_a.topLeftCorner(n, n);
        // Inside the chunk: A = φ(Q_c) ϕ(K_c)^T masked to j <= i.
        a.noalias() = num_q(n) * num_k(n).transpose();
        for (Index i = 0; i + 1 < n; ++i) a.row(i).tail(n - 1 - i).setZero();
        ob.noalias() = num_q(n) * m_s;
        ob.noalias() += a * vh.middleRows(r0, n);
        m_s.noalias() += num_k(n).transpose() * vh.middleRows(r0, n);
      }
      // Normaliser with the running prefix z + Σ_{j<=i} ϕ(k_j) (unrotated features).
      for (Index t = 0; t < n; ++t) {
        m_z.noalias() += m_phik.row(t).transpose();
        const T den = simd::dot_row<simd::native_isa, T>(
                          m_phiq.data() + t * m_phiq.outerStride(), m_z.data(),
                          static_cast<std::size_t>(m)) +
                      detail::LinearSetup<T>::eps_term(m_config.eps, m_lq[t], c);
        detail::normalise_row(ob.row(t), den, m_z.data(), m_z.size());
      }
    }
  }

  LinearAttentionConfig<T> m_config;
  detail::LinearSetup<T> m_setup;
  RowMatrix<T> m_phiq, m_phik, m_phiq_rot, m_phik_rot, m_xq, m_xk, m_a, m_s;
  Eigen::Matrix<T, Eigen::Dynamic, 1> m_z, m_zc, m_col, m_lq;
  Eigen::Matrix<bool, Eigen::Dynamic, 1> m_valid;  // per-key validity of the current call
  bool m_causal = false;                            // mask.causal of the current call

};

/// One-shot linear attention (builds a LinearAttention: allocates; keep the object for repeated
/// calls). T = q's scalar (float or double; the other arguments of the same T), so T is never
/// spelled out. A template, so that a translation unit that includes this header without
/// calling it instantiates no LinearAttention<T> (compile time).
template <typename Q>
void linear_attention(const Eigen::MatrixBase<Q>& q, ConstMatrixRef<typename Q::Scalar> k,
                      ConstMatrixRef<typename Q::Scalar> v, MatrixRef<typename Q::Scalar> out,
                      const LinearAttentionConfig<typename Q::Scalar>& config,
                      const AttentionMask<typename Q::Scalar>& mask = {}) {
  using T = typename Q::Scalar;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "linear_attention: float or double matrices");
  LinearAttention<T>(config).forward(q, k, v, out, mask);
}

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_LINEAR_HPP

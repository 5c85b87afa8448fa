// SPDX-License-Identifier: MIT
// Performer / FAVOR+ attention with positive, hyperbolic and trigonometric random features
// (Choromanski et al., arXiv 2009.14794; kexue 7921, 8338; SPEC §6).
#ifndef XFMR_ATTENTION_PERFORMER_HPP
#define XFMR_ATTENTION_PERFORMER_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/gemm.hpp"
#include "../simd/isa.hpp"
#include "../simd/random_features.hpp"
#include "../simd/row.hpp"
#include "../simd/vec.hpp"
#include "../types.hpp"
#include "contract.hpp"
#include "mask.hpp"
#include "random_features.hpp"

XFMR_NAMESPACE_BEGIN

/// Random feature map φ for the softmax kernel exp(x·y) (SPEC §6.1), x' = d^(−1/4)·x, u = W x':
/// ```
/// Positive      φ(x) = m^(−1/2)    · exp(u − ‖x'‖²/2)                          dim m
/// Hyperbolic    φ(x) = (2m)^(−1/2) · [exp(u − ‖x'‖²/2) | exp(−u − ‖x'‖²/2)]    dim 2m
/// Trigonometric φ(x) = m^(−1/2)    · exp(+‖x'‖²/2) · [sin u | cos u]           dim 2m
/// ```
/// Positive and hyperbolic features are > 0; trigonometric ones can be negative, so the
/// attention normaliser can approach zero (the original random Fourier features).
enum class PerformerFeatures { Positive, Hyperbolic, Trigonometric };

/// Configuration of Performer<T>; validated by the constructor.
struct PerformerConfig {
  Index head_dim = 0;                                 ///< d (query/key size per head)
  Index num_features = 0;                             ///< m: rows of W (feature dim m or 2m)
  PerformerFeatures features = PerformerFeatures::Positive;
  ProjectionKind projection = ProjectionKind::Orthogonal;
  RowNorms row_norms = RowNorms::ChiDistributed;      ///< orthogonal rows only
  bool stabilize = true;                              ///< subtract maxima before exp (SPEC §6.3)
  std::uint64_t seed = 0;                             ///< seeds the generator of W
};

namespace detail {

/// C(M×N) = A·B (accumulate = false) or C += A·B with A(r, k) = a[r·ars + k·aks] (row-major or
/// transposed storage) and B, C row-major: the Performer's thin products (K = d, tokens or m) on
/// the GEMM engine (simd/gemm.hpp); Eigen (the reference path) when only scalar code is built.
template <typename T>
void performer_matmul(Index m, Index n, Index k, const T* a, Index ars, Index aks, const T* b,
                      Index ldb, T* c, Index ldc, bool accumulate) {
  if constexpr (std::is_same_v<simd::native_isa, simd::scalar_isa>) {
    using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using S = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
    Eigen::Map<const M, 0, S> am(a, m, k, S(ars, aks));
    Eigen::Map<const M, 0, S> bm(b, k, n, S(ldb, 1));
    Eigen::Map<M, 0, S> cm(c, m, n, S(ldc, 1));
    if (accumulate)
      cm.noalias() += am * bm;
    else
      cm.noalias() = am * bm;
  } else {
    simd::gemm<simd::native_isa>(m, n, k, T(1), simd::GemmA<T>{a, ars, aks},
                                 simd::GemmB<T>{b, ldb, false}, accumulate ? T(1) : T(0), c, ldc);
  }
}

/// Padding (elements, one cache line) added to the leading dimension of the scratch matrices.
template <typename T>
constexpr Index performer_pad() noexcept {
  return static_cast<Index>(64 / sizeof(T));
}

/// The feature map of one head, shared by Performer<T> (batch) and RecurrentAttentionState<T>
/// (decoding).
/// Holds W' = d^(−1/4)·W transposed (d × m) so that U = X·W' is one GEMM per block of tokens.
/// Thread-safe: immutable after construction, every method const and scratch-free.
template <typename T>
class PerformerFeatureMap {
 public:
  PerformerFeatureMap() = default;
  PerformerFeatureMap(const PerformerConfig& c, const RowMatrix<double>& w)
      : m_kind(c.features), m_stabilize(c.stabilize), m_d(c.head_dim), m_m(c.num_features) {
    // Rows padded by one cache line: a leading dimension of a power of two times 64 bytes would
    // map every row of a column panel to the same few L1 sets.
    m_wt = RowMatrix<T>::Zero(m_d, m_m + performer_pad<T>());
    m_wt.leftCols(m_m) =
        (w.transpose() * std::pow(static_cast<double>(m_d), -0.25)).template cast<T>();
    m_h_scale = static_cast<T>(0.5 / std::sqrt(static_cast<double>(m_d)));
    m_scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(
                                 m_kind == PerformerFeatures::Hyperbolic ? 2 * m_m : m_m)));
  }

  Index feature_dim() const noexcept {
    return m_kind == PerformerFeatures::Positive ? m_m : 2 * m_m;
  }
  Index num_features() const noexcept { return m_m; }
  bool stabilize() const noexcept { return m_stabilize; }

  /// U(rows × m) = X(rows × d) · W'.
  template <typename Src, typename Dst>
  void project(const Src& x, Dst&& u) const {
    performer_matmul<T>(x.rows(), m_m, m_d, x.data(), x.outerStride(), 1, m_wt.data(), m_wt.outerStride(),
                        u.data(), u.outerStride(), false);
  }
  /// h = ‖x'‖²/2 = ‖x‖²/(2√d).
  T half_norm2(const T* x) const noexcept {
    return simd::dot_row<simd::native_isa, T>(x, x, static_cast<std::size_t>(m_d)) * m_h_scale;
  }


  /// The exponent that the key-side maximum is taken over: max_l(±u_l) − h (exp-type features),
  /// or h (trigonometric: the factor exp(h) is what can overflow).
  T key_exponent_max(const T* u, T h) const noexcept {
    if (m_kind == PerformerFeatures::Trigonometric) return h;
    T lo, hi;
    simd::row_min_max<simd::native_isa, T>(u, static_cast<std::size_t>(m_m), lo, hi);
    if (m_kind == PerformerFeatures::Hyperbolic) hi = std::max(hi, -lo);
    return hi - h;
  }

  /// Key features scaled by e^(−shift): phi = e^(−shift)·φ(k) (shift = running key max, or 0).
  void key_features(const T* u, T h, T shift, T* phi) const noexcept {
    features(u, h + shift, h - shift, phi);
  }
  /// Query features up to a positive per-row factor, which cancels between numerator and
  /// denominator: stabilised, exp(u − max u) (hyperbolic: max |u|; trigonometric: no exp(h)).
  void query_features(const T* u, T h, T* phi) const noexcept {
    if (!m_stabilize) {
      features(u, h, h, phi);
      return;
    }
    if (m_kind == PerformerFeatures::Trigonometric) {
      features(u, 0, 0, phi);
      return;
    }
    T lo, hi;
    simd::row_min_max<simd::native_isa, T>(u, static_cast<std::size_t>(m_m), lo, hi);
    if (m_kind == PerformerFeatures::Hyperbolic) hi = std::max(hi, -lo);
    features(u, hi, 0, phi);
  }
  /// Exact φ(x) of the formula (no stabiliser).
  void exact_features(const T* u, T h, T* phi) const noexcept { features(u, h, h, phi); }

 private:
  // exp-type: phi = scale·exp(±u − shift); trigonometric: phi = scale·exp(trig_log)·[sin u|cos u].
  void features(const T* u, T shift, T trig_log, T* phi) const noexcept {
    const auto m = static_cast<std::size_t>(m_m);
    switch (m_kind) {
      case PerformerFeatures::Positive:
        simd::scaled_exp_row<simd::native_isa, T>(u, phi, m, T(1), shift, m_scale);
        break;
      case PerformerFeatures::Hyperbolic:
        simd::scaled_exp_row<simd::native_isa, T>(u, phi, m, T(1), shift, m_scale);
        simd::scaled_exp_row<simd::native_isa, T>(u, phi + m, m, T(-1), shift, m_scale);
        break;
      case PerformerFeatures::Trigonometric: {
        const T f = m_scale * std::exp(trig_log);
        for (std::size_t l = 0; l < m; ++l) {
          phi[l] = f * std::sin(u[l]);
          phi[m + l] = f * std::cos(u[l]);
        }
        break;
      }
    }
  }

  PerformerFeatures m_kind = PerformerFeatures::Positive;
  bool m_stabilize = true;
  Index m_d = 0, m_m = 0;
  RowMatrix<T> m_wt;  // d × m (+ padding columns)
  T m_h_scale = 0, m_scale = 0;
};

}  // namespace detail

/// FAVOR+ attention (Performer), several heads side by side:
/// ```
///   out_i = Σ_j φ(q_i)·φ(k_j) v_j / Σ_j φ(q_i)·φ(k_j)    ≈ softmax(q_i·K/√d)·V
///   non-causal: out = (φ(Q)·(φ(K)ᵀV)) / (φ(Q)·(φ(K)ᵀ1))      O(n·m·d) instead of O(n²·d)
///   causal (j <= i): prefix sums S_i = Σ_{j<=i} φ(k_j)v_jᵀ, evaluated in chunks of 64 tokens
/// ```
/// W (m × d) is drawn once from `seed` (and again by redraw()); the same W serves every head and
/// every sequence. The contract of attention/contract.hpp: q (n_q × H·d), k (n_k × H_kv·d),
/// v (n_k × H_kv·d_v), out (n_q × H·d_v), H_kv dividing H; d_v = v.cols() / H_kv; batches as
/// [batch, tokens, heads, d] tensor views. out must not overlap q, k or v (never in place).
/// Mask: causal (j <= i, needs n_q == n_k) and key padding (key_length / key_lengths /
/// key_valid: a padded key contributes no features, nor to the stabiliser's maximum); segments,
/// boolean masks and biases throw (no factorised form). pos0 is accepted and unused.
///
/// Stabiliser (SPEC §6.3): query features use exp(u − max_l u_l) per query row (the factor
/// cancels); key features are shifted by the running maximum M of max_l u_l(k_j) − ‖k_j'‖²/2
/// over the (unpadded) keys seen so far, with S and z multiplied by e^(−δ) when it grows by δ —
/// so the largest key feature is 1 and nothing overflows. Non-causal: one M per sequence and
/// head. Causal: query i works at the scale of its own M_i (keys j <= i only), in the 64-token
/// chunks too, so a large later key of the chunk cannot underflow the features an earlier query
/// sees (tested with inputs in ±15). We take the max of u − h rather than of u
/// (google-research) so that no key feature exceeds 1 [derived].
/// Never shared across the batch. Output = exact formula up to rounding; a query whose
/// normaliser underflows to 0 gets a zero row (NaN where the numerator is not finite).
///
/// Non-finite input is never silent (tested, causal and not, and RecurrentAttentionState): a NaN
/// or inf in q_i makes row i NaN; a NaN in k_j makes every row that sees key j NaN; an inf in v_j
/// makes them non-finite. In the causal chunks, rows before j in j's chunk of 64 may turn
/// non-finite too (a zero weight times inf in the chunk product), never a wrong finite value.
///
/// Allocation: scratch (blocks of 128 tokens × feature dim, and the m × d_v state) is sized on
/// the first call and when d_v grows; Eigen's GEMM may allocate its packing buffers.
/// Not thread-safe (forward uses the object's scratch; redraw replaces W): one object per thread;
/// distinct objects are independent, and equal seeds give equal W in every thread.
/// \throws std::invalid_argument on bad configuration or shapes (see the constructor and forward).
template <typename T>
class Performer : public AttentionForward<Performer<T>, T> {
  friend class AttentionForward<Performer<T>, T>;

  static_assert(detail::is_real_v<T>, "xfmr::Performer<T>: T must be float or double");

 public:
  /// \throws std::invalid_argument if head_dim < 1 or num_features < 1.
  explicit Performer(const PerformerConfig& config) : m_config(config), m_gauss(config.seed) {
    detail::require(config.head_dim >= 1, "Performer", "head_dim must be >= 1 (got ",
                    config.head_dim, ")");
    detail::require(config.num_features >= 1, "Performer", "num_features must be >= 1 (got ",
                    config.num_features, ")");
    redraw();
  }

  /// Draws a new W from the generator (which continues from the previous draw, so a sequence of
  /// redraws is reproducible from the seed).
  void redraw() {
    m_projection = draw_projection(m_config.num_features, m_config.head_dim, m_config.projection,
                                   m_config.row_norms, m_gauss);
    m_map = detail::PerformerFeatureMap<T>(m_config, m_projection);
  }

  /// FAVOR+ attention of one sequence (see the class comment).
  /// \throws std::invalid_argument on a shape mismatch (contract wording), an unsupported mask
  ///         part, causal with n_q != n_k, pos0 < 0, or out overlapping q, k or v.
  /// Tensor views: each batch sequence has its own stabiliser shift.
  using AttentionForward<Performer<T>, T>::forward;

  /// Exact (unstabilised) features φ(x) of one head, SPEC §6.1 with x' = d^(−1/4)·x, so that
  /// φ(x)·φ(y) is an unbiased estimate of exp(x·y/√d). x: (n × d), out: (n × feature_dim()).
  /// Allocates an n × m temporary (a convenience for tests and analysis, not the hot path).
  /// \throws std::invalid_argument on a shape mismatch.
  void features(ConstMatrixRef<T> x, MatrixRef<T> out) const {
    const Index d = m_config.head_dim, f = m_map.feature_dim();
    detail::require(x.cols() == d, "Performer", "x.cols() must equal head_dim (got x.cols()=",
                    x.cols(), ", head_dim=", d, ")");
    detail::require(out.rows() == x.rows() && out.cols() == f, "Performer", "out must be ",
                    x.rows(), "x", f, " (got ", out.rows(), "x", out.cols(), ")");
    RowMatrix<T> u(x.rows(), m_config.num_features);
    m_map.project(x, u);
    for (Index i = 0; i < x.rows(); ++i)
      m_map.exact_features(u.row(i).data(), m_map.half_norm2(x.row(i).data()), out.row(i).data());
  }

  /// W (m × d, rows ω_l, before the d^(−1/4) data scaling), in double as drawn.
  const RowMatrix<double>& projection() const noexcept { return m_projection; }
  /// m for positive features, 2m for hyperbolic and trigonometric.
  Index feature_dim() const noexcept { return m_map.feature_dim(); }
  const PerformerConfig& config() const noexcept { return m_config; }
  /// The current feature map (shared with RecurrentAttentionState).
  const detail::PerformerFeatureMap<T>& feature_map() const noexcept { return m_map; }

 private:
  static constexpr Index kBlock = 128;  // tokens per GEMM block: U and φ stay in L2
  static constexpr Index kChunk = 64;   // causal chunk: the C×C masked product stays small

  static constexpr const char* kWhere = "Performer";

  std::pair<Index, Index> tensor_dims() const noexcept { return {m_config.head_dim, 0}; }

  void run(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v, MatrixRef<T> out,
           const AttentionMask<T>& mask, Index pos0, Index batch, Index key_length) {
    const detail::AttentionShape s =
        detail::check_attention_shapes(kWhere, q, k, v, out, m_config.head_dim, 0);
    detail::check_mask_support(kWhere, mask, kMaskCausal | kMaskKeyLength | kMaskKeyValid,
                               "random-feature attention factorises φ(q)ᵀ(Σ_j φ(k_j) v_jᵀ): a "
                               "per-pair mask or bias has no such form");
    detail::ResolvedMask::check(mask, s.n_q, s.n_k, s.heads, batch, kWhere);
    detail::require(!mask.causal || s.n_q == s.n_k, kWhere,
                    "expected as many queries as keys for causal attention (got q.rows()=",
                    s.n_q, ", k.rows()=", s.n_k, ")");
    detail::require(pos0 >= 0, kWhere, "expected pos0 >= 0 (got pos0=", pos0, ")");
    detail::check_attention_overlap(kWhere, q, k, v, out);
    if (s.n_q == 0) return;
    m_validp = detail::key_validity(mask, key_length, s.n_k, m_valid) ? m_valid.data() : nullptr;
    reserve(s.d_v, mask.causal);
    detail::for_each_head(s, q, k, v, out, [&](auto qh, auto kh, auto vh, auto oh) {
      if (mask.causal)
        attend_causal(qh, kh, vh, oh);
      else
        attend_full(qh, kh, vh, oh);
    });
  }

  void reserve(Index dv, bool causal) {
    const Index m = m_config.num_features, f = m_map.feature_dim();
    const Index pad = detail::performer_pad<T>();  // see PerformerFeatureMap
    if (m_u.rows() != kBlock || m_u.cols() != m + pad) m_u.resize(kBlock, m + pad);
    if (m_phi.rows() != kBlock || m_phi.cols() != f + pad) m_phi.resize(kBlock, f + pad);
    if (causal && (m_phik.rows() != kChunk || m_phik.cols() != f + pad)) {
      m_phik.resize(kChunk, f + pad);
      m_phikt.resize(f, kChunk + pad);
      m_a.resize(kChunk, kChunk + pad);
      m_kshift.resize(kChunk);
    }
    if (m_s.rows() != f || m_s.cols() != dv + pad) m_s.resize(f, dv + pad);
    if (m_z.size() != f) m_z.resize(f);
    if (m_h.size() != kBlock) {
      m_h.resize(kBlock);
      m_den.resize(kBlock);
    }
  }

  // Key features of rows [r0, r0 + r) into phi, after rescaling S, z to the new running max.
  template <typename K, typename Phi>
  void key_block(const K& k, Index r0, Index r, Phi& phi, T& shift) {
    auto u = m_u.topLeftCorner(r, m_config.num_features);
    m_map.project(k.middleRows(r0, r), u);
    T block_max = -std::numeric_limits<T>::infinity();
    for (Index j = 0; j < r; ++j) {
      m_h[j] = m_map.half_norm2(k.row(r0 + j).data());
      if (m_map.stabilize() && valid(r0 + j))
        block_max = std::max(block_max, m_map.key_exponent_max(u.row(j).data(), m_h[j]));
    }
    if (m_map.stabilize() && block_max > shift) {
      if (shift != -std::numeric_limits<T>::infinity()) {
        const T f = std::exp(shift - block_max);  // e^(−δ): keep one shift for all keys so far
        m_s *= f;
        m_z *= f;
      }
      shift = block_max;
    }
    const T s = m_map.stabilize() ? shift : T(0);
    for (Index j = 0; j < r; ++j) {
      if (valid(r0 + j))
        m_map.key_features(u.row(j).data(), m_h[j], s, phi.row(j).data());
      else  // a padded key contributes nothing, whatever its row holds
        phi.row(j).setZero();
    }
  }

  // Query features of rows [r0, r0 + r) into m_phi.
  template <typename Q>
  void query_block(const Q& q, Index r0, Index r) {
    auto u = m_u.topLeftCorner(r, m_config.num_features);
    m_map.project(q.middleRows(r0, r), u);
    for (Index i = 0; i < r; ++i) {
      const T h = m_map.stabilize() ? T(0) : m_map.half_norm2(q.row(r0 + i).data());
      m_map.query_features(u.row(i).data(), h, m_phi.row(i).data());
    }
  }

  // S += φᵀ V[r0, r0 + r), z += Σ_j φ_j: the register-blocked kernel with A read transposed.
  template <typename Phi, typename V>
  void add_key_outer(const Phi& phi, const V& v, Index r0, Index r) {
    detail::performer_matmul<T>(phi.cols(), v.cols(), r, phi.data(), 1, phi.outerStride(),
                                v.data() + r0 * v.outerStride(), v.outerStride(), m_s.data(),
                                m_s.outerStride(), true);
    m_z.noalias() += phi.colwise().sum().transpose();
  }
  // o = φ S (r rows).
  template <typename Phi, typename O>
  void query_times_state(const Phi& phi, O& o, Index r) {
    detail::performer_matmul<T>(r, o.cols(), phi.cols(), phi.data(), phi.outerStride(), 1,
                                m_s.data(), m_s.outerStride(), o.data(), o.outerStride(), false);
  }

  bool valid(Index j) const noexcept { return m_validp == nullptr || m_validp[j]; }

  // o_i /= den_i; den_i = 0 (every feature underflowed, or no key) gives the zero row (NaN where
  // the numerator is not finite). A subnormal den divides: 1/den would overflow to inf.
  template <typename O>
  void normalise(O& o, Index r) {
    for (Index i = 0; i < r; ++i) {
      const T den = m_den[i];
      if (std::abs(den) >= std::numeric_limits<T>::min())
        o.row(i) *= T(1) / den;
      else if (den != T(0))
        o.row(i) /= den;
      else
        o.row(i) *= T(0);
    }
  }

  template <typename Q, typename K, typename V, typename O>
  void attend_full(const Q& q, const K& k, const V& v, O& out) {
    m_s.setZero();
    m_z.setZero();
    T shift = m_map.stabilize() ? -std::numeric_limits<T>::infinity() : T(0);
    for (Index r0 = 0; r0 < k.rows(); r0 += kBlock) {
      const Index r = std::min(kBlock, k.rows() - r0);
      auto phi = m_phi.topLeftCorner(r, m_map.feature_dim());
      key_block(k, r0, r, phi, shift);
      add_key_outer(phi, v, r0, r);
    }
    for (Index r0 = 0; r0 < q.rows(); r0 += kBlock) {
      const Index r = std::min(kBlock, q.rows() - r0);
      query_block(q, r0, r);
      auto phi = m_phi.topLeftCorner(r, m_map.feature_dim());
      auto o = out.middleRows(r0, r);
      m_den.head(r).noalias() = phi * m_z;
      query_times_state(phi, o, r);
      normalise(o, r);
    }
  }

  // Causal key features of rows [r0, r0 + r): key j scaled by e^(−M_j), M_j the running
  // maximum of the key exponents up to key j (from `shift`, the maximum before the chunk), so no
  // key's feature underflows against a LATER key of its chunk; M_j into m_kshift. S and z are
  // not touched.
  template <typename K, typename Phi>
  void key_block_causal(const K& k, Index r0, Index r, Phi& phi, T shift) {
    auto u = m_u.topLeftCorner(r, m_config.num_features);
    m_map.project(k.middleRows(r0, r), u);
    T run = shift;
    for (Index j = 0; j < r; ++j) {
      if (!valid(r0 + j)) {  // a padded key contributes nothing, whatever its row holds
        phi.row(j).setZero();
        m_kshift[j] = run;
        continue;
      }
      const T h = m_map.half_norm2(k.row(r0 + j).data());
      if (m_map.stabilize()) run = std::max(run, m_map.key_exponent_max(u.row(j).data(), h));
      m_kshift[j] = run;
      m_map.key_features(u.row(j).data(), h, m_map.stabilize() ? run : T(0), phi.row(j).data());
    }
  }

  // Causal prefix sums in chunks of kChunk. Query i of a chunk works at the scale e^(−M_i) of
  // its own running key maximum (as RecurrentAttentionState does): the state S, z (at e^(−M_prev)) is
  // weighted by e^(M_prev − M_i) and the in-chunk weight A_ij (key j at e^(−M_j)) by
  // e^(M_j − M_i) <= 1; the factors cancel between numerator and denominator. When the maximum
  // does not move inside the chunk (the common case) every factor is 1 and is skipped.
  template <typename Q, typename K, typename V, typename O>
  void attend_causal(const Q& q, const K& k, const V& v, O& out) {
    const T ninf = -std::numeric_limits<T>::infinity();
    m_s.setZero();
    m_z.setZero();
    T shift = m_map.stabilize() ? ninf : T(0);
    for (Index r0 = 0; r0 < k.rows(); r0 += kChunk) {
      const Index r = std::min(kChunk, k.rows() - r0);
      auto phik = m_phik.topLeftCorner(r, m_map.feature_dim());
      const T prev = shift;
      key_block_causal(k, r0, r, phik, prev);
      const T last = m_kshift[r - 1];
      // S and z are zero while prev = −inf (no key yet), so their factor does not matter then.
      const bool uniform = (prev == last || prev == ninf) && m_kshift[0] == last;
      query_block(q, r0, r);
      auto phiq = m_phi.topLeftCorner(r, m_map.feature_dim());
      // A = φ(Q_c) φ(K_c)ᵀ with the kernel: φ(K_c) transposed once into padded scratch.
      auto phikt = m_phikt.topLeftCorner(phik.cols(), r);
      phikt = phik.transpose();
      auto a = m_a.topLeftCorner(r, r);
      detail::performer_matmul<T>(r, r, phiq.cols(), phiq.data(), phiq.outerStride(), 1,
                                  phikt.data(), phikt.outerStride(), a.data(), a.outerStride(),
                                  false);
      a.template triangularView<Eigen::StrictlyUpper>().setZero();
      auto g = m_h.head(r);  // per-query factor of the state terms
      if (!uniform) {
        for (Index i = 0; i < r; ++i) {
          const T mi = m_kshift[i];
          g[i] = prev == ninf ? T(1) : std::exp(prev - mi);
          for (Index j = 0; j < i; ++j)
            if (m_kshift[j] != mi) a(i, j) *= std::exp(m_kshift[j] - mi);
        }
      }
      auto o = out.middleRows(r0, r);
      m_den.head(r).noalias() = phiq * m_z;
      if (!uniform) m_den.head(r).array() *= g.array();
      m_den.head(r).noalias() += a.rowwise().sum();
      query_times_state(phiq, o, r);
      if (!uniform)
        for (Index i = 0; i < r; ++i) o.row(i) *= g[i];
      detail::performer_matmul<T>(r, o.cols(), r, a.data(), a.outerStride(), 1,
                                  v.data() + r0 * v.outerStride(), v.outerStride(), o.data(),
                                  o.outerStride(), true);
      if (!uniform) {  // bring S, z and the chunk's keys to the scale e^(−last)
        if (prev != ninf) {
          const T f = std::exp(prev - last);
          m_s *= f;
          m_z *= f;
        }
        for (Index j = 0; j < r; ++j)
          if (m_kshift[j] != last) phik.row(j) *= std::exp(m_kshift[j] - last);
      }
      add_key_outer(phik, v, r0, r);
      shift = last;
      normalise(o, r);
    }
  }

  PerformerConfig m_config;
  detail::GaussianSource m_gauss;
  RowMatrix<double> m_projection;
  detail::PerformerFeatureMap<T> m_map;
  // Scratch.
  Eigen::Matrix<bool, Eigen::Dynamic, 1> m_valid;  // per-key validity of the current sequence
  const bool* m_validp = nullptr;                   // m_valid.data(), or nullptr: all valid
  RowMatrix<T> m_u, m_phi, m_phik, m_phikt, m_a, m_s;
  Eigen::Matrix<T, Eigen::Dynamic, 1> m_z, m_h, m_den, m_kshift;
};

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_PERFORMER_HPP

// SPDX-License-Identifier: MIT
// The one decoding state of the linear attentions (LinearAttention's feature maps, Performer's
// random features): the recurrence S, z with a running shift, fed one token at a time.
#ifndef XFMR_ATTENTION_RECURRENT_STATE_HPP
#define XFMR_ATTENTION_RECURRENT_STATE_HPP

#include <cmath>
#include <limits>
#include <optional>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/row.hpp"
#include "../types.hpp"
#include "contract.hpp"
#include "linear.hpp"
#include "performer.hpp"

XFMR_NAMESPACE_BEGIN

/// Token-by-token causal decoding for linear attention and Performer (SPEC §5.3, §6.3): per head
///   S_t = S_{t−1} + ϕ(k_t) v_tᵀ,  z_t = z_{t−1} + ϕ(k_t),
///   out_t = φ(q_t)ᵀ S_t / (φ(q_t)ᵀ z_t + eps)
/// with the features of the LinearAttentionConfig (RoPE on features: the numerator uses
/// R_t φ(q_t) and S accumulates R_t ϕ(k_t) v_tᵀ; on inputs: q and k are rotated first) or of a
/// Performer (copied at construction: a later redraw() does not affect the state).
/// After t steps out equals row t − 1 of the causal forward of the same object on the same
/// tokens, up to rounding (tested for both).
///
/// Exponential features keep a running shift per head, c = the largest key exponent seen
/// (Exp feature map: max k; stabilised Performer: max of the key's exponents): ϕ(k) is stored as
/// e^{−c}ϕ(k), and when a larger finite exponent arrives, S and z are rescaled by e^{c_old − c}
/// (exact: the factor cancels between numerator and denominator). Other maps use c = 0.
/// O(H·m·d_v) time and memory per token, no allocation after construction.
///
/// Non-finite input propagates as in the causal forward: a NaN or inf in a step's q gives a
/// non-finite output; a NaN in k or an inf in v enters the state, and every later output is
/// non-finite. Non-causal efficient attention has no recurrent form: the state uses its causal
/// variant (ϕ(k) = e^k with the normaliser).
/// Not thread-safe (step, push and reset update the state and its scratch): one object per
/// decoding stream; distinct objects share nothing and may step concurrently.
template <typename T>
class RecurrentAttentionState {
  static_assert(detail::is_real_v<T>, "xfmr::RecurrentAttentionState<T>: T must be float or double");

 public:
  /// Linear attention's features. \throws std::invalid_argument as LinearAttention, or if
  /// heads < 1.
  RecurrentAttentionState(const LinearAttentionConfig<T>& config, Index heads)
      : m_eps(config.eps), m_linear(std::in_place, config, "RecurrentAttentionState") {
    init(heads, m_linear->d, m_linear->dv, m_linear->m, m_linear->d);
  }

  /// Performer's random features (FAVOR+). \throws std::invalid_argument if heads < 1 or
  /// value_dim < 1.
  RecurrentAttentionState(const Performer<T>& performer, Index heads, Index value_dim)
      : m_performer(performer.feature_map()) {
    detail::require(value_dim >= 1, "RecurrentAttentionState", "value_dim must be >= 1 (got ",
                    value_dim, ")");
    init(heads, performer.config().head_dim, value_dim, m_performer->feature_dim(),
         m_performer->num_features());
  }

  /// Appends token t = tokens_seen() (position pos0 + t for RoPE) and writes its output.
  /// q, k: (1 × H·d); v, out: (1 × H·d_v). out must not overlap q, k or v (the contract's
  /// overlap rule, attention/contract.hpp).
  /// \throws std::invalid_argument on a shape mismatch or overlapping out.
  void step(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v, MatrixRef<T> out) {
    check(q, "q", m_d);
    check(out, "out", m_dv);
    detail::check_attention_overlap("RecurrentAttentionState", q, k, v, out);
    push(k, v);
    query(q, out);
  }

  /// Appends a key/value without a query (prefill of a prompt whose outputs are not needed).
  /// \throws std::invalid_argument on a shape mismatch.
  void push(ConstMatrixRef<T> k, ConstMatrixRef<T> v) {
    check(k, "k", m_d);
    check(v, "v", m_dv);
    const Index m = m_m, pos = m_pos0 + m_tokens;
    for (Index h = 0; h < m_heads; ++h) {
      auto s = m_s.middleRows(h * m, m);
      auto z = m_z.row(h);
      const T e = key_exponent(k.data() + h * m_d, pos);
      T& c = m_shift[h];
      if (std::isfinite(e) && !(e <= c)) {  // a new running maximum: rescale
        if (std::isfinite(c)) {
          const T g = std::exp(c - e);
          s *= g;
          z *= g;
        }
        c = e;
      }
      key_features(std::isfinite(c) ? c : T(0), pos);
      s.noalias() += (rotated() ? m_phik_s : m_phik).transpose() * v.middleCols(h * m_dv, m_dv);
      z += m_phik;
    }
    ++m_tokens;
  }

  /// Forgets every token.
  void reset() noexcept {
    m_s.setZero();
    m_z.setZero();
    m_shift.setConstant(-std::numeric_limits<T>::infinity());
    m_tokens = 0;
  }

  Index tokens_seen() const noexcept { return m_tokens; }
  Index heads() const noexcept { return m_heads; }
  Index feature_dim() const noexcept { return m_m; }
  /// The m × d_v state S of head h (scaled by e^{−c_h} for shifted features).
  auto state(Index h) const { return m_s.middleRows(h * m_m, m_m); }
  /// Position offset for RoPE: token t has position pos0 + t (default 0).
  void set_position_offset(Index pos0) {
    detail::require(pos0 >= 0, "RecurrentAttentionState", "pos0 must be >= 0 (got ", pos0, ")");
    m_pos0 = pos0;
  }

 private:
  void init(Index heads, Index d, Index dv, Index m, Index scratch) {
    detail::require(heads >= 1, "RecurrentAttentionState", "heads must be >= 1 (got ", heads,
                    ")");
    m_heads = heads;
    m_d = d;
    m_dv = dv;
    m_m = m;
    m_s.resize(heads * m, dv);
    m_z.resize(heads, m);
    m_shift.resize(heads);
    m_phik.resize(1, m);
    m_phiq.resize(1, m);
    m_phik_s.resize(1, m);
    m_phiq_s.resize(1, m);
    m_x.resize(1, scratch);  // Performer: the projection u; linear: the RoPE-rotated input
    reset();
  }

  template <class X>
  void check(const X& x, const char* name, Index width) const {
    detail::require(x.rows() == 1 && x.cols() == m_heads * width, "RecurrentAttentionState",
                    "expected ", name, " to be 1x", m_heads * width, " (got ", x.rows(), "x",
                    x.cols(), ")");
  }

  /// Linear, RoPE on inputs: the rotated row in m_x; otherwise x itself.
  const T* linear_input(const T* x, Index pos) {
    if (!m_linear->rope_inputs) return x;
    m_x = Eigen::Map<const RowMatrix<T>>(x, 1, m_d);
    m_linear->rope->apply(m_x, pos);
    return m_x.data();
  }

  /// The key's exponent that the running shift is the maximum of (−∞: unshifted features).
  /// Leaves what key_features needs in m_x / m_key.
  T key_exponent(const T* k, Index pos) {
    if (m_linear) {
      m_key = linear_input(k, pos);
      if (!m_linear->mapper.exp_keys(true)) return -std::numeric_limits<T>::infinity();
      return simd::row_max<simd::native_isa, T>(m_key, static_cast<std::size_t>(m_d));
    }
    m_performer->project(Eigen::Map<const RowMatrix<T>>(k, 1, m_d), m_x);
    m_key_h = m_performer->half_norm2(k);
    return m_performer->stabilize() ? m_performer->key_exponent_max(m_x.data(), m_key_h)
                                    : -std::numeric_limits<T>::infinity();
  }

  /// RoPE on features: the numerator uses rotated copies (m_phik_s, m_phiq_s) of the features.
  bool rotated() const noexcept { return m_linear && m_linear->rope_features; }

  /// e^{−c}ϕ(k) into m_phik (for z), and its rotated copy into m_phik_s (for S) if rotated().
  void key_features(T c, Index pos) {
    if (m_linear) {
      m_linear->mapper.key_row(m_key, m_phik.data(), c, true);
      if (rotated()) {
        m_phik_s = m_phik;
        m_linear->rope->apply(m_phik_s, pos);
      }
    } else {
      m_performer->key_features(m_x.data(), m_key_h, c, m_phik.data());
    }
  }

  /// out = φ(q)ᵀS / (φ(q)ᵀz + eps), per head (pos: the position of the last token pushed).
  void query(ConstMatrixRef<T> q, MatrixRef<T> out) {
    const Index m = m_m, pos = m_pos0 + m_tokens - 1;
    for (Index h = 0; h < m_heads; ++h) {
      const T* x = q.data() + h * m_d;
      T eps_term = 0;
      if (m_linear) {
        const T lq = m_linear->mapper.query_row(linear_input(x, pos), m_phiq.data());
        const T c = std::isfinite(m_shift[h]) ? m_shift[h] : T(0);
        eps_term = detail::LinearSetup<T>::eps_term(m_eps, lq, c);
        if (rotated()) {
          m_phiq_s = m_phiq;
          m_linear->rope->apply(m_phiq_s, pos);
        }
      } else {
        m_performer->project(Eigen::Map<const RowMatrix<T>>(x, 1, m_d), m_x);
        const T hq = m_performer->stabilize() ? T(0) : m_performer->half_norm2(x);
        m_performer->query_features(m_x.data(), hq, m_phiq.data());
      }
      const T den = m_phiq.row(0).dot(m_z.row(h)) + eps_term;
      auto o = out.middleCols(h * m_dv, m_dv);
      o.noalias() = (rotated() ? m_phiq_s : m_phiq) * m_s.middleRows(h * m, m);
      detail::normalise_row(o, den, m_z.row(h).data(), m);
    }
  }

  double m_eps = 0;
  std::optional<detail::LinearSetup<T>> m_linear;           // one of the two feature sides
  std::optional<detail::PerformerFeatureMap<T>> m_performer;
  Index m_heads = 1, m_d = 0, m_dv = 0, m_m = 0, m_tokens = 0, m_pos0 = 0;
  RowMatrix<T> m_s, m_z, m_phik, m_phiq, m_phik_s, m_phiq_s, m_x;
  Eigen::Matrix<T, Eigen::Dynamic, 1> m_shift;
  const T* m_key = nullptr;  // the key row key_features reads (linear)
  T m_key_h = 0;             // ‖k‖²/(2√d) (Performer)
};

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_RECURRENT_STATE_HPP

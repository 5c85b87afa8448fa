// SPDX-License-Identifier: MIT
// Normalisation layers over row-major token matrices: LayerNorm, RMSNorm and conditional
// LayerNorm (SPEC §11; kexue 7124, 8620).
#ifndef XFMR_LAYERS_NORM_HPP
#define XFMR_LAYERS_NORM_HPP

#include <cmath>
#include <cstddef>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/isa.hpp"
#include "../simd/norm.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// LayerNorm (bert4keras LayerNormalization): per row, μ = mean(x), σ² = mean((x − μ)²),
/// y = γ ⊙ (x − μ)/√(σ² + ε) + β. ε: BERT 1e-12, GPT-2 1e-5, bert4keras' default 1e-7.
struct LayerNormConfig {
  Index dim = 0;       ///< width of a row (hidden size)
  double eps = 1e-7;   ///< added to σ²; finite, >= 0
  bool scale = true;   ///< multiply by γ (gain)
  bool offset = true;  ///< add β (bias)
};

/// RMSNorm (T5): y = γ ⊙ x / √(mean(x²) + ε); scale = false is RoFormer-v2's gain-free form.
struct RmsNormConfig {
  Index dim = 0;
  double eps = 1e-6;  ///< T5's value
  bool scale = true;
};

namespace detail {

inline void check_norm_config(const char* where, Index dim, double eps) {
  require(dim >= 1, where, "dim must be >= 1 (got ", dim, ")");
  require(std::isfinite(eps) && eps >= 0, where, "eps must be finite and >= 0 (got ", eps, ")");
}

template <typename T>
void check_norm_shapes(const char* where, Index dim, ConstMatrixRef<T> x, const MatrixRef<T>& out) {
  require(x.cols() == dim, where, "x must have dim=", dim, " columns (got ", x.cols(), ")");
  require(out.rows() == x.rows() && out.cols() == x.cols(), where,
          "out must be the shape of x (", x.rows(), "x", x.cols(), ") (got ", out.rows(), "x",
          out.cols(), ")");
  require_same_or_disjoint(x.data(), x.outerStride(), out.data(), out.outerStride(), x.rows(),
                           x.cols(), where);
}

}  // namespace detail

template <typename T, class Isa>
class ConditionalLayerNorm;

/// LayerNorm over the rows of a (tokens × dim) matrix. γ starts at 1 and β at 0; set them with
/// gamma() / beta(). Statistics use the centred two-pass formula (never E[x²] − μ²), so rows
/// with a large common offset normalise exactly. No allocation per call.
/// Thread-safe: apply() is const and uses no scratch, so it may run concurrently; changing γ or
/// β (gamma(), beta()) meanwhile is a data race.
template <typename T, class Isa = simd::native_isa>
class LayerNorm {
  static_assert(detail::is_real_v<T>, "xfmr::LayerNorm<T>: T must be float or double");

 public:
  explicit LayerNorm(const LayerNormConfig& config)
      : m_config(config),
        m_gamma(RowVector<T>::Ones(config.dim > 0 ? config.dim : 0)),
        m_beta(RowVector<T>::Zero(config.dim > 0 ? config.dim : 0)) {
    detail::check_norm_config("LayerNorm", config.dim, config.eps);
  }

  const LayerNormConfig& config() const noexcept { return m_config; }
  RowVector<T>& gamma() noexcept { return m_gamma; }  ///< γ, 1 × dim (keep the size)
  RowVector<T>& beta() noexcept { return m_beta; }    ///< β, 1 × dim (keep the size)
  const RowVector<T>& gamma() const noexcept { return m_gamma; }
  const RowVector<T>& beta() const noexcept { return m_beta; }

  /// out = LN(x), rows independent; out may be x itself.
  void apply(ConstMatrixRef<T> x, MatrixRef<T> out) const {
    detail::check_norm_shapes<T>("LayerNorm", m_config.dim, x, out);
    check_params();
    apply_with(x, out, m_config.scale ? m_gamma.data() : nullptr,
               m_config.offset ? m_beta.data() : nullptr);
  }
  /// In place.
  void apply(MatrixRef<T> x) const { apply(x, x); }

 private:
  template <typename, class>
  friend class ConditionalLayerNorm;

  /// Unchecked: row r uses gamma/beta + r·param_stride (null: γ = 1, β = 0).
  void apply_with(ConstMatrixRef<T> x, MatrixRef<T> out, const T* gamma, const T* beta,
                  Index param_stride = 0) const noexcept {
    simd::layer_norm_rows<Isa>(x.data(), static_cast<std::size_t>(x.outerStride()), out.data(),
                               static_cast<std::size_t>(out.outerStride()),
                               static_cast<std::size_t>(x.rows()),
                               static_cast<std::size_t>(x.cols()), gamma, beta,
                               static_cast<std::size_t>(param_stride),
                               static_cast<T>(m_config.eps));
  }

  void check_params() const {
    require_size("gamma", m_gamma.size());
    require_size("beta", m_beta.size());
  }
  void require_size(const char* what, Index size) const {
    detail::require(size == m_config.dim, "LayerNorm", what, " must have dim=", m_config.dim,
                    " entries (got ", size, ")");
  }

  LayerNormConfig m_config;
  RowVector<T> m_gamma, m_beta;
};

/// RMSNorm over the rows of a (tokens × dim) matrix; γ starts at 1. No allocation per call.
/// Thread-safe as LayerNorm: apply() is const and uses no scratch; changing γ meanwhile is a race.
template <typename T, class Isa = simd::native_isa>
class RmsNorm {
  static_assert(detail::is_real_v<T>, "xfmr::RmsNorm<T>: T must be float or double");

 public:
  explicit RmsNorm(const RmsNormConfig& config)
      : m_config(config), m_gamma(RowVector<T>::Ones(config.dim > 0 ? config.dim : 0)) {
    detail::check_norm_config("RmsNorm", config.dim, config.eps);
  }

  const RmsNormConfig& config() const noexcept { return m_config; }
  RowVector<T>& gamma() noexcept { return m_gamma; }
  const RowVector<T>& gamma() const noexcept { return m_gamma; }

  /// out = RMSNorm(x), rows independent; out may be x itself.
  void apply(ConstMatrixRef<T> x, MatrixRef<T> out) const {
    detail::check_norm_shapes<T>("RmsNorm", m_config.dim, x, out);
    detail::require(m_gamma.size() == m_config.dim, "RmsNorm", "gamma must have dim=",
                    m_config.dim, " entries (got ", m_gamma.size(), ")");
    simd::rms_norm_rows<Isa>(x.data(), static_cast<std::size_t>(x.outerStride()), out.data(),
                             static_cast<std::size_t>(out.outerStride()),
                             static_cast<std::size_t>(x.rows()),
                             static_cast<std::size_t>(x.cols()),
                             m_config.scale ? m_gamma.data() : nullptr,
                             static_cast<T>(m_config.eps));
  }
  void apply(MatrixRef<T> x) const { apply(x, x); }

 private:
  RmsNormConfig m_config;
  RowVector<T> m_gamma;
};

/// Conditional LayerNorm (kexue 7124; bert4keras LayerNormalization(conditional=True)): the
/// gain and bias depend on a condition vector c (1 × cond_dim),
///   γ(c) = γ + c·W_γ,   β(c) = β + c·W_β,
/// with W_γ, W_β (cond_dim × dim, bias-free) initialised to zero, so an untrained layer equals the
/// pretrained unconditional LayerNorm. A hidden Dense on c (bert4keras' hidden_units) is the
/// caller's: pass its output as the condition.
/// Thread-safe as LayerNorm: apply() is const (its gain and bias are per-call locals); changing
/// the weights (w_gamma(), w_beta(), gamma(), beta()) meanwhile is a data race.
template <typename T, class Isa = simd::native_isa>
class ConditionalLayerNorm {
 public:
  ConditionalLayerNorm(const LayerNormConfig& config, Index cond_dim)
      : m_norm(config),
        m_w_gamma(RowMatrix<T>::Zero(cond_dim > 0 ? cond_dim : 0, config.dim)),
        m_w_beta(RowMatrix<T>::Zero(cond_dim > 0 ? cond_dim : 0, config.dim)) {
    detail::require(cond_dim >= 1, "ConditionalLayerNorm", "cond_dim must be >= 1 (got ",
                    cond_dim, ")");
  }

  LayerNorm<T, Isa>& base() noexcept { return m_norm; }  ///< γ, β, ε of the unconditional layer
  const LayerNorm<T, Isa>& base() const noexcept { return m_norm; }
  RowMatrix<T>& w_gamma() noexcept { return m_w_gamma; }  ///< cond_dim × dim, zero at start
  RowMatrix<T>& w_beta() noexcept { return m_w_beta; }    ///< cond_dim × dim, zero at start
  Index cond_dim() const noexcept { return m_w_gamma.rows(); }

  /// out = LN(x) with γ(c), β(c). condition has one row (broadcast over the tokens of x) or one
  /// row per token. Allocates the (rows of condition) × dim gain and bias per call.
  void apply(ConstMatrixRef<T> x, ConstMatrixRef<T> condition, MatrixRef<T> out) const {
    const char* where = "ConditionalLayerNorm";
    const Index dim = m_norm.config().dim;
    detail::check_norm_shapes<T>(where, dim, x, out);
    detail::require(condition.cols() == cond_dim(), where, "condition must have cond_dim=",
                    cond_dim(), " columns (got ", condition.cols(), ")");
    detail::require(condition.rows() == 1 || condition.rows() == x.rows(), where,
                    "condition must have 1 row or one per token (", x.rows(), ") (got ",
                    condition.rows(), ")");
    detail::require(m_w_gamma.rows() == cond_dim() && m_w_gamma.cols() == dim &&
                        m_w_beta.rows() == cond_dim() && m_w_beta.cols() == dim,
                    where, "w_gamma and w_beta must be ", cond_dim(), "x", dim, " (got ",
                    m_w_gamma.rows(), "x", m_w_gamma.cols(), " and ", m_w_beta.rows(), "x",
                    m_w_beta.cols(), ")");
    const auto& cfg = m_norm.config();
    RowMatrix<T> gamma, beta;
    if (cfg.scale) gamma = (condition * m_w_gamma).rowwise() + m_norm.gamma();
    if (cfg.offset) beta = (condition * m_w_beta).rowwise() + m_norm.beta();
    const Index stride = condition.rows() == 1 ? 0 : dim;
    m_norm.apply_with(x, out, cfg.scale ? gamma.data() : nullptr,
                      cfg.offset ? beta.data() : nullptr, stride);
  }

 private:
  LayerNorm<T, Isa> m_norm;
  RowMatrix<T> m_w_gamma, m_w_beta;
};

XFMR_NAMESPACE_END

#endif  // XFMR_LAYERS_NORM_HPP

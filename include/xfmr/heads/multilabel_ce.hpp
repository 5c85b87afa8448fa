// SPDX-License-Identifier: MIT
// Multilabel categorical cross-entropy ("ZLPR"; kexue 7359, 9064, 8888): dense, soft-label and
// sparse forms with their gradients.
#ifndef XFMR_HEADS_MULTILABEL_CE_HPP
#define XFMR_HEADS_MULTILABEL_CE_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// Positive class indices for the sparse form, one row per instance; -1 pads short rows.
using LabelIndexMatrix =
    Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstLabelIndexRef = const Eigen::Ref<const LabelIndexMatrix, 0, Eigen::OuterStride<>>&;

/// Per-row losses, one entry per row of the logits.
template <typename T>
using LossRef = Eigen::Ref<Eigen::Matrix<T, Eigen::Dynamic, 1>>;

/// Soft labels below this are 0 and above 1 − this are 1 (Keras' K.epsilon(), as bert4keras):
/// a label of 1e-9 on a logit masked with a finite −1e7 would otherwise add 1e7 to the loss.
inline constexpr double kMultilabelLabelEpsilon = 1e-7;

namespace detail {

/// log(1 + Σ_c e^{z_c}) over the terms with `use[c]`, and into w the softmax weights
/// e^{z_c} / (1 + Σ e^{z}) (0 where unused). z_c = −inf contributes nothing; if some z_c are
/// +inf the result is +inf and those terms share the weight 1.
inline double zlpr_log1p_sum_exp(const std::vector<double>& z, const std::vector<char>& use,
                                 std::vector<double>& w) {
  const std::size_t n = z.size();
  double m = 0.0;  // the implicit threshold term e^0
  std::size_t infinite = 0;
  for (std::size_t c = 0; c < n; ++c)
    if (use[c]) {
      if (z[c] == std::numeric_limits<double>::infinity()) ++infinite;
      if (z[c] > m) m = z[c];
    }
  if (infinite > 0) {
    for (std::size_t c = 0; c < n; ++c)
      w[c] = use[c] && z[c] == m ? 1.0 / static_cast<double>(infinite) : 0.0;
    return m;
  }
  double sum = std::exp(-m);
  for (std::size_t c = 0; c < n; ++c)
    if (use[c]) sum += std::exp(z[c] - m);
  const double lse = m + std::log(sum);
  for (std::size_t c = 0; c < n; ++c) w[c] = use[c] ? std::exp(z[c] - lse) : 0.0;
  return lse;
}

/// The soft-label loss of one row with labels y ∈ [0, 1] (already snapped to 0/1 near the ends):
///   loss = log(1 + Σ (1 − y_c) e^{s_c}) + log(1 + Σ y_c e^{−s_c}),
///   ∂loss/∂s_c = (1 − y_c) e^{s_c} / (1 + Σ (1 − y) e^{s}) − y_c e^{−s_c} / (1 + Σ y e^{−s}).
/// Logits of −inf (masked) are left out of both sums.
struct ZlprRow {
  std::vector<double> z_neg, z_pos, w_neg, w_pos;
  std::vector<char> use_neg, use_pos;

  explicit ZlprRow(Index classes) {
    const auto n = static_cast<std::size_t>(classes);
    z_neg.resize(n), z_pos.resize(n), w_neg.resize(n), w_pos.resize(n);
    use_neg.resize(n), use_pos.resize(n);
  }

  template <typename Row>
  double loss(const Row& s, const std::vector<double>& y) {
    for (std::size_t c = 0; c < y.size(); ++c) {
      const double sc = static_cast<double>(s[static_cast<Index>(c)]);
      const bool masked = sc == -std::numeric_limits<double>::infinity();
      use_neg[c] = !masked && y[c] < 1.0;
      use_pos[c] = !masked && y[c] > 0.0;
      z_neg[c] = use_neg[c] ? sc + std::log1p(-y[c]) : 0.0;
      z_pos[c] = use_pos[c] ? -sc + std::log(y[c]) : 0.0;
    }
    return zlpr_log1p_sum_exp(z_neg, use_neg, w_neg) + zlpr_log1p_sum_exp(z_pos, use_pos, w_pos);
  }

  template <typename GradRow>
  void gradient(GradRow&& g) const {
    for (std::size_t c = 0; c < w_neg.size(); ++c)
      g[static_cast<Index>(c)] =
          static_cast<typename std::decay_t<GradRow>::Scalar>(w_neg[c] - w_pos[c]);
  }
};

enum class ZlprLabels { Dense, Soft };

template <typename T, typename Labels>
void check_zlpr_shapes(const char* where, ConstMatrixRef<T> logits, const Labels& labels_rows,
                       Index loss_size, const MatrixRef<T>* grad) {
  require(loss_size == logits.rows(), where, "loss must have one entry per row of logits (",
          logits.rows(), ") (got ", loss_size, ")");
  require(labels_rows == logits.rows(), where, "labels must have as many rows as logits (",
          logits.rows(), ") (got ", labels_rows, ")");
  if (grad)
    require(grad->rows() == logits.rows() && grad->cols() == logits.cols(), where,
            "grad must be the shape of logits (", logits.rows(), "x", logits.cols(), ") (got ",
            grad->rows(), "x", grad->cols(), ")");
  for (Index r = 0; r < logits.rows(); ++r)
    for (Index c = 0; c < logits.cols(); ++c)
      require(!std::isnan(static_cast<double>(logits(r, c))), where,
              "logits must not be NaN (got NaN at row ", r, ", column ", c, ")");
}

template <typename T>
void zlpr_dense(const char* where, ZlprLabels kind, ConstMatrixRef<T> logits,
                ConstMatrixRef<T> labels, LossRef<T> loss, MatrixRef<T>* grad) {
  check_zlpr_shapes<T>(where, logits, labels.rows(), loss.size(), grad);
  require(labels.cols() == logits.cols(), where, "labels must have as many columns as logits (",
          logits.cols(), ") (got ", labels.cols(), ")");
  // Validate everything before writing anything.
  for (Index r = 0; r < labels.rows(); ++r)
    for (Index c = 0; c < labels.cols(); ++c) {
      const double y = static_cast<double>(labels(r, c));
      if (kind == ZlprLabels::Dense)
        require(y == 0.0 || y == 1.0, where, "dense labels must be 0 or 1 (got ", y, " at row ", r,
                ", column ", c, ")");
      else
        require(y >= 0.0 && y <= 1.0, where, "soft labels must be in [0, 1] (got ", y, " at row ",
                r, ", column ", c, ")");
    }
  ZlprRow row(logits.cols());
  std::vector<double> y(static_cast<std::size_t>(logits.cols()));
  for (Index r = 0; r < logits.rows(); ++r) {
    for (Index c = 0; c < logits.cols(); ++c) {
      const double v = static_cast<double>(labels(r, c));
      y[static_cast<std::size_t>(c)] = v < kMultilabelLabelEpsilon           ? 0.0
                                       : v > 1.0 - kMultilabelLabelEpsilon ? 1.0
                                                                             : v;
    }
    loss[r] = static_cast<T>(row.loss(logits.row(r), y));
    if (grad) row.gradient(grad->row(r));
  }
}

template <typename T>
void zlpr_sparse(ConstMatrixRef<T> logits, ConstLabelIndexRef positives, LossRef<T> loss,
                 MatrixRef<T>* grad) {
  const char* where = "multilabel_ce_sparse";
  check_zlpr_shapes<T>(where, logits, positives.rows(), loss.size(), grad);
  const Index classes = logits.cols();
  std::vector<double> y(static_cast<std::size_t>(classes));
  for (Index r = 0; r < positives.rows(); ++r) {
    std::fill(y.begin(), y.end(), 0.0);
    for (Index k = 0; k < positives.cols(); ++k) {
      const std::int64_t c = positives(r, k);
      if (c == -1) continue;
      require(c >= 0 && c < classes, where, "positive indices must be in [0, ", classes,
              ") or -1 for padding (got ", c, " at row ", r, ", entry ", k, ")");
      require(y[static_cast<std::size_t>(c)] == 0.0, where,
              "positive indices of a row must be distinct (got ", c, " twice in row ", r, ")");
      y[static_cast<std::size_t>(c)] = 1.0;
    }
  }
  ZlprRow row(classes);
  for (Index r = 0; r < logits.rows(); ++r) {
    std::fill(y.begin(), y.end(), 0.0);
    for (Index k = 0; k < positives.cols(); ++k)
      if (positives(r, k) >= 0) y[static_cast<std::size_t>(positives(r, k))] = 1.0;
    loss[r] = static_cast<T>(row.loss(logits.row(r), y));
    if (grad) row.gradient(grad->row(r));
  }
}

}  // namespace detail

/// Multilabel categorical cross-entropy of each row of `logits` (instances × classes) against
/// 0/1 `labels` of the same shape, with the threshold class fixed at 0 (SPEC §10.3):
/// ```
/// loss = log(1 + Σ_{c∈Ω−} e^{s_c}) + log(1 + Σ_{c∈Ω+} e^{−s_c})
///      = log Σ_{i∈Ω−∪{0}, j∈Ω+∪{0}} e^{s_i − s_j}     (s_0 = 0: every negative below every positive)
/// ```
/// Computed as two log-sum-exps in double, so logits of ±1e4 are exact and an empty positive set
/// is fine. A logit of −inf is masked: it is in neither sum and its gradient is 0. Predict the
/// classes with s_c > 0. Allocates O(classes) scratch per call.
/// T is not deduced through the Eigen::Ref parameters: call multilabel_ce<float>(...).
/// \throws std::invalid_argument on shape mismatches, labels other than 0/1, NaN logits; nothing
/// is written then.
template <typename T>
void multilabel_ce(ConstMatrixRef<T> logits, ConstMatrixRef<T> labels, LossRef<T> loss) {
  detail::zlpr_dense<T>("multilabel_ce", detail::ZlprLabels::Dense, logits, labels, loss,
                        nullptr);
}

/// As above, and `grad` (shape of logits) = ∂loss_r/∂s_{r,c}:
/// (1 − y_c)·e^{s_c}/(1 + Σ_{Ω−} e^{s}) − y_c·e^{−s_c}/(1 + Σ_{Ω+} e^{−s}).
template <typename T>
void multilabel_ce(ConstMatrixRef<T> logits, ConstMatrixRef<T> labels, LossRef<T> loss,
                   MatrixRef<T> grad) {
  detail::zlpr_dense<T>("multilabel_ce", detail::ZlprLabels::Dense, logits, labels, loss, &grad);
}

/// Soft-label form (kexue 9064), labels y ∈ [0, 1]:
/// loss = log(1 + Σ_c (1 − y_c) e^{s_c}) + log(1 + Σ_c y_c e^{−s_c}); equals multilabel_ce on 0/1
/// labels. Labels within kMultilabelLabelEpsilon of 0 or 1 count as exactly 0 or 1. The optimum
/// of one class is s = ½·logit(y), i.e. read probabilities as σ(2s).
template <typename T>
void multilabel_ce_soft(ConstMatrixRef<T> logits, ConstMatrixRef<T> labels, LossRef<T> loss) {
  detail::zlpr_dense<T>("multilabel_ce_soft", detail::ZlprLabels::Soft, logits, labels, loss,
                        nullptr);
}

/// As above, with the gradient (1 − y_c)·e^{s_c}/A − y_c·e^{−s_c}/B.
template <typename T>
void multilabel_ce_soft(ConstMatrixRef<T> logits, ConstMatrixRef<T> labels, LossRef<T> loss,
                        MatrixRef<T> grad) {
  detail::zlpr_dense<T>("multilabel_ce_soft", detail::ZlprLabels::Soft, logits, labels, loss,
                        &grad);
}

/// Sparse form (GPLinker, kexue 8888): row r's positive classes are the entries of
/// positives.row(r) other than -1 (padding), distinct and in [0, classes). Same loss and gradient
/// as multilabel_ce with the equivalent dense labels; the negative term is summed exactly over
/// the complement, not as bert4keras' a + log(1 − e^{b−a}) with its clip.
template <typename T>
void multilabel_ce_sparse(ConstMatrixRef<T> logits, ConstLabelIndexRef positives,
                          LossRef<T> loss) {
  detail::zlpr_sparse<T>(logits, positives, loss, nullptr);
}

/// As above, with the gradient.
template <typename T>
void multilabel_ce_sparse(ConstMatrixRef<T> logits, ConstLabelIndexRef positives, LossRef<T> loss,
                          MatrixRef<T> grad) {
  detail::zlpr_sparse<T>(logits, positives, loss, &grad);
}

XFMR_NAMESPACE_END

#endif  // XFMR_HEADS_MULTILABEL_CE_HPP

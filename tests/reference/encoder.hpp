// SPDX-License-Identifier: MIT
// Naive long-double BERT / RoFormer encoder (SPEC §15.1–15.2), one sequence at a time, written
// from the formulas with no xfmr code: embeddings, LayerNorm, the projections, RoPE
// (interleaved or half-split), softmax attention with an optional UniLM mask, the activations,
// post-LN or pre-LN.
#ifndef XFMR_TESTS_REFERENCE_ENCODER_HPP
#define XFMR_TESTS_REFERENCE_ENCODER_HPP

#include <cmath>
#include <cstdint>
#include <vector>

#include <xfmr/models/checkpoint.hpp>
#include <xfmr/models/config.hpp>

namespace xfmr_ref {

using LD = long double;
using MatL = Eigen::Matrix<LD, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecL = Eigen::Matrix<LD, Eigen::Dynamic, 1>;

template <class M>
MatL to_ld(const M& m) {
  return m.template cast<LD>();
}

/// y = x·Wᵀ + b (W [out × in]).
template <typename T>
MatL linear(const MatL& x, const xfmr::RowMatrix<T>& w,
            const Eigen::Matrix<T, Eigen::Dynamic, 1>& b) {
  MatL y = x * to_ld(w).transpose();
  if (b.size() > 0) {
    const VecL bl = b.template cast<LD>();
    y.rowwise() += bl.transpose();
  }
  return y;
}

template <typename T>
MatL layer_norm(const MatL& x, const Eigen::Matrix<T, Eigen::Dynamic, 1>& g,
                const Eigen::Matrix<T, Eigen::Dynamic, 1>& b, double eps) {
  MatL y(x.rows(), x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const LD mu = x.row(r).sum() / LD(x.cols());
    LD var = 0;
    for (Eigen::Index c = 0; c < x.cols(); ++c) var += (x(r, c) - mu) * (x(r, c) - mu);
    var /= LD(x.cols());
    const LD inv = 1 / std::sqrt(var + LD(eps));
    for (Eigen::Index c = 0; c < x.cols(); ++c)
      y(r, c) = (x(r, c) - mu) * inv * LD(g[c]) + LD(b[c]);
  }
  return y;
}

inline LD activation(xfmr::ActivationKind k, LD x) {
  switch (k) {
    case xfmr::ActivationKind::Identity: return x;
    case xfmr::ActivationKind::Relu: return x > 0 ? x : 0;
    case xfmr::ActivationKind::GeluErf: return x / 2 * (1 + std::erf(x / std::sqrt(LD(2))));
    case xfmr::ActivationKind::GeluTanh: {
      const LD c = std::sqrt(2 / LD(3.141592653589793238462643383279502884L));
      return x / 2 * (1 + std::tanh(c * (x + LD(0.044715) * x * x * x)));
    }
    case xfmr::ActivationKind::Silu: return x / (1 + std::exp(-x));
  }
  return x;
}

/// RoPE on every head of x (L × heads·d) in place, row t at position t.
inline void rope(MatL& x, Eigen::Index d, double base, xfmr::RopeLayout layout) {
  const Eigen::Index heads = x.cols() / d;
  for (Eigen::Index t = 0; t < x.rows(); ++t)
    for (Eigen::Index h = 0; h < heads; ++h)
      for (Eigen::Index i = 0; i < d / 2; ++i) {
        const LD theta = std::pow(LD(base), -LD(2 * i) / LD(d)) * LD(t);
        const Eigen::Index a = h * d + (layout == xfmr::RopeLayout::Interleaved ? 2 * i : i);
        const Eigen::Index b =
            h * d + (layout == xfmr::RopeLayout::Interleaved ? 2 * i + 1 : i + d / 2);
        const LD xa = x(t, a), xb = x(t, b);
        x(t, a) = xa * std::cos(theta) - xb * std::sin(theta);
        x(t, b) = xa * std::sin(theta) + xb * std::cos(theta);
      }
}

/// One sequence (L tokens): ids, token types (empty = 0), UniLM segments (empty = none).
/// Returns the last hidden state (L × H).
template <typename T>
MatL encoder(const xfmr::EncoderConfig& c, const xfmr::EncoderWeights<T>& w,
             const std::vector<std::int64_t>& ids, const std::vector<std::int64_t>& types,
             const std::vector<int>& segments) {
  const Eigen::Index L = static_cast<Eigen::Index>(ids.size()), H = c.hidden_size,
                     d = c.head_dim(), heads = c.num_attention_heads;
  const bool bert = c.family == xfmr::EncoderFamily::Bert;
  MatL x(L, c.embedding_dim());
  for (Eigen::Index t = 0; t < L; ++t) {
    x.row(t) = to_ld(w.word_embeddings.row(ids[std::size_t(t)]));
    x.row(t) += to_ld(w.token_type_embeddings.row(types.empty() ? 0 : types[std::size_t(t)]));
    if (bert) x.row(t) += to_ld(w.position_embeddings.row(t));
  }
  x = layer_norm(x, w.embeddings_norm_weight, w.embeddings_norm_bias, c.layer_norm_eps);
  if (w.embeddings_project.size() > 0)
    x = linear(x, w.embeddings_project, w.embeddings_project_bias);

  std::vector<int> cum(std::size_t(L), 0);
  for (Eigen::Index t = 0, s = 0; t < L && !segments.empty(); ++t)
    cum[std::size_t(t)] = s += segments[std::size_t(t)];

  for (const auto& lw : w.layers) {
    const MatL in1 = c.pre_layer_norm ? layer_norm(x, lw.attention_norm_weight,
                                                   lw.attention_norm_bias, c.layer_norm_eps)
                                      : x;
    MatL q = linear(in1, lw.query, lw.query_bias);
    MatL k = linear(in1, lw.key, lw.key_bias);
    MatL v = linear(in1, lw.value, lw.value_bias);
    if (!bert) {
      rope(q, d, c.rope_base, c.rope_layout);
      rope(k, d, c.rope_base, c.rope_layout);
      if (c.rotary_value) rope(v, d, c.rope_base, c.rope_layout);
    }
    MatL ctx = MatL::Zero(L, H);
    for (Eigen::Index h = 0; h < heads; ++h)
      for (Eigen::Index i = 0; i < L; ++i) {
        std::vector<LD> s(std::size_t(L), -INFINITY);
        LD mx = -INFINITY;
        for (Eigen::Index j = 0; j < L; ++j) {
          if (!segments.empty() && cum[std::size_t(j)] > cum[std::size_t(i)]) continue;
          s[std::size_t(j)] = q.row(i).segment(h * d, d).dot(k.row(j).segment(h * d, d)) /
                              std::sqrt(LD(d));
          mx = std::max(mx, s[std::size_t(j)]);
        }
        LD sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (Eigen::Index j = 0; j < L; ++j)
          ctx.row(i).segment(h * d, d) += s[std::size_t(j)] / sum * v.row(j).segment(h * d, d);
      }
    x += linear(ctx, lw.attention_output, lw.attention_output_bias);
    if (!c.pre_layer_norm)
      x = layer_norm(x, lw.attention_norm_weight, lw.attention_norm_bias, c.layer_norm_eps);
    const MatL in2 = c.pre_layer_norm ? layer_norm(x, lw.output_norm_weight, lw.output_norm_bias,
                                                   c.layer_norm_eps)
                                      : x;
    MatL inner = linear(in2, lw.intermediate, lw.intermediate_bias);
    inner = inner.unaryExpr([&](LD e) { return activation(c.hidden_act, e); });
    x += linear(inner, lw.output, lw.output_bias);
    if (!c.pre_layer_norm)
      x = layer_norm(x, lw.output_norm_weight, lw.output_norm_bias, c.layer_norm_eps);
  }
  if (c.pre_layer_norm) x = layer_norm(x, w.final_norm_weight, w.final_norm_bias, c.layer_norm_eps);
  return x;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_ENCODER_HPP

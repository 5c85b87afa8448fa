// SPDX-License-Identifier: MIT
// KeyNorm / QueryNorm / cosine / QK-RMSNorm attention (SPEC §8.4): unit norms, KNA equals
// standard attention when every ‖k‖ = √d, invariance to key rescaling, cosine logits within ±λ,
// normalise∘RoPE = RoPE∘normalise, the whole pipeline against a naive double reference, errors.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/keynorm.hpp>
#include <xfmr/attention/softmax.hpp>
#include <xfmr/position/rope.hpp>

#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

namespace {

using xfmr::Index;
using xfmr::QkNormKind;
using xfmr::RowMatrix;

/// Naive causal attention in double for one head layout (H heads of width d, no GQA), logits
/// s_ij = logit(i, j, h) over j <= i.
template <class Logit>
RowMatrix<double> naive_causal(const RowMatrix<double>& v, Index heads, Index d, Logit logit) {
  const Index n = v.rows();
  RowMatrix<double> out = RowMatrix<double>::Zero(n, heads * d);
  for (Index h = 0; h < heads; ++h)
    for (Index i = 0; i < n; ++i) {
      std::vector<double> s(static_cast<std::size_t>(i + 1));
      double m = -INFINITY, z = 0;
      for (Index j = 0; j <= i; ++j) m = std::max(m, s[std::size_t(j)] = logit(i, j, h));
      for (Index j = 0; j <= i; ++j) z += std::exp(s[std::size_t(j)] - m);
      for (Index j = 0; j <= i; ++j)
        out.row(i).segment(h * d, d) += std::exp(s[std::size_t(j)] - m) / z * v.row(j).segment(h * d, d);
    }
  return out;
}

double head_dot(const RowMatrix<double>& a, Index i, const RowMatrix<double>& b, Index j, Index h,
                Index d) {
  return a.row(i).segment(h * d, d).dot(b.row(j).segment(h * d, d));
}
double head_norm(const RowMatrix<double>& a, Index i, Index h, Index d) {
  return a.row(i).segment(h * d, d).norm();
}

RowMatrix<double> attend(const RowMatrix<double>& q, const RowMatrix<double>& k,
                         const RowMatrix<double>& v, Index d, xfmr::AttentionScale scale) {
  xfmr::SoftmaxAttentionConfig c;
  c.head_dim = d;
  c.scale = scale;
  xfmr::SoftmaxAttention<double> attn(c);
  RowMatrix<double> out(q.rows(), v.cols());
  attn.forward(q, k, v, out, xfmr::AttentionMask<double>{}.set_causal());
  return out;
}

}  // namespace

TEST_CASE("QkNorm: unit norms per head, zero rows stay zero, every ISA equals scalar",
          "[keynorm]") {
  auto rng = xfmr_test::make_rng();
  const Index d = 13, heads = 3;
  for (const QkNormKind kind : {QkNormKind::Key, QkNormKind::Query, QkNormKind::Cosine,
                                QkNormKind::QkRms}) {
    CAPTURE(int(kind));
    xfmr::QkNormConfig c;
    c.kind = kind;
    c.head_dim = d;
    c.cosine_lambda = 1.0;
    RowMatrix<float> input = xfmr_test::random_matrix<float>(rng, 6, heads * d + 2, -5.0, 5.0);
    input.block(2, 1 + d, 1, d).setZero();
    // The scalar path's result, the one every ISA must reproduce (to FMA-contraction rounding).
    RowMatrix<float> scalar_q = input, scalar_k = input;
    xfmr::QkNorm<float, xfmr::simd::scalar_isa> scalar(c);
    scalar.forward(scalar_q.block(1, 1, 5, heads * d), scalar_k.block(1, 1, 5, heads * d));
    // Each query and key row of each head has the norm its kind prescribes (queries are not
    // normalised by KeyNorm, keys not by QueryNorm; QK-RMS gives norm √d, the others 1).
    const bool q_norm = kind != QkNormKind::Key, k_norm = kind != QkNormKind::Query;
    const float unit = kind == QkNormKind::QkRms ? std::sqrt(float(d)) : 1.0f;
    for (Index r = 1; r < 6; ++r)
      for (Index h = 0; h < heads; ++h) {
        const bool zero = r == 2 && h == 1;
        const double want_q = zero ? 0.0 : q_norm ? unit : input.block(r, 1 + h * d, 1, d).norm();
        const double want_k = zero ? 0.0 : k_norm ? unit : input.block(r, 1 + h * d, 1, d).norm();
        CHECK(scalar_q.block(r, 1 + h * d, 1, d).norm() == Approx(want_q).epsilon(1e-6).margin(1e-6));
        CHECK(scalar_k.block(r, 1 + h * d, 1, d).norm() == Approx(want_k).epsilon(1e-6).margin(1e-6));
      }
    xfmr_test::for_each_isa([&](auto isa) {
      using Isa = decltype(isa);
      INFO("isa " << Isa::name);
      xfmr::QkNorm<float, Isa> norm(c);
      RowMatrix<float> q = input, k = input;
      norm.forward(q.block(1, 1, 5, heads * d), k.block(1, 1, 5, heads * d));  // strided, unaligned
      // Same values as scalar: a few ulp of the unit-sized outputs (fused vs separate multiply-add).
      CHECK((q - scalar_q).cwiseAbs().maxCoeff() <= 4e-7f * unit);
      CHECK((k - scalar_k).cwiseAbs().maxCoeff() <= 4e-7f * unit);
      for (const RowMatrix<float>* out : {&q, &k}) {
        CHECK(out->col(0) == input.col(0));  // nothing outside the view touched
        CHECK(out->rightCols(1) == input.rightCols(1));
        CHECK(out->row(0) == input.row(0));
        CHECK(out->allFinite());
        CHECK(out->block(2, 1 + d, 1, d).isZero(0.0f));  // the zero row stays exactly zero
      }
    });
  }
}

TEST_CASE("KeyNorm equals standard attention when every key has norm sqrt(d), and ignores key "
          "scales", "[keynorm]") {
  auto rng = xfmr_test::make_rng(1);
  const Index n = 37, d = 16, heads = 2;
  RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, n, heads * d, -2.0, 2.0);
  RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, n, heads * d);
  const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, n, heads * d);
  for (Index j = 0; j < n; ++j)
    for (Index h = 0; h < heads; ++h)
      k.row(j).segment(h * d, d) *= std::sqrt(double(d)) / head_norm(k, j, h, d);
  const RowMatrix<double> standard = attend(q, k, v, d, xfmr::AttentionScale::inv_sqrt_dim());

  xfmr::QkNormConfig c;
  c.kind = QkNormKind::Key;
  c.head_dim = d;
  const xfmr::QkNorm<double> norm(c);
  RowMatrix<double> kn = k, qn = q;
  norm.forward(qn, kn);
  CHECK(qn == q);  // identity on the queries for KeyNorm
  const RowMatrix<double> kna = attend(qn, kn, v, d, norm.attention_scale());
  CHECK((kna - standard).cwiseAbs().maxCoeff() < 1e-13);

  // Rescaling each key by its own positive constant changes nothing.
  RowMatrix<double> k2 = k;
  for (Index j = 0; j < n; ++j) k2.row(j) *= 0.1 + 3.0 * double(j % 7);
  RowMatrix<double> q2 = q;
  norm.forward(q2, k2);
  CHECK((attend(q, k2, v, d, norm.attention_scale()) - kna).cwiseAbs().maxCoeff() < 1e-13);
}

TEST_CASE("QueryNorm, cosine (fixed and per-position lambda) and QK-RMS match the naive "
          "definitions", "[keynorm]") {
  auto rng = xfmr_test::make_rng(2);
  const Index n = 29, d = 8, heads = 2, pos0 = 5;
  const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, n, heads * d, -2.0, 2.0);
  const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, n, heads * d, -2.0, 2.0);
  const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, n, heads * d);
  const RowMatrix<double> gq = xfmr_test::random_matrix<double>(rng, 1, d, 0.5, 1.5);
  const RowMatrix<double> gk = xfmr_test::random_matrix<double>(rng, 1, d, 0.5, 1.5);

  struct Case {
    QkNormKind kind;
    Index length;
  };
  for (const Case cs : {Case{QkNormKind::Query, 0}, Case{QkNormKind::Cosine, 0},
                        Case{QkNormKind::Cosine, 256}, Case{QkNormKind::QkRms, 0},
                        Case{QkNormKind::None, 0}}) {
    INFO("kind " << int(cs.kind) << ", length " << cs.length);
    xfmr::QkNormConfig c;
    c.kind = cs.kind;
    c.head_dim = d;
    c.cosine_length = cs.length;
    xfmr::QkNorm<double> norm(c);
    norm.query_gain() = gq;
    norm.key_gain() = gk;
    RowMatrix<double> qn = q, kn = k;
    norm.forward(qn, kn, pos0);
    const RowMatrix<double> got = attend(qn, kn, v, d, norm.attention_scale());
    const RowMatrix<double> expected = naive_causal(v, heads, d, [&](Index i, Index j, Index h) {
      const double dot = head_dot(q, i, k, j, h, d), nq = head_norm(q, i, h, d),
                   nk = head_norm(k, j, h, d);
      switch (cs.kind) {
        case QkNormKind::Query: return dot / nq;
        case QkNormKind::Cosine: {
          const double lambda = 4.0 * std::log(double(cs.length > 0 ? cs.length : pos0 + i + 1));
          const double cosine = dot / (nq * nk);
          CHECK(std::abs(lambda * cosine) <= lambda);
          return lambda * cosine;
        }
        case QkNormKind::QkRms: {
          const auto rq = q.row(i).segment(h * d, d) / std::sqrt(q.row(i).segment(h * d, d).squaredNorm() / d + c.eps);
          const auto rk = k.row(j).segment(h * d, d) / std::sqrt(k.row(j).segment(h * d, d).squaredNorm() / d + c.eps);
          return rq.cwiseProduct(gq.row(0)).dot(rk.cwiseProduct(gk.row(0))) / std::sqrt(double(d));
        }
        default: return dot / std::sqrt(double(d));
      }
    });
    CHECK((got - expected).cwiseAbs().maxCoeff() < 1e-12);
  }
}

TEST_CASE("Normalising then rotating equals rotating then normalising", "[keynorm]") {
  auto rng = xfmr_test::make_rng(3);
  const Index n = 21, d = 32, heads = 3;
  xfmr::RopeConfig rc;
  rc.head_dim = d;
  const xfmr::Rope<float> rope(rc);
  xfmr::QkNormConfig c;
  c.kind = QkNormKind::Cosine;
  c.head_dim = d;
  const xfmr::QkNorm<float> norm(c);
  const RowMatrix<float> x = xfmr_test::random_matrix<float>(rng, n, heads * d, -3.0, 3.0);
  RowMatrix<float> a = x, b = x, none(0, heads * d);
  norm.forward(none, a);  // keys only
  rope.apply(a, 100);
  rope.apply(b, 100);
  norm.forward(none, b);
  CHECK((a - b).cwiseAbs().maxCoeff() < 1e-6f);
}

TEST_CASE("QkNorm rejects bad input with clear messages", "[keynorm][errors]") {
  xfmr::QkNormConfig c;
  XFMR_REQUIRE_INVALID(xfmr::QkNorm<float>{c}, "xfmr::QkNorm: head_dim must be >= 1 (got 0)");
  c.head_dim = 4;
  c.eps = 0;
  XFMR_REQUIRE_INVALID(xfmr::QkNorm<float>{c}, "eps must be finite and > 0 (got 0)");
  c.eps = 1e-6;
  c.cosine_lambda = INFINITY;
  XFMR_REQUIRE_INVALID(xfmr::QkNorm<float>{c}, "cosine_lambda must be finite and >= 0");
  c.cosine_lambda = 0;
  c.cosine_length = -1;
  XFMR_REQUIRE_INVALID(xfmr::QkNorm<float>{c}, "cosine_length must be >= 0 (got -1)");
  c.cosine_length = 0;
  c.kind = QkNormKind::QkRms;
  xfmr::QkNorm<float> norm(c);
  RowMatrix<float> x(2, 6), y(2, 8), z(2, 8);
  XFMR_REQUIRE_INVALID(norm.forward(y, x),
                       "xfmr::QkNorm: expected the k width to be a multiple of head_dim=4 (got 6)");
  XFMR_REQUIRE_INVALID(norm.forward(y, z, -1), "expected pos0 >= 0 (got pos0=-1)");
  XFMR_REQUIRE_INVALID(norm.forward(y, y), "expected q and k not to overlap");
  norm.key_gain().resize(3);
  XFMR_REQUIRE_INVALID(norm.forward(y, z), "key_gain must have head_dim=4 entries (got 3)");
}

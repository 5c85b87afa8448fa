// SPDX-License-Identifier: MIT
// ReRoPE / leaky ReRoPE attention: prefill (two score sets + window select) and decode (one
// query against the unrotated cache) against the explicit definition in long double; query
// chunks at the end of the keys; wide window = plain RoPE attention via xfmr::Rope; leaky with
// huge k = ReRoPE; errors.
#include <cmath>
#include <limits>
#include <type_traits>

#include <catch2/catch.hpp>
#include <xfmr/attention/rerope.hpp>
#include <xfmr/position/rope.hpp>

#include "reference/rerope.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::Index;
using xfmr::ReRopeConfig;
using xfmr::RopeLayout;
using xfmr::RowMatrix;

namespace {

// Float: logits |q·k|/√d <~ 3 computed by a d-term dot product after rotation with angles in
// double; the softmax-weighted mean is well conditioned. Double: the angles (up to ~1e3 rad)
// lose ~1e-13 in cos/sin.
template <typename T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-11;
}

template <typename A>
double rel_error(const A& a, const xfmr_ref::LMatrix& b) {
  long double num = 0, den = 0;
  for (Index i = 0; i < b.rows(); ++i)
    for (Index j = 0; j < b.cols(); ++j) {
      num = std::max(num, std::abs(static_cast<long double>(a(i, j)) - b(i, j)));
      den = std::max(den, std::abs(b(i, j)));
    }
  return static_cast<double>(num / den);
}

ReRopeConfig make_config(Index d, Index w, double leaky, RopeLayout layout, Index rot = 0) {
  ReRopeConfig c;
  c.head_dim = d;
  c.rotary_dim = rot;
  c.window = w;
  c.leaky_factor = leaky;
  c.layout = layout;
  c.base = 100.0;  // low base: many pairs turn many times over the test lengths
  return c;
}

// Max relative error of every q head of `out` against the per-head reference (GQA mapping).
template <typename T>
double max_error(const RowMatrix<T>& q, const RowMatrix<T>& k, const RowMatrix<T>& v,
                 const RowMatrix<T>& out, const ReRopeConfig& c) {
  const Index d = c.head_dim, hq = q.cols() / d, hk = k.cols() / d, dv = v.cols() / hk;
  double err = 0;
  for (Index h = 0; h < hq; ++h) {
    const Index g = h / (hq / hk);
    const RowMatrix<T> qh = q.middleCols(h * d, d), kh = k.middleCols(g * d, d),
                       vh = v.middleCols(g * dv, dv);
    err = std::max(err, rel_error(out.middleCols(h * dv, dv),
                                  xfmr_ref::rerope_attention(qh, kh, vh, c)));
  }
  return err;
}

}  // namespace

TEMPLATE_TEST_CASE("ReRoPE prefill equals the explicit definition", "[rerope]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(31);
  const double leaky = GENERATE(0.0, 16.0, 2.5);
  const auto layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index w = GENERATE(1, 17, 64, 500);
  const Index n = GENERATE(1, 70, 150);
  CAPTURE(leaky, static_cast<int>(layout), w, n);
  const Index d = 8, hq = 4, hk = 2, dv = 5;
  // Strided operands: column blocks of wider matrices.
  RowMatrix<T> qw = xfmr_test::random_matrix<T>(rng, n, hq * d + 3);
  RowMatrix<T> kw = xfmr_test::random_matrix<T>(rng, n, hk * d + 1);
  RowMatrix<T> vw = xfmr_test::random_matrix<T>(rng, n, hk * dv + 2);
  RowMatrix<T> ow = RowMatrix<T>::Constant(n, hq * dv + 2, std::numeric_limits<T>::quiet_NaN());
  const auto c = make_config(d, w, leaky, layout, 6);  // partial rotary: 2 pass-through channels
  xfmr::ReRopeAttention<T> attn(c);
  attn.forward(qw.middleCols(3, hq * d), kw.middleCols(1, hk * d), vw.middleCols(2, hk * dv),
               ow.middleCols(1, hq * dv));
  const RowMatrix<T> q = qw.middleCols(3, hq * d), k = kw.middleCols(1, hk * d),
                     v = vw.middleCols(2, hk * dv), out = ow.middleCols(1, hq * dv);
  CHECK(max_error(q, k, v, out, c) < tolerance<T>());
  CHECK(std::isnan(ow(0, 0)));
  CHECK(std::isnan(ow(n - 1, hq * dv + 1)));
  // The test can fail: plain RoPE (no window) differs once some Δ >= w.
  if (n > w + 1) {
    auto plain = c;
    plain.window = n + 1;
    CHECK(max_error(q, k, v, out, plain) > 100 * tolerance<T>());
  }
}

TEMPLATE_TEST_CASE("ReRoPE decode equals the explicit definition and the prefill's last row",
                   "[rerope]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(32);
  const double leaky = GENERATE(0.0, 8.0);
  const auto layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index w = GENERATE(1, 10, 40);
  CAPTURE(leaky, static_cast<int>(layout), w);
  const Index d = 10, hq = 3, hk = 1, dv = 4, n = 90;
  auto q = xfmr_test::random_matrix<T>(rng, n, hq * d);
  auto k = xfmr_test::random_matrix<T>(rng, n, hk * d);
  auto v = xfmr_test::random_matrix<T>(rng, n, hk * dv);
  const auto c = make_config(d, w, leaky, layout);
  xfmr::ReRopeAttention<T> attn(c);
  RowMatrix<T> full(n, hq * dv), step(n, hq * dv);
  attn.forward(q, k, v, full);
  for (Index t = 0; t < n; ++t)  // the cache grows by one unrotated key per step
    attn.forward(q.row(t), k.topRows(t + 1), v.topRows(t + 1), step.row(t));
  CHECK(max_error(q, k, v, step, c) < tolerance<T>());
  const double scale = full.cwiseAbs().maxCoeff();
  CHECK((full - step).cwiseAbs().maxCoeff() <= 4 * tolerance<T>() * scale);
}

TEMPLATE_TEST_CASE("ReRoPE prefill of a query chunk at the end of the keys", "[rerope]", float,
                   double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(33);
  const double leaky = GENERATE(0.0, 4.0);
  const Index d = 8, n = 140, nq = GENERATE(1, 9, 65);
  auto q = xfmr_test::random_matrix<T>(rng, n, d);
  auto k = xfmr_test::random_matrix<T>(rng, n, d);
  auto v = xfmr_test::random_matrix<T>(rng, n, d);
  xfmr::ReRopeAttention<T> attn(make_config(d, 30, leaky, RopeLayout::HalfSplit));
  RowMatrix<T> full(n, d), chunk(nq, d);
  attn.forward(q, k, v, full);
  attn.forward(q.bottomRows(nq), k, v, chunk);
  CHECK((chunk - full.bottomRows(nq)).cwiseAbs().maxCoeff() <=
        4 * tolerance<T>() * full.cwiseAbs().maxCoeff());
}

TEST_CASE("ReRoPE with a window wider than the sequence is plain RoPE attention", "[rerope]") {
  // Independent of the reference: rotate with xfmr::Rope (integer positions), then softmax.
  auto rng = xfmr_test::make_rng(34);
  const auto layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index d = 16, n = 100;
  auto q = xfmr_test::random_matrix<double>(rng, n, d);
  auto k = xfmr_test::random_matrix<double>(rng, n, d);
  auto v = xfmr_test::random_matrix<double>(rng, n, 3);
  auto c = make_config(d, n, 0.0, layout);
  xfmr::ReRopeAttention<double> attn(c);
  RowMatrix<double> out(n, 3);
  attn.forward(q, k, v, out);
  xfmr::RopeConfig rc;
  rc.head_dim = d;
  rc.base = c.base;
  rc.layout = layout;
  xfmr::Rope<double> rope(rc);
  RowMatrix<double> qr = q, kr = k;
  rope.apply(qr);
  rope.apply(kr);
  RowMatrix<double> s = qr * kr.transpose() / 4.0;  // 1/√16
  for (Index i = 0; i < n; ++i) {
    Eigen::RowVectorXd e = Eigen::RowVectorXd::Zero(n);
    const double mx = s.row(i).head(i + 1).maxCoeff();
    for (Index j = 0; j <= i; ++j) e[j] = std::exp(s(i, j) - mx);
    const Eigen::RowVectorXd expect = e * v / e.sum();
    CHECK((out.row(i) - expect).cwiseAbs().maxCoeff() < 1e-12);
  }
}

TEST_CASE("Leaky ReRoPE with a huge factor approaches ReRoPE; rel() matches SPEC 1.5.6",
          "[rerope]") {
  auto rng = xfmr_test::make_rng(35);
  const Index d = 8, n = 120, w = 20;
  auto q = xfmr_test::random_matrix<double>(rng, n, d);
  auto k = xfmr_test::random_matrix<double>(rng, n, d);
  auto v = xfmr_test::random_matrix<double>(rng, n, d);
  xfmr::ReRopeAttention<double> re(make_config(d, w, 0.0, RopeLayout::Interleaved));
  xfmr::ReRopeAttention<double> leaky(make_config(d, w, 1e9, RopeLayout::Interleaved));
  RowMatrix<double> a(n, d), b(n, d);
  re.forward(q, k, v, a);
  leaky.forward(q, k, v, b);
  CHECK((a - b).cwiseAbs().maxCoeff() < 1e-6);
  CHECK(re.relative_position(5) == 5);
  CHECK(re.relative_position(19) == 19);
  CHECK(re.relative_position(20) == 20);
  CHECK(re.relative_position(1000) == 20);
  xfmr::ReRopeAttention<double> l16(make_config(d, w, 16.0, RopeLayout::Interleaved));
  CHECK(l16.relative_position(19) == 19);
  CHECK(l16.relative_position(52) == Approx(22.0));  // 20 + 32/16
}

TEST_CASE("ReRopeAttention rejects bad configurations and shapes", "[rerope][errors]") {
  using Attn = xfmr::ReRopeAttention<float>;
  XFMR_REQUIRE_INVALID(Attn(make_config(0, 4, 0, RopeLayout::Interleaved)),
                       "xfmr::ReRopeAttention: head_dim must be > 0 (got head_dim=0)");
  XFMR_REQUIRE_INVALID(Attn(make_config(8, 0, 0, RopeLayout::Interleaved)),
                       "window must be >= 1 (got window=0)");
  XFMR_REQUIRE_INVALID(Attn(make_config(8, 4, 1.0, RopeLayout::Interleaved)),
                       "leaky_factor must be 0 (ReRoPE) or finite and > 1 (got leaky_factor=1)");
  XFMR_REQUIRE_INVALID(Attn(make_config(8, 4, 0, RopeLayout::Interleaved, 5)),
                       "rotary_dim must be even and <= head_dim (got rotary_dim=5");
  auto bad_scale = make_config(8, 4, 0, RopeLayout::Interleaved);
  bad_scale.scale = std::numeric_limits<double>::infinity();
  XFMR_REQUIRE_INVALID(Attn(bad_scale), "scale must be finite and >= 0");
  Attn attn(make_config(8, 4, 0, RopeLayout::Interleaved));
  RowMatrix<float> q(10, 24), k(10, 16), v(10, 16), out(10, 24), k9(9, 16);
  q.setOnes();
  k.setOnes();
  v.setOnes();
  RowMatrix<float> q12(10, 12), out_bad(10, 16);
  XFMR_REQUIRE_INVALID(attn.forward(q12, k, v, out),
                       "xfmr::ReRopeAttention: expected q.cols() to be a positive multiple of "
                       "head_dim=8 (got q.cols()=12)");
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, out),
                       "expected the key/value heads to divide the query heads (got 3 query "
                       "heads, 2 key/value heads)");
  RowMatrix<float> q16(10, 16), o16(10, 16);
  XFMR_REQUIRE_INVALID(attn.forward(q16, k, k9, o16), "expected v.rows() = k.rows()");
  XFMR_REQUIRE_INVALID(attn.forward(q16, k9, k9, o16),
                       "expected q.rows() <= k.rows(): the queries are the last tokens of the "
                       "keys (got q.rows()=10, k.rows()=9)");
  XFMR_REQUIRE_INVALID(attn.forward(q16, k, v, out_bad.leftCols(8)),
                       "expected out to be 10x16 (got 10x8)");
  XFMR_REQUIRE_INVALID(attn.forward(q16, k, v, v), "expected out not to overlap v");
  RowMatrix<float> r16(1, 16), o1(1, 16);
  XFMR_REQUIRE_INVALID(attn.forward(r16, k.topRows(0), v.topRows(0), o1),
                       "expected q.rows() <= k.rows()");
  // The mask: causal is implied (accepted or not), every other part throws.
  xfmr::AttentionMask<float> m;
  m.set_causal();
  q16.setOnes();
  attn.forward(q16, k, v, o16, m);
  REQUIRE(o16.allFinite());
  xfmr::AttentionMask<float> pad;
  pad.set_key_length(5);
  XFMR_REQUIRE_INVALID(attn.forward(q16, k, v, o16, pad),
                       "xfmr::ReRopeAttention: key-length masks are not supported (ReRoPE "
                       "attention is causal by construction");
  xfmr::AttentionMask<float> bias;
  bias.set_bias(RowMatrix<float>::Zero(10, 10));
  XFMR_REQUIRE_INVALID(attn.forward(q16, k, v, o16, bias), "bias masks are not supported");
  XFMR_REQUIRE_INVALID(attn.forward(q16, k, v, o16, {}, -1), "expected pos0 >= 0 (got pos0=-1)");
}

// SPDX-License-Identifier: MIT
// Performer attention: non-causal, causal and recurrent paths against the explicit kernel sums
// with the same features; stabiliser, batch independence, key padding, the overlap rule,
// reproducibility, errors.
#include <cmath>
#include <limits>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <xfmr/attention/performer.hpp>
#include <xfmr/attention/recurrent_state.hpp>
#include <xfmr/tensor.hpp>

#include "reference/performer.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::Index;
using xfmr::PerformerConfig;
using xfmr::PerformerFeatures;
using xfmr::RowMatrix;

namespace {

PerformerConfig make_config(Index d, Index m, PerformerFeatures kind, std::uint64_t seed = 7) {
  PerformerConfig c;
  c.head_dim = d;
  c.num_features = m;
  c.features = kind;
  c.seed = seed;
  return c;
}

// Causal or not is a part of the call's AttentionMask (the attention contract).
template <typename T>
xfmr::AttentionMask<T> causal_mask(bool causal) {
  return xfmr::AttentionMask<T>{}.set_causal(causal);
}

// Float: features are exp of values of size ~|u| <= a few, summed over n·m terms; the relative
// error of the normalised output is a few float ulps times log-ish growth. Double: ~1e-12.
template <typename T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-4 : 1e-10;
}

// The explicit-kernel comparison below: measured max relative errors (n <= 201, 8 seeds) are
// 7.4e-7 (float) and 1.6e-15 (double), causal or not; the bounds leave ~7-12x.
template <typename T>
double kernel_tolerance() {
  return std::is_same_v<T, float> ? 5e-6 : 2e-14;
}

template <typename T>
RowMatrix<T> head_of(const RowMatrix<T>& x, Index h, Index w) {
  return x.middleCols(h * w, w);
}

// Explicit reference for every head: features from the same W, then O(n²) kernel sums.
template <typename T>
double max_head_error(const xfmr::Performer<T>& p, const RowMatrix<T>& q, const RowMatrix<T>& k,
                      const RowMatrix<T>& v, const RowMatrix<T>& out, bool causal) {
  const Index d = p.config().head_dim, heads = q.cols() / d, dv = v.cols() / heads;
  double err = 0;
  for (Index h = 0; h < heads; ++h) {
    const auto phiq =
        xfmr_ref::performer_features(p.projection(), head_of(q, h, d), p.config().features);
    const auto phik =
        xfmr_ref::performer_features(p.projection(), head_of(k, h, d), p.config().features);
    const auto ref = xfmr_ref::kernel_attention(phiq, phik, head_of(v, h, dv), causal);
    err = std::max(err, xfmr_ref::rel_error(head_of(out, h, dv), ref));
  }
  return err;
}

}  // namespace

TEMPLATE_TEST_CASE("Performer equals the explicit kernel sums with the same features",
                   "[performer]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(1);
  const bool causal = GENERATE(false, true);
  const auto kind = GENERATE(PerformerFeatures::Positive, PerformerFeatures::Hyperbolic,
                             PerformerFeatures::Trigonometric);
  const Index n = GENERATE(1, 7, 64, 65, 201);  // around the causal chunk (64) and block (128)
  const Index d = 12, m = 29, heads = 3, dv = 5;
  CAPTURE(causal, static_cast<int>(kind), n);
  // Trigonometric features can cancel in the normaliser: keep inputs small there.
  const double a = kind == PerformerFeatures::Trigonometric ? 0.3 : 1.0;
  // Strided views: every operand is a column block of a wider matrix.
  RowMatrix<T> qw = xfmr_test::random_matrix<T>(rng, n, heads * d + 3, -a, a);
  RowMatrix<T> kw = xfmr_test::random_matrix<T>(rng, n, heads * d + 2, -a, a);
  RowMatrix<T> vw = xfmr_test::random_matrix<T>(rng, n, heads * dv + 1);
  RowMatrix<T> ow = RowMatrix<T>::Constant(n, heads * dv + 4, std::numeric_limits<T>::quiet_NaN());
  xfmr::Performer<T> p(make_config(d, m, kind));
  p.forward(qw.middleCols(1, heads * d), kw.middleCols(2, heads * d), vw.middleCols(1, heads * dv),
            ow.middleCols(2, heads * dv), causal_mask<T>(causal));
  const RowMatrix<T> q = qw.middleCols(1, heads * d), k = kw.middleCols(2, heads * d),
                     v = vw.middleCols(1, heads * dv), out = ow.middleCols(2, heads * dv);
  CHECK(max_head_error(p, q, k, v, out, causal) < kernel_tolerance<T>());
  // Columns outside the output block are untouched.
  CHECK(std::isnan(ow(0, 0)));
  CHECK(std::isnan(ow(0, 1)));
  CHECK(std::isnan(ow(n - 1, heads * dv + 2)));
  // A test that can fail: the non-causal and causal answers differ for n > 1.
  if (n > 1) {
    const auto phiq = xfmr_ref::performer_features(p.projection(), head_of(q, 0, d), kind);
    const auto phik = xfmr_ref::performer_features(p.projection(), head_of(k, 0, d), kind);
    const auto other = xfmr_ref::kernel_attention(phiq, phik, head_of(v, 0, dv), !causal);
    CHECK(xfmr_ref::rel_error(head_of(out, 0, dv), other) > 100 * tolerance<T>());
  }
}

TEMPLATE_TEST_CASE("Performer: different numbers of queries and keys (non-causal)", "[performer]",
                   float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(2);
  const Index d = 8, m = 40;
  auto q = xfmr_test::random_matrix<T>(rng, 33, d);
  auto k = xfmr_test::random_matrix<T>(rng, 300, d);
  auto v = xfmr_test::random_matrix<T>(rng, 300, 3);
  RowMatrix<T> out(33, 3);
  xfmr::Performer<T> p(make_config(d, m, PerformerFeatures::Positive));
  p.forward(q, k, v, out);
  CHECK(max_head_error(p, q, k, v, out, false) < tolerance<T>());
}

TEMPLATE_TEST_CASE("RecurrentAttentionState (recurrent) equals the causal Performer", "[performer]", float,
                   double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(3);
  const auto kind = GENERATE(PerformerFeatures::Positive, PerformerFeatures::Hyperbolic,
                             PerformerFeatures::Trigonometric);
  const Index n = 150, d = 16, m = 32, heads = 2, dv = 7;
  const double a = kind == PerformerFeatures::Trigonometric ? 0.3 : 1.5;
  auto q = xfmr_test::random_matrix<T>(rng, n, heads * d, -a, a);
  auto k = xfmr_test::random_matrix<T>(rng, n, heads * d, -a, a);
  // Growing key norms make the running key maximum increase many times (rescaling exercised).
  for (Index t = 0; t < n; ++t) k.row(t) *= static_cast<T>(0.5 + 2.0 * t / n);
  auto v = xfmr_test::random_matrix<T>(rng, n, heads * dv);
  xfmr::Performer<T> p(make_config(d, m, kind));
  RowMatrix<T> batch_out(n, heads * dv), step_out(n, heads * dv);
  p.forward(q, k, v, batch_out, causal_mask<T>(true));
  xfmr::RecurrentAttentionState<T> state(p, heads, dv);
  for (Index t = 0; t < n; ++t)
    state.step(q.row(t), k.row(t), v.row(t), step_out.row(t));
  CHECK(state.tokens_seen() == n);
  const double scale = batch_out.cwiseAbs().maxCoeff();
  CHECK((batch_out - step_out).cwiseAbs().maxCoeff() <= tolerance<T>() * scale);
  // reset() forgets: the first step after reset equals the first row again.
  state.reset();
  RowMatrix<T> first(1, heads * dv);
  state.step(q.row(0), k.row(0), v.row(0), first);
  CHECK((first - batch_out.row(0)).cwiseAbs().maxCoeff() <= tolerance<T>() * scale);
}

TEMPLATE_TEST_CASE("Performer: the stabiliser does not change the result", "[performer]", float,
                   double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(4);
  const bool causal = GENERATE(false, true);
  const auto kind = GENERATE(PerformerFeatures::Positive, PerformerFeatures::Hyperbolic,
                             PerformerFeatures::Trigonometric);
  const Index n = 140, d = 16, m = 48;
  const double a = kind == PerformerFeatures::Trigonometric ? 0.3 : 1.5;
  auto q = xfmr_test::random_matrix<T>(rng, n, d, -a, a);
  auto k = xfmr_test::random_matrix<T>(rng, n, d, -a, a);
  auto v = xfmr_test::random_matrix<T>(rng, n, 4);
  auto c = make_config(d, m, kind);
  xfmr::Performer<T> stable(c);
  c.stabilize = false;
  xfmr::Performer<T> plain(c);
  RowMatrix<T> o1(n, 4), o2(n, 4);
  stable.forward(q, k, v, o1, causal_mask<T>(causal));
  plain.forward(q, k, v, o2, causal_mask<T>(causal));
  CHECK((o1 - o2).cwiseAbs().maxCoeff() <= tolerance<T>() * o2.cwiseAbs().maxCoeff());
}

TEST_CASE("Performer: the stabiliser prevents overflow for large inputs", "[performer]") {
  auto rng = xfmr_test::make_rng(5);
  const Index n = 100, d = 16, m = 64;
  // |x'|²/2 ≈ 16·(15²/3)/8 = 150 >> 88: unstabilised float features e^(u − h) underflow, so
  // the plain path is unusable; the stabilised one must still equal the exact kernel sums of the
  // same features, computed in long double (measured <= 5e-6 over 12 seeds).
  auto q = xfmr_test::random_matrix<float>(rng, n, d, -15, 15);
  auto k = xfmr_test::random_matrix<float>(rng, n, d, -15, 15);
  auto v = xfmr_test::random_matrix<float>(rng, n, 4);
  auto c = make_config(d, m, PerformerFeatures::Positive);
  xfmr::Performer<float> stable(c);
  RowMatrix<float> out(n, 4);
  stable.forward(q, k, v, out);
  CHECK(max_head_error(stable, q, k, v, out, false) < 5e-5);
  c.stabilize = false;
  xfmr::Performer<float> plain(c);
  plain.forward(q, k, v, out);
  // Without it: zero rows, NaN or inf (depending on the draw), never the answer.
  CHECK_FALSE((out.allFinite() && max_head_error(plain, q, k, v, out, false) < 5e-5));
}

// Formerly a known defect: the causal path shared one key shift per 64-token chunk, so when a
// later key of the chunk was e^88 larger, the earlier keys' features underflowed and the queries
// that saw only those keys got a zero row (and normalise() multiplied by an infinite 1/den for a
// subnormal den). Each query now works at its own running key maximum, as RecurrentAttentionState does.
TEST_CASE("Performer: causal, large inputs, equals the exact kernel sums", "[performer]") {
  auto rng = xfmr_test::make_rng(5);
  const Index n = 100, d = 16, m = 64;
  auto q = xfmr_test::random_matrix<float>(rng, n, d, -15, 15);
  auto k = xfmr_test::random_matrix<float>(rng, n, d, -15, 15);
  auto v = xfmr_test::random_matrix<float>(rng, n, 4);
  xfmr::Performer<float> stable(make_config(d, m, PerformerFeatures::Positive));
  RowMatrix<float> out(n, 4);
  stable.forward(q, k, v, out, causal_mask<float>(true));
  CHECK(out.allFinite());
  CHECK(max_head_error(stable, q, k, v, out, true) < 5e-5);
}

TEST_CASE("Performer: one sequence's output does not depend on another's", "[performer]") {
  auto rng = xfmr_test::make_rng(6);
  const bool causal = GENERATE(false, true);
  const Index n = 70, d = 8, m = 24, heads = 2, batch = 3;
  auto q = xfmr_test::random_matrix<float>(rng, batch * n, heads * d);
  auto k = xfmr_test::random_matrix<float>(rng, batch * n, heads * d);
  auto v = xfmr_test::random_matrix<float>(rng, batch * n, heads * d);
  xfmr::Performer<float> p(make_config(d, m, PerformerFeatures::Positive));
  RowMatrix<float> all(batch * n, heads * d), alone(n, heads * d);
  using C4 = xfmr::Performer<float>::ConstTensor4;
  using T4 = xfmr::Performer<float>::Tensor4;
  const auto mask = causal_mask<float>(causal);
  auto forward4 = [&](const RowMatrix<float>& kk, RowMatrix<float>& o) {
    p.forward(C4(q.data(), batch, n, heads, d), C4(kk.data(), batch, n, heads, d),
              C4(v.data(), batch, n, heads, d), T4(o.data(), batch, n, heads, d), mask);
  };
  forward4(k, all);
  for (Index b = 0; b < batch; ++b) {
    p.forward(q.middleRows(b * n, n), k.middleRows(b * n, n), v.middleRows(b * n, n), alone, mask);
    CHECK(all.middleRows(b * n, n) == alone);  // bitwise: nothing is shared across sequences
  }
  // Huge keys in sequence 1 would dominate a key max shared across the batch and underflow
  // sequence 0's features; per-sequence maxima leave sequence 0 bit-identical.
  k.middleRows(n, n) *= 40.0f;
  RowMatrix<float> again(batch * n, heads * d);
  forward4(k, again);
  CHECK(again.topRows(n) == all.topRows(n));
  CHECK(again.bottomRows(n) == all.bottomRows(n));
  CHECK(again.middleRows(n, n) != all.middleRows(n, n));
}

TEMPLATE_TEST_CASE("Performer: padded keys contribute nothing; out may not be q",
                   "[performer]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(7);
  const bool causal = GENERATE(false, true);
  const Index n = 150, d = 8, heads = 2;
  auto q = xfmr_test::random_matrix<T>(rng, n, heads * d);
  auto k = xfmr_test::random_matrix<T>(rng, n, heads * d);
  auto v = xfmr_test::random_matrix<T>(rng, n, heads * d);
  xfmr::Performer<T> p(make_config(d, 16, PerformerFeatures::Positive));
  RowMatrix<T> out(n, heads * d), out2(n, heads * d), kept(n, heads * d);
  // key_valid (every third key padded) and key_length: padded rows may hold anything.
  auto mask = causal_mask<T>(causal);
  Eigen::Matrix<bool, Eigen::Dynamic, 1> valid(n);
  for (Index j = 0; j < n; ++j) valid[j] = j % 3 != 1 && j < n - 20;
  mask.set_key_valid(valid);
  p.forward(q, k, v, out, mask);
  CHECK(out.allFinite());
  RowMatrix<T> kg = k, vg = v;
  for (Index j = 0; j < n; ++j)
    if (!valid[j]) {
      kg.row(j).setConstant(T(60));  // would dominate the stabiliser's maximum
      vg.row(j).setConstant(T(1e6));
    }
  p.forward(q, kg, vg, out2, mask);
  CHECK((out - out2).cwiseAbs().maxCoeff() <= tolerance<T>() * out.cwiseAbs().maxCoeff());
  // Against the explicit kernel sums over the valid keys only.
  const auto phiq = xfmr_ref::performer_features(p.projection(), head_of(q, 1, d), p.config().features);
  auto phik = xfmr_ref::performer_features(p.projection(), head_of(k, 1, d), p.config().features);
  for (Index j = 0; j < n; ++j)
    if (!valid[j]) phik.row(j).setZero();
  const auto ref = xfmr_ref::kernel_attention(phiq, phik, head_of(v, 1, d), causal);
  for (Index i = 0; i < n; ++i) {
    if (ref.row(i).cwiseAbs().maxCoeff() == 0) continue;  // no valid key: 0/0 in the reference
    CHECK((head_of(out, 1, d).row(i).template cast<long double>() - ref.row(i)).cwiseAbs().maxCoeff() <=
          100 * tolerance<T>() * (1 + ref.cwiseAbs().maxCoeff()));
  }
  if (!causal) {  // key_length: the same as dropping the tail
    xfmr::AttentionMask<T> len;
    len.set_key_length(n - 20);
    p.forward(q, k, v, out, len);
    p.forward(q, k.topRows(n - 20), v.topRows(n - 20), out2);
    CHECK((out - out2).cwiseAbs().maxCoeff() <= tolerance<T>() * out.cwiseAbs().maxCoeff());
  }
  // The overlap rule: never in place.
  XFMR_REQUIRE_INVALID(p.forward(q, k, v, q), "xfmr::Performer: expected out not to overlap q");
}

TEST_CASE("Performer: same seed, same output; redraw changes it reproducibly", "[performer]") {
  auto rng = xfmr_test::make_rng(8);
  const Index n = 50, d = 16;
  auto q = xfmr_test::random_matrix<float>(rng, n, d);
  auto k = xfmr_test::random_matrix<float>(rng, n, d);
  auto v = xfmr_test::random_matrix<float>(rng, n, d);
  const auto kind = GENERATE(xfmr::ProjectionKind::Orthogonal, xfmr::ProjectionKind::Iid);
  auto c = make_config(d, 40, PerformerFeatures::Positive, 1234);
  c.projection = kind;
  xfmr::Performer<float> a(c), b(c);
  RowMatrix<float> oa(n, d), ob(n, d), oc(n, d);
  a.forward(q, k, v, oa);
  b.forward(q, k, v, ob);
  CHECK(a.projection() == b.projection());
  CHECK(oa == ob);
  a.redraw();
  a.forward(q, k, v, oc);
  CHECK(a.projection() != b.projection());
  CHECK(oc != oa);
  b.redraw();
  CHECK(a.projection() == b.projection());  // the redraw sequence is reproducible too
  c.seed = 1235;
  xfmr::Performer<float> other(c);
  CHECK(other.projection() != xfmr::Performer<float>(make_config(d, 40, PerformerFeatures::Positive, 1234))
                                  .projection());
}

TEST_CASE("Performer approaches exact softmax attention as m grows", "[performer]") {
  auto rng = xfmr_test::make_rng(9);
  const Index n = 64, d = 16;
  auto q = xfmr_test::random_matrix<double>(rng, n, d, -0.7, 0.7);
  auto k = xfmr_test::random_matrix<double>(rng, n, d, -0.7, 0.7);
  auto v = xfmr_test::random_matrix<double>(rng, n, d);
  const auto exact = xfmr_ref::softmax_attention(q, k, v, false);
  auto error = [&](Index m) {
    double sum = 0;
    for (std::uint64_t s = 0; s < 8; ++s) {  // average over draws: one draw is noisy
      xfmr::Performer<double> p(make_config(d, m, PerformerFeatures::Positive, s + 100));
      RowMatrix<double> out(n, d);
      p.forward(q, k, v, out);
      sum += xfmr_ref::rel_error(out, exact);
    }
    return sum / 8;
  };
  const double e16 = error(16), e1024 = error(1024);
  CAPTURE(e16, e1024);
  CHECK(e1024 < 0.3 * e16);  // 1/√m predicts a factor 8
  CHECK(e1024 < 0.1);        // measured ≈ 0.07 (max-abs error relative to max |exact|)
}

TEST_CASE("Performer rejects bad configurations and shapes", "[performer][errors]") {
  XFMR_REQUIRE_INVALID(xfmr::Performer<float>(make_config(8, 0, PerformerFeatures::Positive)),
                       "xfmr::Performer: num_features must be >= 1 (got 0)");
  XFMR_REQUIRE_INVALID(xfmr::Performer<float>(make_config(0, 8, PerformerFeatures::Positive)),
                       "head_dim must be >= 1 (got 0)");
  xfmr::Performer<float> p(make_config(8, 16, PerformerFeatures::Positive));
  RowMatrix<float> q(10, 16), k(10, 16), v(10, 16), out(10, 16);
  q.setOnes();
  k.setOnes();
  v.setOnes();
  RowMatrix<float> q12(10, 12), v15(10, 15), k9(9, 16), out_bad(10, 8);
  XFMR_REQUIRE_INVALID(p.forward(q12, q12, v, out),
                       "xfmr::Performer: expected q.cols() to be a positive multiple of "
                       "head_dim=8 (got q.cols()=12)");
  XFMR_REQUIRE_INVALID(p.forward(q, RowMatrix<float>::Ones(10, 24), v, out),
                       "expected the key/value heads to divide the query heads");
  XFMR_REQUIRE_INVALID(p.forward(q, k, v15, out),
                       "expected v.cols() to be a positive multiple of the key/value heads=2 "
                       "(got v.cols()=15)");
  XFMR_REQUIRE_INVALID(p.forward(q, k9, v, out), "expected v.rows() = k.rows()");
  XFMR_REQUIRE_INVALID(p.forward(q, k, v, out_bad), "expected out to be 10x16 (got 10x8)");
  XFMR_REQUIRE_INVALID(p.forward(q, k, v, k), "expected out not to overlap k");
  XFMR_REQUIRE_INVALID(p.forward(q, k, v, v), "expected out not to overlap v");
  xfmr::AttentionMask<float> bias;
  bias.set_bias(RowMatrix<float>::Zero(10, 10));
  XFMR_REQUIRE_INVALID(p.forward(q, k, v, out, bias),
                       "xfmr::Performer: bias masks are not supported (random-feature attention");
  xfmr::AttentionMask<float> seg;
  seg.set_segment_ids(Eigen::VectorXi::Zero(10));
  XFMR_REQUIRE_INVALID(p.forward(q, k, v, out, seg), "segment (UniLM) masks are not supported");
  RowMatrix<float> x(10, 9), f(10, 16);
  XFMR_REQUIRE_INVALID(p.features(x, f), "x.cols() must equal head_dim (got x.cols()=9");
  RowMatrix<float> k20(20, 16), v20(20, 16);
  XFMR_REQUIRE_INVALID(p.forward(q, k20, v20, out, causal_mask<float>(true)),
                       "expected as many queries as keys for causal attention (got q.rows()=10, "
                       "k.rows()=20)");
  XFMR_REQUIRE_INVALID(xfmr::RecurrentAttentionState<float>(p, 0, 8), "heads must be >= 1 (got 0)");
  xfmr::RecurrentAttentionState<float> state(p, 2, 8);
  RowMatrix<float> r16(1, 16), r8(1, 8);
  XFMR_REQUIRE_INVALID(state.step(r8, r16, r16, r16), "expected q to be 1x16 (got 1x8)");
  XFMR_REQUIRE_INVALID(state.step(r16, r16, r16, r8), "expected out to be 1x16 (got 1x8)");
}

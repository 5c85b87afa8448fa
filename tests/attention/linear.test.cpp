// SPDX-License-Identifier: MIT
// LinearAttention / RecurrentAttentionState against the explicit O(n²) long-double reference, the
// SPEC §5.5 properties and argument errors (the feature-map and scan kernels are tested in
// tests/simd/feature_map.test.cpp and tests/simd/linear_scan.test.cpp).
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/linear.hpp>
#include <xfmr/attention/recurrent_state.hpp>
#include <xfmr/tensor.hpp>

#include "reference/linear_attention.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::FeatureMap;
using xfmr::Index;
using xfmr::RowMatrix;

namespace {

using BoolVec = Eigen::Matrix<bool, Eigen::Dynamic, 1>;

constexpr FeatureMap kMaps[] = {FeatureMap::EluPlusOne,    FeatureMap::Relu,
                                FeatureMap::Exp,           FeatureMap::OnePlusCosine,
                                FeatureMap::EfficientAttention, FeatureMap::Taylor2,
                                FeatureMap::Custom};

xfmr_ref::Map ref_map(FeatureMap f) {
  switch (f) {
    case FeatureMap::EluPlusOne: return xfmr_ref::Map::EluPlusOne;
    case FeatureMap::Relu: return xfmr_ref::Map::Relu;
    case FeatureMap::Exp: return xfmr_ref::Map::Exp;
    case FeatureMap::OnePlusCosine: return xfmr_ref::Map::OnePlusCosine;
    case FeatureMap::EfficientAttention: return xfmr_ref::Map::Efficient;
    case FeatureMap::Taylor2: return xfmr_ref::Map::Taylor2;
    default: return xfmr_ref::Map::Custom;
  }
}

// A custom map of dimension d + 2: [x², 1, e^{x_0}] style, non-negative.
template <typename T>
void custom_map(const T* x, T* y, Index d) {
  for (Index i = 0; i < d; ++i) y[i] = x[i] * x[i];
  y[d] = 1;
  y[d + 1] = std::exp(x[0]);
}
inline xfmr_ref::LVec custom_ref(const xfmr_ref::LVec& x) {
  xfmr_ref::LVec y;
  for (long double v : x) y.push_back(v * v);
  y.push_back(1);
  y.push_back(std::exp(x[0]));
  return y;
}

// Causal or not is a part of the call's AttentionMask (the attention contract).
template <typename T>
xfmr::AttentionMask<T> causal_mask(bool causal) {
  return xfmr::AttentionMask<T>{}.set_causal(causal);
}

template <typename T>
xfmr::LinearAttentionConfig<T> make_config(FeatureMap f, Index d, Index dv, Index chunk = 64) {
  xfmr::LinearAttentionConfig<T> c;
  c.head_dim = d;
  c.value_dim = dv;
  c.feature_map = f;
  c.chunk_size = chunk;
  if (f == FeatureMap::Custom) {
    c.custom_feature_dim = d + 2;
    c.custom = [d](const T* x, T* y) { custom_map(x, y, d); };
  }
  return c;
}

xfmr_ref::LinearRef make_ref(FeatureMap f, Index d, bool causal, double eps = 1e-6) {
  xfmr_ref::LinearRef r;
  r.map = ref_map(f);
  r.d = d;
  r.causal = causal;
  r.eps = eps;
  r.taylor_scale = std::pow(static_cast<long double>(d), -0.25L);
  r.custom = custom_ref;
  return r;
}

/// max |y − ref| / max(1, max |ref|): outputs are convex-ish combinations of v (|v| <= 1).
template <typename T>
double rel_error(const RowMatrix<T>& y, const xfmr_ref::Mat& ref) {
  long double worst = 0, scale = 1;
  for (Index i = 0; i < ref.size(); ++i) scale = std::max(scale, std::abs(ref.data()[i]));
  for (Index r = 0; r < y.rows(); ++r)
    for (Index c = 0; c < y.cols(); ++c) worst = std::max(worst, std::abs(y(r, c) - ref(r, c)));
  return static_cast<double>(worst / scale);
}

// Float: features and sums of up to ~100 terms in float (exp ≤ 2 ulp); 1e-5 relative covers the
// accumulated rounding of m·n terms. Double: 1e-12 per the issue.
template <typename T>
double tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

}  // namespace

TEMPLATE_TEST_CASE("Non-causal linear attention equals the explicit quadratic computation for "
                   "every feature map",
                   "[linear]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(11);
  // (heads, d, d_v, n_q, n_k): odd sizes, n_q != n_k, more rows than one 256-row block.
  const Index shapes[][5] = {{1, 1, 1, 1, 1}, {2, 5, 3, 7, 9}, {3, 8, 8, 13, 4}, {1, 16, 9, 300, 261}};
  for (const auto& s : shapes)
    for (const FeatureMap f : kMaps) {
      if (f == FeatureMap::Taylor2 && s[1] > 8 && s[3] > 100) continue;  // reference is O(n²·d²)
      CAPTURE(s[0], s[1], s[2], s[3], s[4], xfmr::feature_map_name(f));
      const Index h = s[0], d = s[1], dv = s[2], nq = s[3], nk = s[4];
      // Strided views: blocks of wider matrices.
      RowMatrix<T> qw = xfmr_test::random_matrix<T>(rng, nq, h * d + 3);
      RowMatrix<T> kw = xfmr_test::random_matrix<T>(rng, nk, h * d + 1);
      RowMatrix<T> vw = xfmr_test::random_matrix<T>(rng, nk, h * dv + 2);
      RowMatrix<T> ow = RowMatrix<T>::Constant(nq, h * dv + 4, std::numeric_limits<T>::quiet_NaN());
      RowMatrix<T> q = qw.middleCols(1, h * d), k = kw.leftCols(h * d), v = vw.rightCols(h * dv);
      xfmr::LinearAttention<T> attn(make_config<T>(f, d, dv));
      attn.forward(qw.middleCols(1, h * d), kw.leftCols(h * d), vw.rightCols(h * dv),
                   ow.middleCols(2, h * dv));
      const RowMatrix<T> out = ow.middleCols(2, h * dv);
      REQUIRE(rel_error(out, xfmr_ref::linear_attention(make_ref(f, d, false), q, k, v)) <
              tol<T>());
      REQUIRE(std::isnan(ow(0, 0)));  // columns outside out untouched
      REQUIRE(std::isnan(ow(nq - 1, h * dv + 3)));
    }
}

TEMPLATE_TEST_CASE("Causal linear attention equals the explicit masked computation for several "
                   "chunk sizes",
                   "[linear]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(12);
  const Index shapes[][4] = {{1, 3, 2, 1}, {2, 6, 5, 17}, {1, 16, 16, 70}};
  for (const auto& s : shapes)
    for (const FeatureMap f : kMaps)
      for (const Index chunk : {Index(1), Index(3), Index(7), Index(16), Index(1000)})
      for (const auto kernel : {xfmr::CausalKernel::Scan, xfmr::CausalKernel::Quadratic}) {
        CAPTURE(s[0], s[1], s[2], s[3], xfmr::feature_map_name(f), chunk, static_cast<int>(kernel));
        const Index h = s[0], d = s[1], dv = s[2], n = s[3];
        const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, n, h * d);
        const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, n, h * d);
        const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, n, h * dv);
        RowMatrix<T> out(n, h * dv);
        auto c = make_config<T>(f, d, dv, chunk);
        c.causal_kernel = kernel;
        xfmr::LinearAttention<T>(c).forward(q, k, v, out, causal_mask<T>(true));
        REQUIRE(rel_error(out, xfmr_ref::linear_attention(make_ref(f, d, true), q, k, v)) <
                tol<T>());
      }
}

TEST_CASE("Parallel (one chunk) = chunked = recurrent to 1e-12 in double", "[linear]") {
  auto rng = xfmr_test::make_rng(13);
  const Index h = 3, d = 8, dv = 5, n = 41;
  for (const FeatureMap f : kMaps) {
    CAPTURE(xfmr::feature_map_name(f));
    // Exp keys spread over a wide range so the running maximum of the state changes often.
    const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, n, h * d, -3, 3);
    const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, n, h * d, -3, 3);
    const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, n, h * dv);
    RowMatrix<double> parallel(n, h * dv), chunked(n, h * dv), recurrent(n, h * dv);
    auto pc = make_config<double>(f, d, dv, n + 5);  // one chunk: the masked quadratic form
    pc.causal_kernel = xfmr::CausalKernel::Quadratic;
    xfmr::LinearAttention<double>(pc).forward(q, k, v, parallel, causal_mask<double>(true));
    xfmr::RecurrentAttentionState<double> state(make_config<double>(f, d, dv), h);
    for (Index t = 0; t < n; ++t) {
      state.step(q.row(t), k.row(t), v.row(t), recurrent.row(t));
      REQUIRE(state.tokens_seen() == t + 1);
    }
    for (const Index chunk : {Index(1), Index(4), Index(9), Index(40), Index(41), Index(100)})
    for (const auto kernel : {xfmr::CausalKernel::Scan, xfmr::CausalKernel::Quadratic}) {
      CAPTURE(chunk, static_cast<int>(kernel));
      auto cc = make_config<double>(f, d, dv, chunk);
      cc.causal_kernel = kernel;
      xfmr::LinearAttention<double>(cc).forward(q, k, v, chunked, causal_mask<double>(true));
      REQUIRE((chunked - parallel).cwiseAbs().maxCoeff() <= 1e-12 * (1 + parallel.cwiseAbs().maxCoeff()));
    }
    REQUIRE((recurrent - parallel).cwiseAbs().maxCoeff() <= 1e-12 * (1 + parallel.cwiseAbs().maxCoeff()));
    state.reset();
    REQUIRE(state.tokens_seen() == 0);
    RowMatrix<double> again(1, h * dv);
    state.step(q.row(0), k.row(0), v.row(0), again);
    REQUIRE((again - parallel.row(0)).cwiseAbs().maxCoeff() <= 1e-12);
  }
}

TEMPLATE_TEST_CASE("Padded keys have no influence, whatever their values", "[linear]", float,
                   double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(14);
  const Index h = 2, d = 6, dv = 4, nq = 9, nk = 15;
  for (const FeatureMap f : kMaps)
    for (const bool causal : {false, true}) {
      CAPTURE(xfmr::feature_map_name(f), causal);
      const Index n_k = causal ? nq : nk;
      RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, nq, h * d);
      RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, n_k, h * d);
      RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, n_k, h * dv);
      BoolVec valid(n_k);
      std::vector<bool> valid_std(static_cast<std::size_t>(n_k));
      for (Index j = 0; j < n_k; ++j) valid_std[j] = valid[j] = (j % 3 != 1);
      RowMatrix<T> out1(nq, h * dv), out2(nq, h * dv);
      auto mask = causal_mask<T>(causal);
      mask.set_key_valid(valid);
      xfmr::LinearAttention<T> attn(make_config<T>(f, d, dv, 4));
      attn.forward(q, k, v, out1, mask);
      // Garbage in the padded rows, including values whose features would dominate.
      for (Index j = 0; j < n_k; ++j)
        if (!valid[j]) {
          k.row(j).setConstant(T(40));
          v.row(j).setConstant(T(1e6));
        }
      attn.forward(q, k, v, out2, mask);
      REQUIRE((out1 - out2).cwiseAbs().maxCoeff() <= tol<T>() * 10);
      REQUIRE(rel_error(out1, xfmr_ref::linear_attention(make_ref(f, d, causal), q, k, v,
                                                          valid_std)) < tol<T>());
      if (!causal) {  // equal to dropping the padded rows
        std::vector<Index> keep;
        for (Index j = 0; j < n_k; ++j)
          if (valid[j]) keep.push_back(j);
        RowMatrix<T> kc(keep.size(), h * d), vc(keep.size(), h * dv), out3(nq, h * dv);
        for (std::size_t j = 0; j < keep.size(); ++j) {
          kc.row(j) = k.row(keep[j]);
          vc.row(j) = v.row(keep[j]);
        }
        attn.forward(q, kc, vc, out3);
        REQUIRE((out1 - out3).cwiseAbs().maxCoeff() <= tol<T>() * 10);
      }
    }
}

TEST_CASE("All keys padded gives zeros when eps = 0, and the eps-weighted zero otherwise",
          "[linear]") {
  const Index d = 4, n = 5;
  RowMatrix<double> q = RowMatrix<double>::Random(n, d), k = RowMatrix<double>::Random(n, d);
  RowMatrix<double> v = RowMatrix<double>::Random(n, d), out(n, d);
  const BoolVec none = BoolVec::Constant(n, false);
  for (const FeatureMap f : kMaps)
    for (const bool causal : {false, true}) {
      auto c = make_config<double>(f, d, d);
      c.eps = 0;
      xfmr::LinearAttention<double>(c).forward(q, k, v, out,
                                               causal_mask<double>(causal).set_key_valid(none));
      REQUIRE(out.allFinite());
      REQUIRE(out.cwiseAbs().maxCoeff() == 0.0);
    }
}

TEMPLATE_TEST_CASE("Extreme inputs stay finite", "[linear]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(15);
  const Index h = 2, d = 8, dv = 3, n = 23;
  for (const double big : {1e2, 1e4, 1e30})
    for (const FeatureMap f : kMaps)
      for (const bool causal : {false, true}) {
        // The test's Custom map has a feature e^{x_0}: it overflows T at every magnitude here,
        // and features that are inf are non-finite input, which propagates as NaN (it used to
        // give a silent zero row); nonfinite.test.cpp covers that.
        if (f == FeatureMap::Custom) continue;
        if (f == FeatureMap::Taylor2 || f == FeatureMap::Relu || f == FeatureMap::EluPlusOne) {
          // Polynomial / identity-growth features overflow only when x² or x·v exceeds T's
          // range: test them at the magnitude where they are representable.
          if (big > 1e4) continue;
        }
        CAPTURE(big, xfmr::feature_map_name(f), causal);
        const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, n, h * d, -big, big);
        const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, n, h * d, -big, big);
        const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, n, h * dv);
        RowMatrix<T> out(n, h * dv);
        xfmr::LinearAttention<T>(make_config<T>(f, d, dv, 5)).forward(q, k, v, out, causal_mask<T>(causal));
        REQUIRE(out.allFinite());
        if (causal) {
          xfmr::RecurrentAttentionState<T> state(make_config<T>(f, d, dv), h);
          RowMatrix<T> o(1, h * dv);
          for (Index t = 0; t < n; ++t) {
            state.step(q.row(t), k.row(t), v.row(t), o);
            REQUIRE(o.allFinite());
          }
        }
      }
}

TEMPLATE_TEST_CASE("RoPE with linear attention equals the explicit rotated computation",
                   "[linear][rope]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(16);
  const Index h = 2, d = 8, dv = 3, n = 19;
  struct Case {
    FeatureMap f;
    xfmr::RopePlacement placement;
    xfmr_ref::LinearRef::Rope ref;
  };
  const Case cases[] = {
      {FeatureMap::EluPlusOne, xfmr::RopePlacement::Auto, xfmr_ref::LinearRef::Rope::Features},
      {FeatureMap::Relu, xfmr::RopePlacement::Features, xfmr_ref::LinearRef::Rope::Features},
      {FeatureMap::Exp, xfmr::RopePlacement::Auto, xfmr_ref::LinearRef::Rope::Features},
      {FeatureMap::EfficientAttention, xfmr::RopePlacement::Auto,
       xfmr_ref::LinearRef::Rope::Features},
      {FeatureMap::OnePlusCosine, xfmr::RopePlacement::Auto, xfmr_ref::LinearRef::Rope::Inputs},
      {FeatureMap::Taylor2, xfmr::RopePlacement::Auto, xfmr_ref::LinearRef::Rope::Inputs},
      {FeatureMap::EluPlusOne, xfmr::RopePlacement::Inputs, xfmr_ref::LinearRef::Rope::Inputs},
  };
  for (const Case& cs : cases)
    for (const bool causal : {false, true}) {
      CAPTURE(xfmr::feature_map_name(cs.f), causal, static_cast<int>(cs.placement));
      const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, n, h * d);
      const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, n, h * d);
      const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, n, h * dv);
      auto c = make_config<T>(cs.f, d, dv, 6);
      c.rope = xfmr::RopeConfig{};
      c.rope->base = 100;  // large angles at these short lengths: a rotation that matters
      c.rope_placement = cs.placement;
      RowMatrix<T> out(n, h * dv);
      xfmr::LinearAttention<T>(c).forward(q, k, v, out, causal_mask<T>(causal));
      auto r = make_ref(cs.f, d, causal);
      r.rope = cs.ref;
      r.base = 100;
      const auto ref = xfmr_ref::linear_attention(r, q, k, v);
      REQUIRE(rel_error(out, ref) < tol<T>() * 5);
      // Not the unrotated result: RoPE had an effect.
      auto r0 = make_ref(cs.f, d, causal);
      REQUIRE(rel_error(out, xfmr_ref::linear_attention(r0, q, k, v)) > 1e-3);
      if (causal) {  // recurrent decoding with the same positions
        xfmr::RecurrentAttentionState<T> state(c, h);
        RowMatrix<T> rec(n, h * dv);
        for (Index t = 0; t < n; ++t) state.step(q.row(t), k.row(t), v.row(t), rec.row(t));
        REQUIRE(rel_error(rec, ref) < tol<T>() * 5);
      }
    }
}

TEST_CASE("Numerator-only RoPE with every position equal reduces to plain linear attention",
          "[linear][rope]") {
  // One query and one key per call, both at position p: R_p^T R_p = I, so the rotated numerator
  // equals the plain one for any p.
  auto rng = xfmr_test::make_rng(17);
  const Index d = 6;
  auto c = make_config<double>(FeatureMap::EluPlusOne, d, d);
  const xfmr::LinearAttention<double> plain_attn(c);
  c.rope = xfmr::RopeConfig{};
  xfmr::LinearAttention<double> rope_attn(c);
  xfmr::LinearAttention<double> plain(make_config<double>(FeatureMap::EluPlusOne, d, d));
  const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, 1, d);
  const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, 1, d);
  const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, 1, d);
  RowMatrix<double> a(1, d), b(1, d);
  plain.forward(q, k, v, a);
  for (const Index p : {Index(0), Index(5), Index(1234)}) {
    rope_attn.forward(q, k, v, b, {}, p);
    REQUIRE((a - b).cwiseAbs().maxCoeff() < 1e-14);
  }
  REQUIRE(plain_attn.feature_dim() == d);
}

TEMPLATE_TEST_CASE("Feature maps are non-negative and efficient attention rows sum to 1",
                   "[linear][feature_map]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(18);
  const Index d = 7, n = 31;
  for (const FeatureMap f : kMaps) {
    if (f == FeatureMap::OnePlusCosine) continue;  // [1, x̂]: x̂ is signed by design
    CAPTURE(xfmr::feature_map_name(f));
    const auto c = make_config<T>(f, d, d);
    xfmr::detail::LinearSetup<T> setup(c, "test");
    const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, n, d, -30, 30);
    RowMatrix<T> phi(n, setup.m);
    std::vector<T> lq(static_cast<std::size_t>(n));
    setup.mapper.queries(x.data(), d, n, phi.data(), setup.m, lq.data());
    if (f != FeatureMap::Taylor2) REQUIRE(phi.minCoeff() >= 0);
    setup.mapper.keys(x.data(), d, n, phi.data(), setup.m, nullptr, T(30), false);
    if (f != FeatureMap::Taylor2) REQUIRE(phi.minCoeff() >= 0);
  }
  // Implied weights of efficient attention: v = 1 gives output 1 without any normaliser.
  const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, n, 2 * d, -5, 5);
  const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, n + 4, 2 * d, -5, 5);
  const RowMatrix<T> ones = RowMatrix<T>::Ones(n + 4, 2 * d);
  RowMatrix<T> out(n, 2 * d);
  xfmr::LinearAttention<T>(make_config<T>(FeatureMap::EfficientAttention, d, d))
      .forward(q, k, ones, out);
  REQUIRE((out.array() - T(1)).abs().maxCoeff() < (std::is_same_v<T, float> ? 1e-5 : 1e-13));
}

TEST_CASE("Tensor views [tokens, heads, dim] and [batch, tokens, heads, dim] equal the matrix path",
          "[linear][tensor]") {
  auto rng = xfmr_test::make_rng(21);
  const Index batch = 3, n = 11, h = 2, d = 4, dv = 3;
  for (const bool causal : {false, true}) {
    xfmr::LinearAttention<double> attn(make_config<double>(FeatureMap::EluPlusOne, d, dv, 4));
    const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, batch * n, h * d);
    const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, batch * n, h * d);
    const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, batch * n, h * dv);
    RowMatrix<double> out4(batch * n, h * dv), out3(n, h * dv), expect(n, h * dv);
    const auto mask = causal_mask<double>(causal);
    using C4 = xfmr::LinearAttention<double>::ConstTensor4;
    attn.forward(C4(q.data(), batch, n, h, d), C4(k.data(), batch, n, h, d),
                 C4(v.data(), batch, n, h, dv),
                 xfmr::LinearAttention<double>::Tensor4(out4.data(), batch, n, h, dv), mask);
    for (Index b = 0; b < batch; ++b) {
      attn.forward(q.middleRows(b * n, n), k.middleRows(b * n, n), v.middleRows(b * n, n), expect,
                   mask);
      REQUIRE((out4.middleRows(b * n, n) - expect).cwiseAbs().maxCoeff() == 0.0);
    }
    using C3 = xfmr::LinearAttention<double>::ConstTensor3;
    attn.forward(C3(q.data(), n, h, d), C3(k.data(), n, h, d), C3(v.data(), n, h, dv),
                 xfmr::LinearAttention<double>::Tensor3(out3.data(), n, h, dv), mask);
    attn.forward(q.topRows(n), k.topRows(n), v.topRows(n), expect, mask);
    REQUIRE((out3 - expect).cwiseAbs().maxCoeff() == 0.0);
    XFMR_REQUIRE_INVALID(attn.forward(C3(q.data(), n, h, d), C3(k.data(), n, h, d),
                                      C3(v.data(), n, h, dv),
                                      xfmr::LinearAttention<double>::Tensor3(out3.data(), n, 1, 6)),
                         "expected the last dimension of v and out to be value_dim=3 (got 3 and 6)");
    XFMR_REQUIRE_INVALID(attn.forward(C3(q.data(), n, h, d), C3(k.data(), n, 1, 2 * d),
                                      C3(v.data(), n, h, dv),
                                      xfmr::LinearAttention<double>::Tensor3(out3.data(), n, h, dv)),
                         "expected the last dimension of q and k to be head_dim=4 (got 4 and 8)");
  }
}

TEST_CASE("The one-shot linear_attention overloads equal the component", "[linear]") {
  auto rng = xfmr_test::make_rng(22);
  const RowMatrix<float> qf = xfmr_test::random_matrix<float>(rng, 9, 8);
  RowMatrix<float> of(9, 8), ef(9, 8);
  auto cf = make_config<float>(FeatureMap::Relu, 4, 4, 2);
  xfmr::linear_attention(qf, qf, qf, of, cf, causal_mask<float>(true));  // T never spelled out
  xfmr::LinearAttention<float>(cf).forward(qf, qf, qf, ef, causal_mask<float>(true));
  REQUIRE((of - ef).cwiseAbs().maxCoeff() == 0.0f);
  const RowMatrix<double> qd = xfmr_test::random_matrix<double>(rng, 9, 8);
  RowMatrix<double> od(9, 8), ed(9, 8);
  auto cd = make_config<double>(FeatureMap::Exp, 4, 4);
  xfmr::linear_attention(qd, qd, qd, od, cd);
  xfmr::LinearAttention<double>(cd).forward(qd, qd, qd, ed);
  REQUIRE((od - ed).cwiseAbs().maxCoeff() == 0.0);
  REQUIRE(rel_error(od, xfmr_ref::linear_attention(make_ref(FeatureMap::Exp, 4, false), qd, qd, qd)) < 1e-12);
}

TEST_CASE("Linear attention rejects bad configurations and shapes with clear messages",
          "[linear][errors]") {
  using C = xfmr::LinearAttentionConfig<float>;
  auto base = [] {
    C c;
    c.head_dim = 4;
    return c;
  };
  {
    C c = base();
    c.head_dim = 0;
    XFMR_REQUIRE_INVALID(xfmr::LinearAttention<float>{c}, "head_dim must be >= 1 (got head_dim=0)");
  }
  {
    C c = base();
    c.chunk_size = 0;
    XFMR_REQUIRE_INVALID(xfmr::LinearAttention<float>{c}, "chunk_size must be >= 1 (got chunk_size=0)");
  }
  {
    C c = base();
    c.eps = std::numeric_limits<double>::quiet_NaN();
    XFMR_REQUIRE_INVALID(xfmr::LinearAttention<float>{c}, "eps must be finite and >= 0");
  }
  {
    C c = base();
    c.eps = -1;
    XFMR_REQUIRE_INVALID(xfmr::LinearAttention<float>{c}, "eps must be finite and >= 0");
  }
  {
    C c = base();
    c.feature_map = FeatureMap::Custom;
    XFMR_REQUIRE_INVALID(xfmr::LinearAttention<float>{c}, "custom_feature_dim must be >= 1");
    c.custom_feature_dim = 3;
    XFMR_REQUIRE_INVALID(xfmr::LinearAttention<float>{c}, "needs the functor");
  }
  {
    C c = base();
    c.feature_map = FeatureMap::OnePlusCosine;
    c.rope = xfmr::RopeConfig{};
    c.rope_placement = xfmr::RopePlacement::Features;
    XFMR_REQUIRE_INVALID(xfmr::LinearAttention<float>{c}, "even feature dimension (got 5");
    c.rope_placement = xfmr::RopePlacement::Inputs;
    c.rope->head_dim = 6;
    XFMR_REQUIRE_INVALID(xfmr::LinearAttention<float>{c}, "rope.head_dim must be 0 or 4");
  }
  {
    C c = base();
    XFMR_REQUIRE_INVALID((xfmr::RecurrentAttentionState<float>{c, 0}), "heads must be >= 1 (got 0)");
  }
  xfmr::LinearAttention<float> attn(base());
  const RowMatrix<float> q = RowMatrix<float>::Random(5, 8), k = RowMatrix<float>::Random(6, 8);
  const RowMatrix<float> v = RowMatrix<float>::Random(6, 8);
  RowMatrix<float> out(5, 8);
  XFMR_REQUIRE_INVALID(attn.forward(RowMatrix<float>::Random(5, 6), k, v, out),
                       "xfmr::LinearAttention: expected q.cols() to be a positive multiple of "
                       "head_dim=4 (got q.cols()=6)");
  XFMR_REQUIRE_INVALID(attn.forward(q, RowMatrix<float>::Random(6, 12), v, out),
                       "expected the key/value heads to divide the query heads (got 2 query "
                       "heads, 3 key/value heads)");
  XFMR_REQUIRE_INVALID(attn.forward(q, k, RowMatrix<float>::Random(6, 7), out),
                       "expected v.cols() = kv_heads·value_dim=8 (got v.cols()=7)");
  XFMR_REQUIRE_INVALID(attn.forward(q, k, RowMatrix<float>::Random(5, 8), out),
                       "expected v.rows() = k.rows() (got v.rows()=5, k.rows()=6)");
  RowMatrix<float> bad(4, 8);
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, bad), "expected out to be 5x8 (got 4x8)");
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, out,
                                    xfmr::AttentionMask<float>{}.set_key_valid(
                                        BoolVec::Constant(5, true))),
                       "mask.key_valid must have n_k=6 entries (got 5)");
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, out, causal_mask<float>(true)),
                       "expected as many queries as keys for causal attention (got q.rows()=5, "
                       "k.rows()=6)");
  // Mask parts with no factorised form throw, naming the part.
  xfmr::AttentionMask<float> bias;
  bias.set_bias(RowMatrix<float>::Zero(5, 6));
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, out, bias),
                       "xfmr::LinearAttention: bias masks are not supported (linear attention "
                       "factorises");
  xfmr::AttentionMask<float> allowed;
  allowed.set_allowed(Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic>::Constant(5, 6, true));
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, out, allowed), "boolean (allowed) masks are not supported");
  xfmr::AttentionMask<float> seg;
  seg.set_segment_ids(Eigen::VectorXi::Zero(6));
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, out, seg), "segment (UniLM) masks are not supported");
  xfmr::RecurrentAttentionState<float> state(base(), 2);
  RowMatrix<float> row(1, 8);
  XFMR_REQUIRE_INVALID(state.step(q.topRows(2), k.topRows(1), v.topRows(1), row),
                       "expected q to be 1x8 (got 2x8)");
  XFMR_REQUIRE_INVALID(state.step(q.topRows(1), k.topRows(1), v.topRows(1).leftCols(4), row),
                       "expected v to be 1x8 (got 1x4)");
  RowMatrix<float> qrow = q.topRows(1);
  XFMR_REQUIRE_INVALID(state.step(qrow, k.topRows(1), v.topRows(1), qrow),
                       "xfmr::RecurrentAttentionState: expected out not to overlap q");
}

TEST_CASE("out must not overlap q, k or v; column slices of one fused buffer are fine",
          "[linear][errors]") {
  xfmr::LinearAttentionConfig<double> c;
  c.head_dim = 4;
  xfmr::LinearAttention<double> attn(c);
  RowMatrix<double> qkvo = RowMatrix<double>::Random(6, 16);
  // Disjoint column windows of one buffer: accepted and equal to separate matrices.
  const RowMatrix<double> q = qkvo.leftCols(4), k = qkvo.middleCols(4, 4), v = qkvo.middleCols(8, 4);
  RowMatrix<double> expect(6, 4);
  attn.forward(q, k, v, expect);
  attn.forward(qkvo.leftCols(4), qkvo.middleCols(4, 4), qkvo.middleCols(8, 4), qkvo.rightCols(4));
  REQUIRE((RowMatrix<double>(qkvo.rightCols(4)) - expect).cwiseAbs().maxCoeff() < 1e-15);
  XFMR_REQUIRE_INVALID(attn.forward(qkvo.leftCols(4), qkvo.middleCols(4, 4), qkvo.middleCols(8, 4),
                                    qkvo.middleCols(6, 4)),
                       "expected out not to overlap k");
  XFMR_REQUIRE_INVALID(attn.forward(qkvo.leftCols(4), qkvo.middleCols(4, 4), qkvo.middleCols(8, 4),
                                    qkvo.leftCols(4)),
                       "expected out not to overlap q");
}

TEMPLATE_TEST_CASE("Grouped-query linear attention equals the repeated key/value heads, and key "
                   "lengths equal key_valid prefixes", "[linear]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(23);
  const Index heads = 4, kv = 2, d = 5, dv = 3, n = 13;
  for (const bool causal : {false, true}) {
    CAPTURE(causal);
    const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, n, heads * d);
    const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, n, kv * d);
    const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, n, kv * dv);
    RowMatrix<T> kr(n, heads * d), vr(n, heads * dv), a(n, heads * dv), b(n, heads * dv);
    for (Index h = 0; h < heads; ++h) {
      kr.middleCols(h * d, d) = k.middleCols((h / 2) * d, d);
      vr.middleCols(h * dv, dv) = v.middleCols((h / 2) * dv, dv);
    }
    xfmr::LinearAttention<T> attn(make_config<T>(FeatureMap::EluPlusOne, d, dv, 4));
    auto mask = causal_mask<T>(causal);
    mask.set_key_length(9);
    attn.forward(q, k, v, a, mask);
    auto valid = causal_mask<T>(causal);
    valid.set_key_valid((Eigen::ArrayXi::LinSpaced(n, 0, n - 1) < 9).matrix());
    attn.forward(q, kr, vr, b, valid);
    REQUIRE((a - b).cwiseAbs().maxCoeff() <= tol<T>());
    // A test that can fail: the padding changed the result.
    attn.forward(q, kr, vr, b, causal_mask<T>(causal));
    REQUIRE((a - b).cwiseAbs().maxCoeff() > 1e-3);
  }
}

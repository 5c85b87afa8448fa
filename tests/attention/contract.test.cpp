// SPDX-License-Identifier: MIT
// The attention contract (attention/contract.hpp) across every flavour: the same bad input gets
// the same message from each, the overlap rule, the mask-capability check, the tensor-view
// adapter (batches, per-sequence key lengths) and grouped-query heads.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/contract.hpp>
#include <xfmr/attention/linear.hpp>
#include <xfmr/attention/performer.hpp>
#include <xfmr/attention/rerope.hpp>
#include <xfmr/attention/softmax.hpp>
#include <xfmr/tensor.hpp>

#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::AttentionMask;
using xfmr::Index;
using xfmr::RowMatrix;

namespace {

using M = RowMatrix<float>;
using Mask = AttentionMask<float>;
// One attention call of a flavour with head_dim 4 and value_dim 4.
using Forward = std::function<void(const M&, const M&, const M&, M&, const Mask&)>;

struct Flavour {
  std::string name;      // the component in messages
  Forward forward;
  xfmr::MaskParts parts;  // what it supports
};

std::vector<Flavour> flavours() {
  xfmr::SoftmaxAttentionConfig sc;
  sc.head_dim = 4;
  auto softmax = std::make_shared<xfmr::SoftmaxAttention<float>>(sc);
  xfmr::ReRopeConfig rc;
  rc.head_dim = 4;
  rc.window = 3;
  auto rerope = std::make_shared<xfmr::ReRopeAttention<float>>(rc);
  xfmr::LinearAttentionConfig<float> lc;
  lc.head_dim = 4;
  auto linear = std::make_shared<xfmr::LinearAttention<float>>(lc);
  xfmr::PerformerConfig pc;
  pc.head_dim = 4;
  pc.num_features = 16;
  auto performer = std::make_shared<xfmr::Performer<float>>(pc);
  const xfmr::MaskParts factorised = xfmr::kMaskCausal | xfmr::kMaskKeyLength | xfmr::kMaskKeyValid;
  return {
      {"SoftmaxAttention",
       [softmax](const M& q, const M& k, const M& v, M& o, const Mask& m) {
         softmax->forward(q, k, v, o, m);
       },
       xfmr::kMaskAll},
      {"ReRopeAttention",
       [rerope](const M& q, const M& k, const M& v, M& o, const Mask& m) {
         rerope->forward(q, k, v, o, m);
       },
       xfmr::kMaskCausal},
      {"LinearAttention",
       [linear](const M& q, const M& k, const M& v, M& o, const Mask& m) {
         linear->forward(q, k, v, o, m);
       },
       factorised},
      {"Performer",
       [performer](const M& q, const M& k, const M& v, M& o, const Mask& m) {
         performer->forward(q, k, v, o, m);
       },
       factorised},
  };
}

}  // namespace

TEST_CASE("Every flavour checks shapes with the same words", "[attention][contract]") {
  const M q = M::Ones(6, 8), k = M::Ones(6, 8), v = M::Ones(6, 8);
  for (const Flavour& f : flavours()) {
    CAPTURE(f.name);
    const std::string where = "xfmr::" + f.name + ": ";
    M out(6, 8), bad_out(5, 8);
    XFMR_REQUIRE_INVALID(f.forward(M::Ones(6, 7), k, v, out, {}),
                         where + "expected q.cols() to be a positive multiple of head_dim=4 "
                                 "(got q.cols()=7)");
    XFMR_REQUIRE_INVALID(f.forward(q, M::Ones(6, 6), v, out, {}),
                         where + "expected k.cols() to be a positive multiple of head_dim=4 "
                                 "(got k.cols()=6)");
    XFMR_REQUIRE_INVALID(f.forward(q, M::Ones(6, 12), M::Ones(6, 12), out, {}),
                         where + "expected the key/value heads to divide the query heads (got 2 "
                                 "query heads, 3 key/value heads)");
    XFMR_REQUIRE_INVALID(f.forward(q, k, M::Ones(5, 8), out, {}),
                         where + "expected v.rows() = k.rows() (got v.rows()=5, k.rows()=6)");
    XFMR_REQUIRE_INVALID(f.forward(q, k, v, bad_out, {}),
                         where + "expected out to be 6x8 (got 5x8)");
  }
}

TEST_CASE("Every flavour follows the one overlap rule", "[attention][contract]") {
  // Never in place, never a partial overlap (column slices of one fused buffer that share no
  // element are allowed: linear.test.cpp and softmax.test.cpp run them).
  auto rng = xfmr_test::make_rng(91);
  const M q = xfmr_test::random_matrix<float>(rng, 6, 8);
  const M k = xfmr_test::random_matrix<float>(rng, 6, 8);
  const M v = xfmr_test::random_matrix<float>(rng, 6, 8);
  for (const Flavour& f : flavours()) {
    CAPTURE(f.name);
    const std::string where = "xfmr::" + f.name + ": ";
    M qq = q, kk = k, vv = v;
    XFMR_REQUIRE_INVALID(f.forward(qq, k, v, qq, {}), where + "expected out not to overlap q");
    XFMR_REQUIRE_INVALID(f.forward(q, kk, v, kk, {}), where + "expected out not to overlap k");
    XFMR_REQUIRE_INVALID(f.forward(q, k, vv, vv, {}), where + "expected out not to overlap v");
  }
}

TEST_CASE("Every flavour accepts the mask parts it supports and names the rest",
          "[attention][contract]") {
  auto rng = xfmr_test::make_rng(92);
  const Index n = 6;
  const M q = xfmr_test::random_matrix<float>(rng, n, 8);
  const M k = xfmr_test::random_matrix<float>(rng, n, 8);
  const M v = xfmr_test::random_matrix<float>(rng, n, 8);
  struct Part {
    xfmr::MaskPart part;
    const char* name;
    Mask mask;
  };
  Eigen::Matrix<bool, Eigen::Dynamic, 1> valid = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(n, true);
  valid[2] = false;
  Eigen::VectorXi seg(n);
  seg << 0, 0, 0, 1, 1, 1;
  std::vector<Part> parts = {
      {xfmr::kMaskCausal, "causal", Mask{}.set_causal()},
      {xfmr::kMaskKeyLength, "key-length", Mask{}.set_key_length(4)},
      {xfmr::kMaskKeyValid, "key_valid", Mask{}.set_key_valid(valid)},
      {xfmr::kMaskSegments, "segment (UniLM)", Mask{}.set_segment_ids(seg)},
      {xfmr::kMaskAllowed, "boolean (allowed)",
       Mask{}.set_allowed(Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic>::Constant(n, n, true))},
      {xfmr::kMaskBias, "bias", Mask{}.set_bias(M::Zero(n, n))},
  };
  for (const Flavour& f : flavours())
    for (const Part& p : parts) {
      CAPTURE(f.name, p.name);
      M out(n, 8);
      if (f.parts & p.part) {
        f.forward(q, k, v, out, p.mask);
        CHECK(out.allFinite());
      } else {
        XFMR_REQUIRE_INVALID(f.forward(q, k, v, out, p.mask),
                             "xfmr::" + f.name + ": " + p.name + " masks are not supported (");
      }
    }
}

TEST_CASE("Padding means the same thing to every flavour that takes it", "[attention][contract]") {
  // key_length L equals key_valid with the first L keys, and (non-causal) dropping the rest.
  auto rng = xfmr_test::make_rng(93);
  const Index n = 9, L = 5;
  const M q = xfmr_test::random_matrix<float>(rng, n, 8);
  const M k = xfmr_test::random_matrix<float>(rng, n, 8);
  const M v = xfmr_test::random_matrix<float>(rng, n, 8);
  Eigen::Matrix<bool, Eigen::Dynamic, 1> valid(n);
  for (Index j = 0; j < n; ++j) valid[j] = j < L;
  for (const Flavour& f : flavours()) {
    if (!(f.parts & xfmr::kMaskKeyLength)) continue;
    CAPTURE(f.name);
    M a(n, 8), b(n, 8), c(n, 8);
    f.forward(q, k, v, a, Mask{}.set_key_length(L));
    f.forward(q, k, v, b, Mask{}.set_key_valid(valid));
    f.forward(q, k.topRows(L), v.topRows(L), c, {});
    CHECK((a - b).cwiseAbs().maxCoeff() <= 1e-6f);
    CHECK((a - c).cwiseAbs().maxCoeff() <= 1e-5f);
    f.forward(q, k, v, c, {});
    CHECK((a - c).cwiseAbs().maxCoeff() > 1e-4f);  // a test that can fail
  }
}

TEMPLATE_TEST_CASE("The tensor-view adapter: batches attend to themselves, one key length each",
                   "[attention][contract][tensor]", float, double) {
  using T = TestType;
  using C4 = xfmr::ConstTensorView<T, 4>;
  using T4 = xfmr::TensorView<T, 4>;
  using C3 = xfmr::ConstTensorView<T, 3>;
  using T3 = xfmr::TensorView<T, 3>;
  auto rng = xfmr_test::make_rng(94);
  const Index batch = 3, n = 7, heads = 2, d = 4;
  const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, batch * n, heads * d);
  const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, batch * n, heads * d);
  const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, batch * n, heads * d);
  Eigen::VectorXi lens(batch);
  lens << 7, 3, 5;
  xfmr::SoftmaxAttentionConfig sc;
  sc.head_dim = d;
  xfmr::SoftmaxAttention<T> softmax(sc);
  xfmr::LinearAttentionConfig<T> lc;
  lc.head_dim = d;
  xfmr::LinearAttention<T> linear(lc);
  xfmr::PerformerConfig pc;
  pc.head_dim = d;
  pc.num_features = 16;
  xfmr::Performer<T> performer(pc);
  xfmr::ReRopeConfig rc;
  rc.head_dim = d;
  rc.window = 3;
  xfmr::ReRopeAttention<T> rerope(rc);
  auto check = [&](auto& attn, bool padded) {
    AttentionMask<T> mask;
    mask.set_causal();
    if (padded) mask.set_key_lengths(lens);
    RowMatrix<T> all(batch * n, heads * d), one(n, heads * d);
    attn.forward(C4(q.data(), batch, n, heads, d), C4(k.data(), batch, n, heads, d),
                 C4(v.data(), batch, n, heads, d), T4(all.data(), batch, n, heads, d), mask);
    for (Index b = 0; b < batch; ++b) {
      AttentionMask<T> mb;
      mb.set_causal();
      if (padded) mb.set_key_length(lens[b]);
      attn.forward(q.middleRows(b * n, n), k.middleRows(b * n, n), v.middleRows(b * n, n), one,
                   mb);
      CHECK(all.middleRows(b * n, n) == one);
    }
    RowMatrix<T> three(n, heads * d);
    attn.forward(C3(q.data(), n, heads, d), C3(k.data(), n, heads, d), C3(v.data(), n, heads, d),
                 T3(three.data(), n, heads, d), AttentionMask<T>{}.set_causal());
    attn.forward(q.topRows(n), k.topRows(n), v.topRows(n), one, AttentionMask<T>{}.set_causal());
    CHECK(three == one);
  };
  check(softmax, true);
  check(linear, true);
  check(performer, true);
  check(rerope, false);
  AttentionMask<T> wrong;
  wrong.set_key_lengths(Eigen::VectorXi::Constant(2, 3));
  RowMatrix<T> all(batch * n, heads * d);
  XFMR_REQUIRE_INVALID(
      linear.forward(C4(q.data(), batch, n, heads, d), C4(k.data(), batch, n, heads, d),
                     C4(v.data(), batch, n, heads, d), T4(all.data(), batch, n, heads, d), wrong),
      "xfmr::LinearAttention: expected mask.key_lengths to have 1 or batch=3 entries (got 2)");
}

TEST_CASE("Grouped-query heads mean the same to every flavour", "[attention][contract]") {
  // kv_heads = 1 serving two query heads equals the key/value head repeated.
  auto rng = xfmr_test::make_rng(95);
  const Index n = 8;
  const M q = xfmr_test::random_matrix<float>(rng, n, 8);
  const M k = xfmr_test::random_matrix<float>(rng, n, 4);
  const M v = xfmr_test::random_matrix<float>(rng, n, 4);
  M k2(n, 8), v2(n, 8);
  k2 << k, k;
  v2 << v, v;
  for (const Flavour& f : flavours()) {
    CAPTURE(f.name);
    M a(n, 8), b(n, 8);
    f.forward(q, k, v, a, Mask{}.set_causal());
    f.forward(q, k2, v2, b, Mask{}.set_causal());
    CHECK((a - b).cwiseAbs().maxCoeff() <= 1e-6f);
  }
}

// SPDX-License-Identifier: MIT
// Attention masks: the resolved per-row key limits, and the weights SoftmaxAttention produces
// under each mask kind against hand-written patterns (UniLM from SPEC §4.2), plus mask errors.
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
// softmax.hpp first: mask.hpp includes <Eigen/Core> before xfmr/config.hpp, which must come
// first for GCC 12 (see config.hpp); drop this once mask.hpp includes "../detail/eigen.hpp".
#include <xfmr/attention/softmax.hpp>
#include <xfmr/attention/mask.hpp>

#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::AttentionMask;
using xfmr::Index;
using xfmr::RowMatrix;

namespace {

using BoolVec = Eigen::Matrix<bool, Eigen::Dynamic, 1>;
using BoolMat = Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using SegVec = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1>;

/// The attention weights of one head (v = identity, so out row i = a_i·), nq × nk. Computed
/// twice: with query tiles of 2 rows (the row path) and of 8 (the kernel's query blocks once
/// nq > 2), which must agree.
RowMatrix<double> weights(const AttentionMask<double>& mask, Index nq, Index nk, Index d = 5) {
  auto rng = xfmr_test::make_rng(7);
  const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, nq, d);
  const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, nk, d);
  const RowMatrix<double> v = RowMatrix<double>::Identity(nk, nk);
  auto run = [&](Index query_tile) {
    xfmr::SoftmaxAttentionConfig cfg;
    cfg.head_dim = d;
    cfg.value_dim = nk;
    cfg.query_tile = query_tile;
    cfg.key_tile = 3;  // several key tiles even for tiny shapes
    RowMatrix<double> out(nq, nk);
    xfmr::SoftmaxAttention<double>(cfg).forward(q, k, v, out, mask);
    return out;
  };
  const RowMatrix<double> rows = run(2), blocks = run(8);
  CHECK((rows - blocks).cwiseAbs().maxCoeff() <= 1e-15);
  return rows;
}

/// 1 where the weight is non-zero; rows with any weight must sum to 1.
BoolMat pattern(const RowMatrix<double>& a) {
  BoolMat p(a.rows(), a.cols());
  for (Index i = 0; i < a.rows(); ++i) {
    for (Index j = 0; j < a.cols(); ++j) p(i, j) = a(i, j) != 0.0;
    if (p.row(i).any()) CHECK(a.row(i).sum() == Approx(1.0).epsilon(1e-12));
  }
  return p;
}

BoolMat parse(std::initializer_list<const char*> rows) {
  std::vector<const char*> r(rows);
  BoolMat m(Index(r.size()), Index(std::strlen(r[0])));
  for (Index i = 0; i < m.rows(); ++i)
    for (Index j = 0; j < m.cols(); ++j) m(i, j) = r[std::size_t(i)][j] == '1';
  return m;
}

}  // namespace

TEST_CASE("UniLM mask: hand-checked 6-token example", "[attention][mask]") {
  // seg = 0 0 0 1 1 1, c = cumsum = 0 0 0 1 2 3; allowed(i, j) = c[j] <= c[i].
  SegVec seg(6);
  seg << 0, 0, 0, 1, 1, 1;
  AttentionMask<double> mask;
  mask.set_segment_ids(seg);
  CHECK(pattern(weights(mask, 6, 6)) == parse({"111000", "111000", "111000", "111100", "111110",
                                               "111111"}));
  // Right padding after the target has seg 0 (c stays flat): the key-padding length must be
  // combined with it. seg = 0 0 1 1 0 0, c = 0 0 1 2 2 2, 4 real tokens.
  SegVec seg2(6);
  seg2 << 0, 0, 1, 1, 0, 0;
  AttentionMask<double> m2;
  m2.set_segment_ids(seg2);
  CHECK(pattern(weights(m2, 6, 6)) == parse({"110000", "110000", "111000", "111111", "111111",
                                             "111111"}));
  m2.set_key_length(4);
  CHECK(pattern(weights(m2, 6, 6)) == parse({"110000", "110000", "111000", "111100", "111100",
                                             "111100"}));
}

TEST_CASE("Causal mask: bottom-right alignment for a query block at the end of the cache",
          "[attention][mask]") {
  AttentionMask<double> mask;
  mask.set_causal();
  CHECK(pattern(weights(mask, 3, 5)) == parse({"11100", "11110", "11111"}));
  CHECK(pattern(weights(mask, 4, 4)) == parse({"1000", "1100", "1110", "1111"}));
  // More queries than keys: the first rows come before every key and output zeros.
  CHECK(pattern(weights(mask, 4, 2)) == parse({"00", "00", "10", "11"}));
}

TEST_CASE("Key padding, key_valid, boolean matrix: AND-combined", "[attention][mask]") {
  AttentionMask<double> mask;
  mask.set_key_length(3);
  CHECK(pattern(weights(mask, 2, 5)) == parse({"11100", "11100"}));
  BoolVec valid(5);
  valid << true, false, true, true, true;
  mask.set_key_valid(valid);
  CHECK(pattern(weights(mask, 2, 5)) == parse({"10100", "10100"}));
  const BoolMat allowed = parse({"01111", "10011"});
  mask.set_allowed(allowed);
  CHECK(pattern(weights(mask, 2, 5)) == parse({"00100", "10000"}));
  mask.set_causal();  // p = 3 + i: row 0 sees j <= 3, row 1 sees all
  CHECK(pattern(weights(mask, 2, 5)) == parse({"00100", "10000"}));
  AttentionMask<double> m2;
  const BoolMat upper = parse({"11111", "01111", "00111", "00011"}).leftCols(4);
  m2.set_causal().set_allowed(upper);
  CHECK(pattern(weights(m2, 4, 4)) == parse({"1000", "0100", "0010", "0001"}));
}

TEST_CASE("Additive bias: -inf acts as a mask, finite values shift the weights",
          "[attention][mask]") {
  const double inf = std::numeric_limits<double>::infinity();
  RowMatrix<double> bias = RowMatrix<double>::Zero(2, 4);
  bias(0, 1) = -inf;
  bias(1, 0) = -inf;
  bias(1, 2) = -inf;
  bias(1, 3) = -inf;
  AttentionMask<double> mask;
  mask.set_bias(bias);
  CHECK(pattern(weights(mask, 2, 4)) == parse({"1011", "0100"}));
  // Row 1 has one key left: weight exactly 1.
  CHECK(weights(mask, 2, 4)(1, 1) == 1.0);
}

TEST_CASE("Fully masked rows output zeros, never NaN", "[attention][mask]") {
  BoolVec none = BoolVec::Constant(5, false);
  AttentionMask<double> mask;
  mask.set_key_valid(none);
  const auto a = weights(mask, 3, 5);
  CHECK(a.isZero(0.0));
  AttentionMask<double> m0;
  m0.set_key_length(0);
  CHECK(weights(m0, 3, 5).isZero(0.0));
  AttentionMask<double> m1;
  const BoolMat rows = parse({"00000", "01000"});  // views must outlive the call
  m1.set_allowed(rows);
  const auto b = weights(m1, 2, 5);
  CHECK(b.row(0).isZero(0.0));
  CHECK(b(1, 1) == 1.0);
}

TEST_CASE("ResolvedMask: per-row limits", "[attention][mask]") {
  std::vector<Index> lim;
  std::vector<std::int32_t> cs;
  AttentionMask<float> m;
  m.set_causal();
  xfmr::detail::ResolvedMask::limits(m, 3, 6, -1, lim, cs);
  CHECK(lim == std::vector<Index>{4, 5, 6});
  xfmr::detail::ResolvedMask::limits(m, 3, 6, 5, lim, cs);
  CHECK(lim == std::vector<Index>{4, 5, 5});
  SegVec seg(6);
  seg << 0, 0, 1, 1, 0, 0;
  AttentionMask<float> u;
  u.set_segment_ids(seg);
  xfmr::detail::ResolvedMask::limits(u, 6, 6, -1, lim, cs);
  CHECK(lim == std::vector<Index>{2, 2, 3, 6, 6, 6});
}

TEST_CASE("Mask shape errors", "[attention][mask][errors]") {
  xfmr::SoftmaxAttentionConfig cfg;
  cfg.head_dim = 4;
  xfmr::SoftmaxAttention<float> attn(cfg);
  const RowMatrix<float> q = RowMatrix<float>::Ones(3, 8), k = RowMatrix<float>::Ones(5, 8);
  RowMatrix<float> out(3, 8);
  {
    AttentionMask<float> m;
    m.set_key_length(6);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.key_length must be in [-1, n_k=5]");
  }
  {
    BoolVec valid(4);
    AttentionMask<float> m;
    m.set_key_valid(valid);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.key_valid must have n_k=5 entries (got 4)");
  }
  {
    SegVec seg(5);
    seg << 0, 0, 2, 1, 1;
    AttentionMask<float> m;
    m.set_segment_ids(seg);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.segment_ids must be 0 or 1 (got 2 at index 2)");
    SegVec seg4(4);
    seg4.setZero();
    m.set_segment_ids(seg4);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.segment_ids must have n_k=5");
  }
  {
    BoolMat a(3, 4);
    AttentionMask<float> m;
    m.set_allowed(a);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.allowed must be 3x5 (got 3x4)");
  }
  {
    RowMatrix<float> b(4, 5);
    AttentionMask<float> m;
    m.set_bias(b);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.bias must be 3x5 or 6x5 (got 4x5)");
  }
  {
    Eigen::Matrix<Index, Eigen::Dynamic, 1> lens(2);
    lens << 1, 2;
    AttentionMask<float> m;
    m.set_key_lengths(lens);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.key_lengths must have 1 or batch=1 entries (got 2)");
  }
}

// The mask stores views, so binding a temporary array must not compile.
template <typename Arg, typename = void>
struct CanSetBias : std::false_type {};
template <typename Arg>
struct CanSetBias<Arg, std::void_t<decltype(std::declval<xfmr::AttentionMask<double>&>()
                                                .set_bias(std::declval<Arg>()))>>
    : std::true_type {};

TEST_CASE("AttentionMask setters refuse temporaries", "[attention][mask]") {
  STATIC_REQUIRE(CanSetBias<const xfmr::RowMatrix<double>&>::value);
  STATIC_REQUIRE_FALSE(CanSetBias<xfmr::RowMatrix<double>&&>::value);
}

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

#include "reference/attention.hpp"
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

template <typename T>
double tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
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
  const BoolMat rows = parse({"00000", "01000"});
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
    BoolVec valid = BoolVec::Constant(4, true);
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
    BoolMat a = BoolMat::Constant(3, 4, true);
    AttentionMask<float> m;
    m.set_allowed(a);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.allowed must be 3x5 (got 3x4)");
  }
  {
    RowMatrix<float> b = RowMatrix<float>::Zero(4, 5);
    AttentionMask<float> m;
    m.set_bias(b);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "mask.bias must be 3x5 or 6x5 (got 4x5)");
  }
  {
    Eigen::Matrix<Index, Eigen::Dynamic, 1> lens(2);
    lens << 1, 2;
    AttentionMask<float> m;
    m.set_key_lengths(lens);
    XFMR_REQUIRE_INVALID(attn.forward(q, k, k, out, m), "expected mask.key_lengths to have 1 or batch=1 entries (got 2)");
  }
}

// The mask owns copies: the three calls below used to keep a view of a temporary that Eigen
// made for the conversion (and freed when the setter returned). Under ASan this test reads
// freed memory if the mask keeps a view; otherwise it must equal the reference.
TEMPLATE_TEST_CASE("AttentionMask owns what it is given: converted arguments do not dangle",
                   "[attention][mask]", float, double) {
  using T = TestType;
  const Index nq = 7, nk = 11, d = 6;
  const int pad = 0;
  auto rng = xfmr_test::make_rng(42);
  const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, nq, d, -2, 2);
  const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, nk, d, -2, 2);
  const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, nk, d);
  Eigen::Matrix<int, Eigen::Dynamic, 1> ids(nk);
  for (Index j = 0; j < nk; ++j) ids[j] = j % 4 == 2 ? pad : int(j + 1);
  const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> bias =  // column-major
      xfmr_test::random_matrix<T>(rng, nq, nk, -1, 1);
  const Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> flags =
      (xfmr_test::random_matrix<T>(rng, nk, 3, -1, 1).array() > T(-0.6)).matrix();

  AttentionMask<T> m1, m2;
  m1.set_key_valid((ids.array() != pad).matrix());  // an expression: converted to a temporary
  m1.set_bias(bias);                                // column-major: converted to row-major
  m2.set_key_valid(flags.col(1));                   // a strided column of a row-major matrix
  {
    // Overwrite the heap where freed temporaries lived, so a dangling view would read garbage
    // even without ASan.
    std::vector<std::vector<unsigned char>> scrub;
    for (int r = 0; r < 16; ++r) scrub.emplace_back(std::size_t(64 + 37 * r), 0x00);
  }

  xfmr::SoftmaxAttentionConfig cfg;
  cfg.head_dim = d;
  cfg.query_tile = 4;
  cfg.key_tile = 3;
  for (auto product : {xfmr::TileProduct::Kernel, xfmr::TileProduct::Eigen}) {
    cfg.tile_product = product;
    xfmr::SoftmaxAttention<T> attn(cfg);
    RowMatrix<T> out(nq, d);
    xfmr_ref::AttentionRef r;
    r.d = r.dv = d;
    r.key_valid.resize(std::size_t(nk));

    attn.forward(q, k, v, out, m1);
    for (Index j = 0; j < nk; ++j) r.key_valid[std::size_t(j)] = ids[j] != pad;
    r.bias = [&](long, long i, long j) { return double(bias(i, j)); };
    CHECK(xfmr_ref::rel_error(out, xfmr_ref::softmax_attention(r, q, k, v)) <= tol<T>());

    attn.forward(q, k, v, out, m2);
    for (Index j = 0; j < nk; ++j) r.key_valid[std::size_t(j)] = flags(j, 1);
    r.bias = nullptr;
    CHECK(xfmr_ref::rel_error(out, xfmr_ref::softmax_attention(r, q, k, v)) <= tol<T>());
  }
}

TEST_CASE("AttentionMask is a value: copies are independent, temporaries are fine",
          "[attention][mask]") {
  AttentionMask<double> a;
  a.set_key_valid(BoolVec::Constant(4, true));  // an rvalue: fine, it is copied
  AttentionMask<double> b = a;
  b.key_valid[1] = false;
  CHECK(a.key_valid.all());
  CHECK(!b.key_valid[1]);
  a.set_segment_ids(Eigen::Matrix<long, 1, Eigen::Dynamic>::Zero(3));  // row vector, long
  CHECK(a.segment_ids.size() == 3);
  a.set_key_lengths(Eigen::Vector2i(3, 4));
  CHECK(a.key_lengths[1] == 4);
  XFMR_REQUIRE_INVALID(a.set_key_valid(BoolMat::Constant(2, 2, true)),
                       "key_valid must be a vector (got 2x2)");
}

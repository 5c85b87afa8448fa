// SPDX-License-Identifier: MIT
// Mergeable attention partials (SPEC §18): SoftmaxAttention::forward_partial over blocks of keys,
// AttentionPartials::merge in any order and finish, against the naive long-double reference
// (tests/reference/attention_partials.hpp) and SoftmaxAttention::forward; the identity block,
// bit-reproducibility, non-finite propagation and errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/partials.hpp>
#include <xfmr/attention/softmax.hpp>

#include "reference/attention_partials.hpp"
#include "support/guarded.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::AttentionMask;
using xfmr::AttentionPartials;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::SoftmaxAttention;
using xfmr::SoftmaxAttentionConfig;

namespace {

template <typename T>
constexpr double tol() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-13;
}

template <typename T>
bool same_bits(const RowMatrix<T>& a, const RowMatrix<T>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * std::size_t(a.size())) == 0;
}

using BoolVec = Eigen::Matrix<bool, Eigen::Dynamic, 1>;
using BoolMat = Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// One attention problem: queries at global positions qpos0 + i, keys at j (0 ≤ j < n_k), with an
// optional causal mask on global positions, key validity, a boolean mask and a bias.
template <typename T>
struct Problem {
  RowMatrix<T> q, k, v;
  Index d = 0, dv = 0, qpos0 = 0;
  bool causal = false;
  BoolVec key_valid;  // empty: all valid
  BoolMat allowed;    // empty: all allowed
  RowMatrix<T> bias;  // empty: none; else n_q × n_k

  Index nq() const { return q.rows(); }
  Index nk() const { return k.rows(); }
  Index heads() const { return q.cols() / d; }

  // The mask of key block [j0, j0 + nb) in block coordinates (causal stays a flag: the
  // positions passed to forward_partial make it global).
  AttentionMask<T> block_mask(Index j0, Index nb) const {
    AttentionMask<T> m;
    m.set_causal(causal);
    if (key_valid.size() > 0) m.set_key_valid(key_valid.segment(j0, nb));
    if (allowed.size() > 0) m.set_allowed(allowed.middleCols(j0, nb));
    if (bias.size() > 0) m.set_bias(bias.middleCols(j0, nb));
    return m;
  }

  xfmr_ref::AttentionRef reference() const {
    xfmr_ref::AttentionRef r;
    r.d = d;
    r.dv = dv;
    if (key_valid.size() > 0) r.key_valid.assign(key_valid.data(), key_valid.data() + nk());
    const Index p0 = qpos0;
    const bool c = causal;
    const BoolMat a = allowed;
    r.allowed = [p0, c, a](long i, long j) {
      return (!c || j <= p0 + i) && (a.size() == 0 || a(i, j));
    };
    if (bias.size() > 0) {
      const RowMatrix<T> b = bias;
      r.bias = [b](long, long i, long j) { return double(b(i, j)); };
    }
    return r;
  }
};

template <typename T>
Problem<T> make_problem(std::mt19937_64& rng, Index nq, Index nk, Index heads, Index kv_heads,
                        Index d, Index dv, Index qpos0, bool causal) {
  Problem<T> p;
  p.q = xfmr_test::random_matrix<T>(rng, nq, heads * d, -1, 1);
  p.k = xfmr_test::random_matrix<T>(rng, nk, kv_heads * d, -1, 1);
  p.v = xfmr_test::random_matrix<T>(rng, nk, kv_heads * dv);
  p.d = d;
  p.dv = dv;
  p.qpos0 = qpos0;
  p.causal = causal;
  return p;
}

// Random block boundaries 0 = c_0 ≤ c_1 ≤ … ≤ c_P = n_k (empty blocks allowed).
std::vector<Index> random_cuts(std::mt19937_64& rng, Index nk, int blocks) {
  std::vector<Index> cuts{0, nk};
  std::uniform_int_distribution<Index> u(0, nk);
  for (int b = 1; b < blocks; ++b) cuts.push_back(u(rng));
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

// The partials of every block, then merged in `order` and finished.
template <typename T>
RowMatrix<T> split_merge(SoftmaxAttention<T>& attn, const Problem<T>& p,
                         const std::vector<Index>& cuts, const std::vector<std::size_t>& order) {
  const std::size_t blocks = cuts.size() - 1;
  std::vector<AttentionPartials<T>> parts(blocks);
  for (std::size_t b = 0; b < blocks; ++b) {
    const Index j0 = cuts[b], nb = cuts[b + 1] - cuts[b];
    attn.forward_partial(p.q, p.k.middleRows(j0, nb), p.v.middleRows(j0, nb), parts[b], p.qpos0,
                         j0, p.block_mask(j0, nb));
  }
  AttentionPartials<T> acc(p.nq(), p.heads(), p.dv);
  for (const std::size_t b : order) acc.merge(parts[b]);
  RowMatrix<T> out(p.nq(), p.heads() * p.dv);
  acc.finish(out);
  return out;
}

SoftmaxAttentionConfig config(Index d, Index dv, Index br, Index bc,
                              xfmr::TileProduct product = xfmr::TileProduct::Kernel) {
  SoftmaxAttentionConfig c;
  c.head_dim = d;
  c.value_dim = dv;
  c.query_tile = br;
  c.key_tile = bc;
  c.tile_product = product;
  return c;
}

struct Case {
  Index nq, nk, heads, kv_heads, d, dv, br, bc;
};

// Shapes: one query (the row path), a few rows, odd sizes, GQA, several query and key tiles.
const Case kCases[] = {
    {1, 1, 1, 1, 1, 1, 64, 256},  {1, 77, 4, 2, 16, 16, 64, 16}, {7, 13, 2, 1, 5, 3, 3, 4},
    {17, 40, 4, 2, 8, 11, 5, 7},  {33, 65, 2, 2, 31, 7, 64, 32}, {70, 90, 6, 2, 16, 12, 32, 16},
};

}  // namespace

TEMPLATE_TEST_CASE("Keys split into 1..6 blocks and merged in any order equal full attention",
                   "[attention][partials]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(1);
  int checked = 0;
  for (const Case& c : kCases) {
    for (const auto product : {xfmr::TileProduct::Kernel, xfmr::TileProduct::Eigen}) {
      SoftmaxAttention<T> attn(config(c.d, c.dv, c.br, c.bc, product));
      for (const bool causal : {false, true}) {
        // Queries bottom-right (the contract's alignment), at the start, or in the middle of
        // the key sequence (ring attention's query blocks).
        for (const Index qpos0 : {c.nk - c.nq, Index(0), c.nk / 3}) {
          const Problem<T> p =
              make_problem<T>(rng, c.nq, c.nk, c.heads, c.kv_heads, c.d, c.dv, qpos0, causal);
          const RowMatrix<double> want =
              xfmr_ref::softmax_attention_ld(p.reference(), p.q, p.k, p.v);
          for (int blocks = 1; blocks <= 6; ++blocks) {
            const std::vector<Index> cuts = random_cuts(rng, c.nk, blocks);
            std::vector<std::size_t> order(static_cast<std::size_t>(blocks));
            std::iota(order.begin(), order.end(), std::size_t(0));
            std::shuffle(order.begin(), order.end(), rng);
            const RowMatrix<T> got = split_merge(attn, p, cuts, order);
            INFO("nq=" << c.nq << " nk=" << c.nk << " heads=" << c.heads << "/" << c.kv_heads
                       << " d=" << c.d << " dv=" << c.dv << " causal=" << causal
                       << " qpos0=" << qpos0 << " blocks=" << blocks << " eigen="
                       << (product == xfmr::TileProduct::Eigen));
            REQUIRE(got.allFinite());
            CHECK(xfmr_ref::rel_error(got, want) <= tol<T>());
            ++checked;
          }
        }
      }
    }
  }
  CHECK(checked == 6 * 2 * 2 * 3 * 6);
}

TEMPLATE_TEST_CASE("One block's partials equal the long-double definitions",
                   "[attention][partials]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(2);
  for (const Case& c : kCases) {
    const Index j0 = c.nk / 4;  // the block [j0, nk) of a longer sequence
    const Problem<T> p = make_problem<T>(rng, c.nq, c.nk, c.heads, c.kv_heads, c.d, c.dv,
                                         c.nk - c.nq, true);
    SoftmaxAttention<T> attn(config(c.d, c.dv, c.br, c.bc));
    AttentionPartials<T> got;
    attn.forward_partial(p.q, p.k.bottomRows(c.nk - j0), p.v.bottomRows(c.nk - j0), got, p.qpos0,
                         j0, p.block_mask(j0, c.nk - j0));
    // The reference sees the block with the positions shifted: key j of the block at j0 + j.
    xfmr_ref::AttentionRef r = p.reference();
    const auto full_allowed = r.allowed;
    r.allowed = [&](long i, long j) { return full_allowed(i, j0 + j); };
    const xfmr_ref::PartialsLd want = xfmr_ref::attention_partials_ld(
        r, p.q, p.k.bottomRows(c.nk - j0), p.v.bottomRows(c.nk - j0));
    REQUIRE(got.rows() == c.nq);
    REQUIRE(got.heads() == c.heads);
    REQUIRE(got.value_dim() == c.dv);
    for (Index i = 0; i < c.nq; ++i)
      for (Index h = 0; h < c.heads; ++h) {
        INFO("nq=" << c.nq << " nk=" << c.nk << " row " << i << " head " << h);
        if (want.m(i, h) == -std::numeric_limits<long double>::infinity()) {
          // No allowed key in the block (query before j0): the exact identity.
          CHECK(got.m(i, h) == -std::numeric_limits<T>::infinity());
          CHECK(got.l(i, h) == T(0));
          CHECK((got.o.row(i).segment(h * c.dv, c.dv).array() == T(0)).all());
          continue;
        }
        const double m = double(want.m(i, h)), l = double(want.l(i, h));
        CHECK(std::abs(double(got.m(i, h)) - m) <= 8 * tol<T>() * std::max(1.0, std::abs(m)));
        CHECK(std::abs(double(got.l(i, h)) - l) <= 8 * tol<T>() * l);
        for (Index t = 0; t < c.dv; ++t)
          CHECK(std::abs(double(got.o(i, h * c.dv + t)) - double(want.o(i, h * c.dv + t))) <=
                8 * tol<T>() * l);
      }
  }
}

TEMPLATE_TEST_CASE("Masked rows, key padding, boolean masks and bias split like full attention",
                   "[attention][partials]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(3);
  const Index nq = 23, nk = 57, heads = 4, kv_heads = 2, d = 9, dv = 6;
  for (const bool causal : {false, true}) {
    Problem<T> p = make_problem<T>(rng, nq, nk, heads, kv_heads, d, dv, nk - nq, causal);
    p.key_valid = BoolVec::Constant(nk, true);
    for (Index j = 0; j < nk; j += 3) p.key_valid[j] = false;
    p.allowed = BoolMat::Constant(nq, nk, true);
    for (Index j = 0; j < nk; ++j) p.allowed(5, j) = false;  // row 5 sees nothing
    for (Index j = 0; j < nk; ++j) p.allowed(6, j) = (j == 40);  // row 6 one key
    for (Index i = 7; i < nq; i += 4)
      for (Index j = 0; j < nk; j += 5) p.allowed(i, j) = false;
    p.bias = xfmr_test::random_matrix<T>(rng, nq, nk, -1, 1);
    p.bias(9, 10) = -std::numeric_limits<T>::infinity();  // −inf bias masks one pair
    const RowMatrix<double> want = xfmr_ref::softmax_attention_ld(p.reference(), p.q, p.k, p.v);
    for (const auto product : {xfmr::TileProduct::Kernel, xfmr::TileProduct::Eigen}) {
      SoftmaxAttention<T> attn(config(d, dv, 8, 8, product));
      // The full forward with the same mask (bottom-right = qpos0 here) agrees too.
      RowMatrix<T> full(nq, heads * dv);
      attn.forward(p.q, p.k, p.v, full, p.block_mask(0, nk));
      for (int blocks = 1; blocks <= 5; ++blocks) {
        const std::vector<Index> cuts = random_cuts(rng, nk, blocks);
        std::vector<std::size_t> order(static_cast<std::size_t>(blocks));
        std::iota(order.rbegin(), order.rend(), std::size_t(0));  // last block first
        const RowMatrix<T> got = split_merge(attn, p, cuts, order);
        INFO("causal=" << causal << " blocks=" << blocks);
        REQUIRE(got.allFinite());
        CHECK(xfmr_ref::rel_error(got, want) <= tol<T>());
        CHECK(xfmr_ref::rel_error(got, full.template cast<double>()) <= tol<T>());
        CHECK((got.row(5).array() == T(0)).all());  // no allowed key: exact zeros
      }
    }
  }
}

TEST_CASE("Causal queries before every key of a block get the exact identity",
          "[attention][partials]") {
  auto rng = xfmr_test::make_rng(4);
  const Index n = 20, d = 8;
  const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, n, 2 * d);
  const RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, n, d);
  AttentionMask<float> causal;
  causal.set_causal();
  for (const auto product : {xfmr::TileProduct::Kernel, xfmr::TileProduct::Eigen}) {
    SoftmaxAttention<float> attn(config(d, d, 8, 4, product));
    AttentionPartials<float> p;
    // Queries at 0..19, keys at 100..119: all in the future.
    attn.forward_partial(q, k, k, p, 0, 100, causal);
    CHECK((p.m.array() == -std::numeric_limits<float>::infinity()).all());
    CHECK((p.l.array() == 0.0f).all());
    CHECK((p.o.array() == 0.0f).all());
    // No keys at all: the identity as well.
    attn.forward_partial(q, k.topRows(0), k.topRows(0), p, 0, 0);
    CHECK((p.m.array() == -std::numeric_limits<float>::infinity()).all());
    CHECK((p.l.array() == 0.0f).all());
    CHECK(p.o.rows() == n);
    CHECK(p.o.cols() == 2 * d);
    CHECK((p.o.array() == 0.0f).all());
    // Queries at 10..29 against keys at 20..39: row i sees keys 20..10+i, none for i < 10.
    attn.forward_partial(q, k, k, p, 10, 20, causal);
    CHECK((p.l.topRows(10).array() == 0.0f).all());
    CHECK((p.l.bottomRows(10).array() > 0.0f).all());
  }
}

TEST_CASE("Merge: the identity merges exactly, fixed order is bit-reproducible",
          "[attention][partials]") {
  auto rng = xfmr_test::make_rng(5);
  const Index nq = 31, nk = 100, heads = 4, d = 16;
  Problem<float> p = make_problem<float>(rng, nq, nk, heads, 1, d, d, 69, true);
  SoftmaxAttention<float> attn(config(d, d, 16, 16));
  AttentionPartials<float> a, b;
  attn.forward_partial(p.q, p.k.topRows(40), p.v.topRows(40), a, p.qpos0, 0, p.block_mask(0, 40));
  attn.forward_partial(p.q, p.k.bottomRows(60), p.v.bottomRows(60), b, p.qpos0, 40,
                       p.block_mask(40, 60));
  const AttentionPartials<float> identity(nq, heads, d);
  AttentionPartials<float> x = a;
  x.merge(identity);  // a ⊕ identity = a, bit for bit
  CHECK(same_bits(x.m, a.m));
  CHECK(same_bits(x.l, a.l));
  CHECK(same_bits(x.o, a.o));
  AttentionPartials<float> y = identity;
  y.merge(a);  // identity ⊕ a = a
  CHECK(same_bits(y.m, a.m));
  CHECK(same_bits(y.l, a.l));
  CHECK(same_bits(y.o, a.o));
  AttentionPartials<float> z = identity;
  z.merge(identity);  // e^{−∞−(−∞)} never evaluated: still the identity, no NaN
  CHECK((z.m.array() == -std::numeric_limits<float>::infinity()).all());
  CHECK((z.l.array() == 0.0f).all());
  CHECK((z.o.array() == 0.0f).all());
  RowMatrix<float> zero = RowMatrix<float>::Constant(nq, heads * d, 7.0f);
  z.finish(zero);
  CHECK((zero.array() == 0.0f).all());

  // The same blocks merged in the same order twice, once with 3 threads: identical bits.
  auto run = [&](int threads) {
    auto c = config(d, d, 16, 16);
    c.threads = threads;
    SoftmaxAttention<float> at(c);
    const std::vector<Index> cuts{0, 13, 13, 50, 77, 100};
    return split_merge(at, p, cuts, {3, 0, 4, 1, 2});
  };
  const RowMatrix<float> r1 = run(1), r2 = run(1), r3 = run(3);
  CHECK(same_bits(r1, r2));
  CHECK(same_bits(r1, r3));
  // Merging is commutative up to rounding.
  AttentionPartials<float> ab = a, ba = b;
  ab.merge(b);
  ba.merge(a);
  RowMatrix<float> oab(nq, heads * d), oba(nq, heads * d);
  ab.finish(oab);
  ba.finish(oba);
  CHECK((oab - oba).cwiseAbs().maxCoeff() <= 1e-6f * oab.cwiseAbs().maxCoeff());
}

TEST_CASE("Merge and finish propagate NaN and keep ±inf scores non-finite",
          "[attention][partials]") {
  auto rng = xfmr_test::make_rng(6);
  const Index n = 12, d = 4;
  RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, n, d);
  RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, n, d);
  const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, n, d);
  for (const auto product : {xfmr::TileProduct::Kernel, xfmr::TileProduct::Eigen}) {
    SoftmaxAttention<double> attn(config(d, d, 4, 4, product));
    RowMatrix<double> kn = k;
    kn(8, 1) = std::numeric_limits<double>::quiet_NaN();  // key 8 NaN: in block 2 only
    RowMatrix<double> qn = q;
    qn(3, 0) = std::numeric_limits<double>::infinity();  // query 3 infinite
    AttentionPartials<double> p1, p2;
    attn.forward_partial(qn, kn.topRows(6), v.topRows(6), p1, 0, 0);
    attn.forward_partial(qn, kn.bottomRows(6), v.bottomRows(6), p2, 0, 6);
    p1.merge(p2);
    RowMatrix<double> out(n, d);
    p1.finish(out);
    for (Index i = 0; i < n; ++i) CHECK(out.row(i).array().isNaN().all());  // all see key 8
    // Without the NaN key only the infinite query's row is non-finite.
    attn.forward_partial(qn, k.topRows(6), v.topRows(6), p1, 0, 0);
    attn.forward_partial(qn, k.bottomRows(6), v.bottomRows(6), p2, 0, 6);
    p2.merge(p1);
    p2.finish(out);
    for (Index i = 0; i < n; ++i) CHECK(out.row(i).allFinite() == (i != 3));
  }
}

TEST_CASE("Log-position scale and pos0: blocks equal forward with the same pos0",
          "[attention][partials]") {
  auto rng = xfmr_test::make_rng(7);
  const Index nq = 9, nk = 30, d = 8, pos0 = 1000;
  const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, nq, d, -2, 2);
  const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, nk, d, -2, 2);
  const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, nk, d);
  auto c = config(d, d, 4, 8);
  c.scale = xfmr::AttentionScale::log_position(16.0);
  SoftmaxAttention<double> attn(c);
  AttentionMask<double> causal;
  causal.set_causal();
  RowMatrix<double> full(nq, d), split(nq, d);
  attn.forward(q, k, v, full, causal, pos0);
  AttentionPartials<double> a, b;
  attn.forward_partial(q, k.topRows(11), v.topRows(11), a, pos0 + nk - nq, pos0, causal);
  attn.forward_partial(q, k.bottomRows(19), v.bottomRows(19), b, pos0 + nk - nq, pos0 + 11,
                       causal);
  b.merge(a);
  b.finish(split);
  CHECK((split - full).cwiseAbs().maxCoeff() <= 1e-13);
  // And the scale really moved (pos0 = 0 gives a different result).
  attn.forward(q, k, v, full, causal, 0);
  CHECK((split - full).cwiseAbs().maxCoeff() > 1e-6);
}

TEST_CASE("finish: strided and misaligned out, in place on o, guards intact",
          "[attention][partials]") {
  auto rng = xfmr_test::make_rng(8);
  const Index n = 11, heads = 3, d = 5;
  Problem<float> p = make_problem<float>(rng, n, 17, heads, heads, d, d, 6, true);
  SoftmaxAttention<float> attn(config(d, d, 4, 4));
  AttentionPartials<float> part;
  attn.forward_partial(p.q, p.k, p.v, part, p.qpos0, 0, p.block_mask(0, 17));
  RowMatrix<float> want(n, heads * d);
  attn.forward(p.q, p.k, p.v, want, p.block_mask(0, 17));
  for (std::size_t offset = 0; offset < 3; ++offset) {
    const Index stride = heads * d + 2;
    xfmr_test::Guarded<float> buf(std::size_t((n - 1) * stride + heads * d), offset);
    Eigen::Map<RowMatrix<float>, 0, Eigen::OuterStride<>> out(buf.data(), n, heads * d,
                                                              Eigen::OuterStride<>(stride));
    part.finish(out);
    CHECK(buf.guards_intact());
    CHECK((RowMatrix<float>(out) - want).cwiseAbs().maxCoeff() <= 1e-6f);
    for (Index i = 0; i + 1 < n; ++i)  // the gap columns are untouched (still NaN)
      CHECK(std::isnan(buf[std::size_t(i * stride + heads * d)]));
  }
  AttentionPartials<float> inplace = part;
  inplace.finish(inplace.o);
  CHECK((inplace.o - want).cwiseAbs().maxCoeff() <= 1e-6f);
}

TEST_CASE("Partials: bad input, messages", "[attention][partials][errors]") {
  SoftmaxAttention<float> attn(config(4, 3, 8, 8));
  const RowMatrix<float> q = RowMatrix<float>::Ones(5, 8), k = RowMatrix<float>::Ones(6, 8),
                         v = RowMatrix<float>::Ones(6, 6);
  AttentionPartials<float> p;
  attn.forward_partial(q, k, v, p, 0, 0);
  CHECK(p.rows() == 5);
  CHECK(p.heads() == 2);
  CHECK(p.value_dim() == 3);
  XFMR_REQUIRE_INVALID(attn.forward_partial(q, k, v, p, -1, 0),
                       "xfmr::SoftmaxAttention: forward_partial expected query_pos0 >= 0 and "
                       "key_pos0 >= 0 (got -1 and 0)");
  XFMR_REQUIRE_INVALID(attn.forward_partial(q, k, v, p, 0, -2), "(got 0 and -2)");
  AttentionMask<float> seg;
  seg.set_segment_ids(Eigen::VectorXi::Zero(6));
  XFMR_REQUIRE_INVALID(attn.forward_partial(q, k, v, p, 0, 0, seg),
                       "xfmr::SoftmaxAttention: segment (UniLM) masks are not supported "
                       "(forward_partial: the cumulative segment ids need every key");
  auto c = config(4, 3, 8, 8);
  c.scale = xfmr::AttentionScale::log_n();
  SoftmaxAttention<float> logn(c);
  XFMR_REQUIRE_INVALID(logn.forward_partial(q, k, v, p, 0, 0),
                       "forward_partial expected a scale that does not count the allowed keys "
                       "(got the log-n scale");
  XFMR_REQUIRE_INVALID(attn.forward_partial(RowMatrix<float>::Ones(5, 7), k, v, p, 0, 0),
                       "expected q.cols() to be a positive multiple of head_dim=4 (got q.cols()=7)");
  XFMR_REQUIRE_INVALID(attn.forward_partial(q, k, RowMatrix<float>::Ones(7, 6), p, 0, 0),
                       "expected v.rows() = k.rows() (got v.rows()=7, k.rows()=6)");
  AttentionMask<float> short_valid;
  short_valid.set_key_valid(BoolVec::Constant(5, true));
  XFMR_REQUIRE_INVALID(attn.forward_partial(q, k, v, p, 0, 0, short_valid),
                       "mask.key_valid must have n_k=6 entries (got 5)");

  AttentionPartials<float> a(5, 2, 3), b(5, 2, 4), c3(4, 2, 3);
  XFMR_REQUIRE_INVALID(a.merge(b), "xfmr::AttentionPartials: merge expected partials of the same "
                                   "shape: 5 rows, 2 heads, value_dim=3 (got 5 rows, 2 heads, o "
                                   "with 8 columns)");
  XFMR_REQUIRE_INVALID(a.merge(c3), "(got 4 rows, 2 heads, o with 6 columns)");
  AttentionPartials<float> broken = a;
  broken.l.resize(5, 3);
  XFMR_REQUIRE_INVALID(a.merge(broken), "merge expected l to be 5x2 and o 5x(heads·value_dim) "
                                        "with heads=2 (got l 5x3, o 5x6)");
  RowMatrix<float> out(5, 5);
  XFMR_REQUIRE_INVALID(a.finish(out), "xfmr::AttentionPartials: finish expected out to be 5x6 "
                                      "(got 5x5)");
  Eigen::Map<RowMatrix<float>, 0, Eigen::OuterStride<>> shifted(a.o.data() + 1, 4, 6,
                                                                Eigen::OuterStride<>(6));
  XFMR_REQUIRE_INVALID(a.finish(shifted), "finish expected out to be 5x6 (got 4x6)");
  // Rows 5 apart over o's rows 6 apart, one element in: shares elements without being o.
  Eigen::Map<RowMatrix<float>, 0, Eigen::OuterStride<>> overlap(a.o.data() + 1, 5, 6,
                                                                Eigen::OuterStride<>(5));
  XFMR_REQUIRE_INVALID(a.finish(overlap),
                       "out must be the input itself (same data and stride) or not overlap it");
  XFMR_REQUIRE_INVALID(AttentionPartials<float>(-1, 2, 3),
                       "xfmr::AttentionPartials: expected rows, heads and value_dim >= 0 (got "
                       "-1, 2, 3)");
}

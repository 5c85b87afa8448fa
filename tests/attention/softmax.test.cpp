// SPDX-License-Identifier: MIT
// SoftmaxAttention against the naive double reference (tests/reference/attention.hpp), the
// SPEC §4.5 properties, the tile product (every ISA), and errors (the row kernels of
// simd/softmax.hpp are tested in tests/simd/softmax.test.cpp).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/softmax.hpp>
#include <xfmr/simd/softmax.hpp>
#include <xfmr/tensor.hpp>

#include "reference/attention.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::AttentionMask;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::SoftmaxAttention;
using xfmr::SoftmaxAttentionConfig;

namespace {

template <typename T>
constexpr double tol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

SoftmaxAttentionConfig config(Index d, Index dv = 0, Index br = 64, Index bc = 256) {
  SoftmaxAttentionConfig c;
  c.head_dim = d;
  c.value_dim = dv;
  c.query_tile = br;
  c.key_tile = bc;
  return c;
}

struct Case {
  Index nq, nk, heads, kv_heads, d, dv, br, bc;
  bool causal;
};

template <typename T>
void check_case(const Case& c, xfmr::TileProduct product, std::uint64_t salt) {
  auto rng = xfmr_test::make_rng(salt);
  const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, c.nq, c.heads * c.d, -2, 2);
  const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, c.nk, c.kv_heads * c.d, -2, 2);
  const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, c.nk, c.kv_heads * c.dv);
  RowMatrix<T> out = RowMatrix<T>::Constant(c.nq, c.heads * c.dv, std::numeric_limits<T>::quiet_NaN());
  auto cfg = config(c.d, c.dv, c.br, c.bc);
  cfg.tile_product = product;
  SoftmaxAttention<T> attn(cfg);
  AttentionMask<T> mask;
  mask.set_causal(c.causal);
  attn.forward(q, k, v, out, mask);
  xfmr_ref::AttentionRef r;
  r.d = c.d;
  r.dv = c.dv;
  r.causal = c.causal;
  const auto want = xfmr_ref::softmax_attention(r, q, k, v);
  INFO("nq=" << c.nq << " nk=" << c.nk << " heads=" << c.heads << "/" << c.kv_heads << " d=" << c.d
             << " dv=" << c.dv << " tiles=" << c.br << "x" << c.bc << " causal=" << c.causal);
  CHECK(out.allFinite());
  CHECK(xfmr_ref::rel_error(out, want) <= tol<T>());
}

const Case kCases[] = {
    {1, 1, 1, 1, 1, 1, 64, 256, false},    {7, 13, 2, 1, 5, 3, 3, 4, false},
    {13, 13, 3, 3, 9, 9, 4, 5, true},      {17, 40, 4, 2, 8, 11, 5, 7, true},
    {1, 300, 8, 2, 64, 64, 64, 256, true}, {100, 100, 1, 1, 17, 17, 16, 16, true},
    {33, 65, 2, 2, 31, 7, 64, 256, false}, {70, 70, 2, 1, 16, 16, 64, 32, true},
    // Decoding (grouped row kernels): groups of 3 and 5 (MQA), two and three query rows,
    // odd d and d_v, several key tiles with a short last one.
    {1, 53, 6, 2, 37, 13, 64, 16, false},  {2, 41, 6, 2, 9, 5, 64, 8, true},
    {3, 29, 5, 1, 16, 16, 64, 7, true},    {1, 1, 4, 4, 8, 8, 64, 256, false},
};

}  // namespace

TEMPLATE_TEST_CASE("SoftmaxAttention equals the naive reference (shapes, tails, GQA, causal)",
                   "[attention][softmax]", float, double) {
  std::uint64_t salt = 1;
  for (const auto& c : kCases) {
    check_case<TestType>(c, xfmr::TileProduct::Kernel, salt);
    check_case<TestType>(c, xfmr::TileProduct::Eigen, salt++);
  }
}

TEST_CASE("SoftmaxAttention float at n = 4096 (relative error <= 1e-5)", "[attention][softmax]") {
  const Index n = 4096, d = 64;
  auto rng = xfmr_test::make_rng(11);
  const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, n, d, -2, 2);
  const RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, n, d, -2, 2);
  const RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, n, d);
  RowMatrix<float> out(n, d);
  SoftmaxAttention<float>(config(d)).forward(q, k, v, out);
  // Non-causal, so any subset of queries gives the same rows: check every 16th.
  const Index step = 16;
  RowMatrix<float> qs(n / step, d), got(n / step, d);
  for (Index i = 0; i < n / step; ++i) {
    qs.row(i) = q.row(i * step);
    got.row(i) = out.row(i * step);
  }
  xfmr_ref::AttentionRef r;
  r.d = r.dv = d;
  CHECK(xfmr_ref::rel_error(got, xfmr_ref::softmax_attention(r, qs, k, v)) <= 1e-5);
}

TEMPLATE_TEST_CASE("Online softmax equals the two-pass softmax (one key tile)",
                   "[attention][softmax]", float, double) {
  auto rng = xfmr_test::make_rng(3);
  const Index n = 203, d = 24;
  // Large score range so that the running max changes often.
  const RowMatrix<TestType> q = xfmr_test::random_matrix<TestType>(rng, n, d, -4, 4);
  const RowMatrix<TestType> k = xfmr_test::random_matrix<TestType>(rng, n, d, -4, 4);
  const RowMatrix<TestType> v = xfmr_test::random_matrix<TestType>(rng, n, d);
  for (const bool causal : {false, true}) {
    AttentionMask<TestType> mask;
    mask.set_causal(causal);
    RowMatrix<TestType> one(n, d), tiled(n, d);
    SoftmaxAttention<TestType>(config(d, 0, n, n)).forward(q, k, v, one, mask);  // two-pass
    SoftmaxAttention<TestType>(config(d, 0, 9, 8)).forward(q, k, v, tiled, mask);
    CHECK(xfmr_ref::rel_error(tiled, one.template cast<double>()) <= tol<TestType>());
  }
}

TEST_CASE("Implied weights: rows sum to 1, masked entries exactly 0", "[attention][softmax]") {
  auto rng = xfmr_test::make_rng(4);
  const Index n = 37, d = 8;
  const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, n, d, -3, 3);
  const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, n, d, -3, 3);
  const RowMatrix<double> v = RowMatrix<double>::Identity(n, n);  // out = weights
  RowMatrix<double> a(n, n);
  AttentionMask<double> mask;
  mask.set_causal();
  SoftmaxAttention<double>(config(d, n, 8, 8)).forward(q, k, v, a, mask);
  xfmr_ref::AttentionRef r;
  r.d = d;
  r.causal = true;
  const auto want = xfmr_ref::attention_weights(r, q, k, 0, 0);
  for (Index i = 0; i < n; ++i) {
    CHECK(a.row(i).sum() == Approx(1.0).epsilon(1e-13));
    for (Index j = i + 1; j < n; ++j) CHECK(a(i, j) == 0.0);
  }
  CHECK(xfmr_ref::rel_error(a, want) <= 1e-12);
  // Adding a constant to every score of a row (a bias constant per row) changes nothing.
  RowMatrix<double> bias(n, n);
  for (Index i = 0; i < n; ++i) bias.row(i).setConstant(double(i) * 3.5 - 40);
  mask.set_bias(bias);
  RowMatrix<double> b(n, n);
  SoftmaxAttention<double>(config(d, n, 8, 8)).forward(q, k, v, b, mask);
  CHECK((a - b).cwiseAbs().maxCoeff() <= 1e-13);
}

TEST_CASE("Causal: output i does not depend on inputs after i", "[attention][softmax]") {
  auto rng = xfmr_test::make_rng(5);
  const Index n = 50, d = 16;
  RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, n, 2 * d);
  RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, n, 2 * d);
  RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, n, 2 * d);
  AttentionMask<float> mask;
  mask.set_causal();
  SoftmaxAttention<float> attn(config(d, 0, 8, 8));
  RowMatrix<float> before(n, 2 * d), after(n, 2 * d);
  attn.forward(q, k, v, before, mask);
  const Index cut = 23;
  const auto noise = xfmr_test::random_matrix<float>(rng, n - cut - 1, 2 * d, -5, 5);
  q.bottomRows(n - cut - 1) += noise;
  k.bottomRows(n - cut - 1) -= noise;
  v.bottomRows(n - cut - 1) += 2 * noise;
  attn.forward(q, k, v, after, mask);
  CHECK(before.topRows(cut + 1) == after.topRows(cut + 1));
  CHECK(before.bottomRows(n - cut - 1) != after.bottomRows(n - cut - 1));
}

TEST_CASE("KV-cache decode equals the full causal recompute", "[attention][softmax]") {
  auto rng = xfmr_test::make_rng(6);
  const Index n = 90, d = 16, heads = 4, kv_heads = 2;
  const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, n, heads * d);
  const RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, n, kv_heads * d);
  const RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, n, kv_heads * d);
  AttentionMask<float> causal;
  causal.set_causal();
  SoftmaxAttention<float> attn(config(d, 0, 16, 32));
  RowMatrix<float> full(n, heads * d), step(1, heads * d), chunk(5, heads * d);
  attn.forward(q, k, v, full, causal);
  for (Index t = 0; t < n; ++t) {
    // One new query against the cache [0, t]: no mask needed (it sees every cached key) and
    // the causal mask gives the same (bottom-right alignment).
    attn.forward(q.middleRows(t, 1), k.topRows(t + 1), v.topRows(t + 1), step);
    CHECK((step - full.row(t)).cwiseAbs().maxCoeff() <= 1e-6f);
    attn.forward(q.middleRows(t, 1), k.topRows(t + 1), v.topRows(t + 1), step, causal);
    CHECK((step - full.row(t)).cwiseAbs().maxCoeff() <= 1e-6f);
  }
  // A block of 5 new queries at the end of the cache (chunked prefill).
  attn.forward(q.bottomRows(5), k, v, chunk, causal);
  CHECK((chunk - full.bottomRows(5)).cwiseAbs().maxCoeff() <= 1e-6f);
}

TEST_CASE("Grouped-query decode: threads, key lengths and the Eigen path agree",
          "[attention][softmax]") {
  auto rng = xfmr_test::make_rng(12);
  const Index nk = 77, d = 24, heads = 8, kv_heads = 2;
  const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, 2, heads * d, -2, 2);
  const RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, nk, kv_heads * d, -2, 2);
  const RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, nk, kv_heads * d);
  for (const Index nq : {Index(1), Index(2)}) {
    AttentionMask<float> mask;
    mask.set_key_length(50);
    mask.set_causal();
    RowMatrix<float> one(nq, heads * d), two(nq, heads * d), eig(nq, heads * d);
    auto cfg = config(d, 0, 64, 16);
    SoftmaxAttention<float>(cfg).forward(q.topRows(nq), k, v, one, mask);
    cfg.threads = 2;
    SoftmaxAttention<float>(cfg).forward(q.topRows(nq), k, v, two, mask);
    cfg.threads = 1;
    cfg.tile_product = xfmr::TileProduct::Eigen;
    SoftmaxAttention<float>(cfg).forward(q.topRows(nq), k, v, eig, mask);
    INFO("nq " << nq);
    CHECK(one == two);  // the result does not depend on the thread count
    CHECK((one - eig).cwiseAbs().maxCoeff() <= 1e-5f);
    xfmr_ref::AttentionRef r;
    r.d = r.dv = d;
    r.causal = true;
    r.key_length = 50;
    CHECK(xfmr_ref::rel_error(one, xfmr_ref::softmax_attention(r, q.topRows(nq), k, v)) <= 1e-5);
  }
}

TEST_CASE("Grouped-query attention equals repeated K/V heads", "[attention][softmax]") {
  auto rng = xfmr_test::make_rng(8);
  const Index n = 41, d = 12, heads = 6, kv_heads = 2, dv = 10;
  const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, n, heads * d);
  const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, n, kv_heads * d);
  const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, n, kv_heads * dv);
  RowMatrix<double> kr(n, heads * d), vr(n, heads * dv);
  for (Index h = 0; h < heads; ++h) {
    kr.middleCols(h * d, d) = k.middleCols((h / 3) * d, d);
    vr.middleCols(h * dv, dv) = v.middleCols((h / 3) * dv, dv);
  }
  SoftmaxAttention<double> attn(config(d, dv, 8, 16));
  RowMatrix<double> gqa(n, heads * dv), mha(n, heads * dv);
  attn.forward(q, k, v, gqa);
  attn.forward(q, kr, vr, mha);
  CHECK((gqa - mha).cwiseAbs().maxCoeff() <= 1e-15);
}

TEST_CASE("Strided views: heads cut from wider buffers, out a block of a larger matrix",
          "[attention][softmax]") {
  auto rng = xfmr_test::make_rng(9);
  const Index n = 29, d = 7;
  // A fused [q | k | v] projection output, 2 heads each, plus 3 unrelated columns.
  const RowMatrix<float> qkv = xfmr_test::random_matrix<float>(rng, n, 6 * d + 3);
  RowMatrix<float> big = RowMatrix<float>::Constant(n + 2, 2 * d + 5, 42.0f);
  SoftmaxAttention<float> attn(config(d, 0, 4, 8));
  AttentionMask<float> mask;
  mask.set_causal();
  attn.forward(qkv.middleCols(1, 2 * d), qkv.middleCols(1 + 2 * d, 2 * d),
               qkv.middleCols(1 + 4 * d, 2 * d), big.block(1, 2, n, 2 * d), mask);
  const RowMatrix<float> q = qkv.middleCols(1, 2 * d), k = qkv.middleCols(1 + 2 * d, 2 * d),
                         v = qkv.middleCols(1 + 4 * d, 2 * d);
  xfmr_ref::AttentionRef r;
  r.d = r.dv = d;
  r.causal = true;
  CHECK(xfmr_ref::rel_error(big.block(1, 2, n, 2 * d), xfmr_ref::softmax_attention(r, q, k, v)) <= 1e-5);
  CHECK((big.row(0).array() == 42.0f).all());
  CHECK((big.row(n + 1).array() == 42.0f).all());
  CHECK((big.leftCols(2).array() == 42.0f).all());
  CHECK((big.rightCols(3).array() == 42.0f).all());
}

TEST_CASE("Threads: any thread count and pool gives the same bits as one thread",
          "[attention][softmax][threads]") {
  // Parts over (head, query tile) items: 1 and 3 heads (GQA 3 → 1 K/V head), causal (unequal
  // tiles) and not, both tile paths, a decoding shape (few query rows: the row path), thread
  // counts 1, 2, 3, 5 on the default pool and on pools of 1, 2 and 3 threads, warm objects.
  auto rng = xfmr_test::make_rng(10);
  const Index d = 16;
  xfmr::ThreadPool pool1(1), pool2(2), pool3(3);
  for (const Index heads : {Index(1), Index(3)})
    for (const Index kv_heads : {Index(1), heads})
      for (const Index nq : {Index(130), Index(3)}) {
        const Index nk = 130;
        const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, nq, heads * d, -2, 2);
        const RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, nk, kv_heads * d, -2, 2);
        const RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, nk, kv_heads * d);
        for (const bool causal : {false, true})
          for (const auto product : {xfmr::TileProduct::Kernel, xfmr::TileProduct::Eigen}) {
            AttentionMask<float> mask;
            mask.set_causal(causal);
            auto c1 = config(d, 0, nq == 3 ? 1 : 16, 32);
            c1.tile_product = product;
            RowMatrix<float> one(nq, heads * d);
            SoftmaxAttention<float>(c1).forward(q, k, v, one, mask);
            for (const int threads : {1, 2, 3, 5})
              for (xfmr::ThreadPool* pool : {static_cast<xfmr::ThreadPool*>(nullptr), &pool1,
                                             &pool2, &pool3}) {
                INFO("heads " << heads << " kv " << kv_heads << " nq " << nq << " causal "
                              << causal << " threads " << threads << " pool "
                              << (pool ? pool->threads() : 0));
                auto c = c1;
                c.threads = threads;
                c.pool = pool;
                SoftmaxAttention<float> attn(c);
                RowMatrix<float> many(nq, heads * d);
                attn.forward(q, k, v, many, mask);
                REQUIRE(many == one);
                many.setConstant(std::numeric_limits<float>::quiet_NaN());
                attn.forward(q, k, v, many, mask);  // warm scratch: same bits
                REQUIRE(many == one);
              }
          }
      }
}

TEST_CASE("Kernel path: the query-tile partition (query_tile, threads) never changes the bits",
          "[attention][softmax][threads]") {
  // The kernel path deals whole query blocks to tiles (more tiles with threads, in a snake
  // order) and is chosen per call, so a short last tile (10 rows for query_tile 97, under nr/4 = 12 with AVX-512) does not
  // take the row path; a block's key tiles are the same in any tile. Key tiles of 100 and 200
  // (past the GEMM engine's kc = 128 floats with AVX-512: the P·V sum splits into k blocks),
  // causal ramps, 2 heads, an odd n_q.
  auto rng = xfmr_test::make_rng(14);
  const Index d = 8, heads = 2, nq = 301, nk = 307;
  const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, nq, heads * d, -2, 2);
  const RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, nk, heads * d, -2, 2);
  const RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, nk, heads * d);
  for (const Index bc : {Index(100), Index(200)})
    for (const bool causal : {false, true}) {
      AttentionMask<float> mask;
      mask.set_causal(causal);
      RowMatrix<float> one(nq, heads * d);
      SoftmaxAttention<float>(config(d, 0, 1000, bc)).forward(q, k, v, one, mask);
      for (const Index br : {Index(50), Index(97), Index(256)})
        for (const int threads : {1, 2, 3}) {
          INFO("key_tile " << bc << " causal " << causal << " query_tile " << br << " threads "
                           << threads);
          auto c = config(d, 0, br, bc);
          c.threads = threads;
          RowMatrix<float> many(nq, heads * d);
          SoftmaxAttention<float>(c).forward(q, k, v, many, mask);
          REQUIRE(many == one);
        }
    }
}

TEST_CASE("Tensor views [tokens, heads, dim] and [batch, tokens, heads, dim]",
          "[attention][softmax]") {
  auto rng = xfmr_test::make_rng(12);
  const Index batch = 3, n = 11, heads = 2, d = 6;
  const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, batch * n, heads * d);
  const RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, batch * n, heads * d);
  const RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, batch * n, heads * d);
  SoftmaxAttention<float> attn(config(d, 0, 4, 4));
  using CT4 = SoftmaxAttention<float>::ConstTensor4;
  using T4 = SoftmaxAttention<float>::Tensor4;
  using CT3 = SoftmaxAttention<float>::ConstTensor3;
  using T3 = SoftmaxAttention<float>::Tensor3;
  RowMatrix<float> out4(batch * n, heads * d), out3(n, heads * d), want(n, heads * d);
  Eigen::Matrix<Index, Eigen::Dynamic, 1> lens(3);
  lens << 11, 4, 7;
  AttentionMask<float> mask;
  mask.set_causal().set_key_lengths(lens);
  attn.forward(CT4(q.data(), batch, n, heads, d), CT4(k.data(), batch, n, heads, d),
               CT4(v.data(), batch, n, heads, d), T4(out4.data(), batch, n, heads, d), mask);
  for (Index b = 0; b < batch; ++b) {
    AttentionMask<float> mb;
    mb.set_causal().set_key_length(lens[b]);
    attn.forward(q.middleRows(b * n, n), k.middleRows(b * n, n), v.middleRows(b * n, n), want, mb);
    CHECK(out4.middleRows(b * n, n) == want);
  }
  attn.forward(CT3(q.data(), n, heads, d), CT3(k.data(), n, heads, d), CT3(v.data(), n, heads, d),
               T3(out3.data(), n, heads, d));
  attn.forward(q.topRows(n), k.topRows(n), v.topRows(n), want);
  CHECK(out3 == want);
  XFMR_REQUIRE_INVALID(attn.forward(CT3(q.data(), n, 3, 4), CT3(k.data(), n, 3, 4),
                                    CT3(v.data(), n, 3, 4), T3(out3.data(), n, 3, 4)),
                       "expected the last dimension of q and k to be head_dim=6 (got 4 and 4)");
}

TEST_CASE("Bias (shared and per head) and boolean masks against the reference",
          "[attention][softmax]") {
  auto rng = xfmr_test::make_rng(13);
  const Index nq = 19, nk = 31, heads = 2, d = 8;
  const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, nq, heads * d);
  const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, nk, heads * d);
  const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, nk, heads * d);
  const RowMatrix<double> bias = xfmr_test::random_matrix<double>(rng, heads * nq, nk, -3, 3);
  Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> allowed(nq, nk);
  Eigen::Matrix<bool, Eigen::Dynamic, 1> valid(nk);
  std::bernoulli_distribution coin(0.7);
  for (Index i = 0; i < allowed.size(); ++i) allowed.data()[i] = coin(rng);
  for (Index j = 0; j < nk; ++j) valid[j] = coin(rng);
  SoftmaxAttention<double> attn(config(d, 0, 4, 8));
  for (const bool per_head : {false, true}) {
    AttentionMask<double> mask;
    if (per_head)
      mask.set_bias(bias);
    else
      mask.set_bias(bias.topRows(nq));  // a view of rows [0, nq), shared by the heads
    mask.set_allowed(allowed).set_key_valid(valid).set_causal();
    RowMatrix<double> out(nq, heads * d);
    attn.forward(q, k, v, out, mask);
    xfmr_ref::AttentionRef r;
    r.d = r.dv = d;
    r.causal = true;
    r.key_valid.assign(valid.data(), valid.data() + nk);
    r.allowed = [&](long i, long j) { return allowed(i, j); };
    r.bias = [&](long h, long i, long j) { return per_head ? bias(h * nq + i, j) : bias(i, j); };
    CHECK(xfmr_ref::rel_error(out, xfmr_ref::softmax_attention(r, q, k, v)) <= 1e-12);
  }
}

TEST_CASE("Scales: none, user factor, log-n (entropy-invariant), log-position",
          "[attention][softmax][scale]") {
  auto rng = xfmr_test::make_rng(14);
  const Index nq = 40, nk = 600, d = 16;
  const RowMatrix<double> q = xfmr_test::random_matrix<double>(rng, nq, d, -2, 2);
  const RowMatrix<double> k = xfmr_test::random_matrix<double>(rng, nk, d, -2, 2);
  const RowMatrix<double> v = xfmr_test::random_matrix<double>(rng, nk, d);
  auto run = [&](const xfmr::AttentionScale& s, const AttentionMask<double>& mask) {
    auto c = config(d, 0, 16, 64);
    c.scale = s;
    RowMatrix<double> out(nq, d);
    SoftmaxAttention<double>(c).forward(q, k, v, out, mask);
    return out;
  };
  xfmr_ref::AttentionRef r;
  r.d = r.dv = d;
  AttentionMask<double> none;
  r.lambda = [](long, long, long) { return 1.0; };
  CHECK(xfmr_ref::rel_error(run(xfmr::AttentionScale::none(), none),
                            xfmr_ref::softmax_attention(r, q, k, v)) <= 1e-12);
  r.lambda = [](long, long, long) { return 0.37; };
  CHECK(xfmr_ref::rel_error(run(xfmr::AttentionScale::user(0.37), none),
                            xfmr_ref::softmax_attention(r, q, k, v)) <= 1e-12);
  // log-n with causal + padding: ℓ_i = number of allowed keys = min(p_i + 1, 500), p_i = 560 + i;
  // clamp at 16 never binds here, so check it separately below.
  AttentionMask<double> causal;
  causal.set_causal().set_key_length(580);
  r.causal = true;
  r.key_length = 580;
  r.lambda = [](long i, long nq_, long nk_) {
    const double l = std::min<double>(double(nk_ - nq_ + i + 1), 580.0);
    return std::log(l) / std::log(512.0) / 4.0;  // 1/√16 = 1/4
  };
  CHECK(xfmr_ref::rel_error(run(xfmr::AttentionScale::log_n(), causal),
                            xfmr_ref::softmax_attention(r, q, k, v)) <= 1e-12);
  // With ℓ = base_length the log-n scale is the plain 1/√d (SPEC §4.5).
  AttentionMask<double> pad512;
  pad512.set_key_length(512);
  CHECK((run(xfmr::AttentionScale::log_n(), pad512) - run({}, pad512)).cwiseAbs().maxCoeff() <=
        1e-15);
  // Clamp: 5 allowed keys count as min_length = 16; a key_valid mask counts too.
  Eigen::Matrix<bool, Eigen::Dynamic, 1> valid = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(nk, false);
  for (Index j = 0; j < nk; j += 50) valid[j] = true;  // 12 keys, < 16
  AttentionMask<double> sparse;
  sparse.set_key_valid(valid);
  xfmr_ref::AttentionRef rs;
  rs.d = rs.dv = d;
  rs.key_valid.assign(valid.data(), valid.data() + nk);
  rs.lambda = [](long, long, long) { return std::log(16.0) / std::log(100.0) / 4.0; };
  CHECK(xfmr_ref::rel_error(run(xfmr::AttentionScale::log_n(100.0), sparse),
                            xfmr_ref::softmax_attention(rs, q, k, v)) <= 1e-12);
  rs.lambda = [](long, long, long) { return std::log(40.0) / std::log(100.0) / 4.0; };
  CHECK(xfmr_ref::rel_error(run(xfmr::AttentionScale::log_n(100.0, 40.0), sparse),
                            xfmr_ref::softmax_attention(rs, q, k, v)) <= 1e-12);
  // log-position: λ_i = max(1, ln(p_i + 1)/ln 64)/√d with p_i = 560 + i.
  xfmr_ref::AttentionRef rp;
  rp.d = rp.dv = d;
  rp.lambda = [](long i, long nq_, long nk_) {
    return std::max(1.0, std::log(double(nk_ - nq_ + i) + 1.0) / std::log(64.0)) / 4.0;
  };
  CHECK(xfmr_ref::rel_error(run(xfmr::AttentionScale::log_position(64.0), none),
                            xfmr_ref::softmax_attention(rp, q, k, v)) <= 1e-12);
  CHECK(xfmr::detail::row_scale(xfmr::AttentionScale::log_position(4096.0), 1.0, 0, 100) == 1.0);
  CHECK(xfmr::detail::row_scale(xfmr::AttentionScale::log_position(4096.0), 1.0, 0, 8191) ==
        Approx(std::log(8192.0) / std::log(4096.0)));
}

TEST_CASE("Empty and degenerate shapes", "[attention][softmax]") {
  SoftmaxAttention<float> attn(config(4));
  RowMatrix<float> q = RowMatrix<float>::Ones(3, 4), k(0, 4), v(0, 4), out(3, 4);
  attn.forward(q, k, v, out);  // no keys: every query outputs zeros
  CHECK(out.isZero(0.0f));
  RowMatrix<float> q0(0, 4), out0(0, 4), k1 = RowMatrix<float>::Ones(2, 4);
  attn.forward(q0, k1, k1, out0);  // no queries: nothing to do
}

TEST_CASE("Bad input: messages", "[attention][softmax][errors]") {
  auto bad = [](auto mutate, const char* text) {
    SoftmaxAttentionConfig c = config(4);
    mutate(c);
    XFMR_REQUIRE_INVALID(SoftmaxAttention<float>{c}, text);
  };
  bad([](auto& c) { c.head_dim = 0; }, "xfmr::SoftmaxAttention: head_dim must be >= 1 (got 0)");
  bad([](auto& c) { c.value_dim = -1; }, "value_dim must be >= 0 (got -1)");
  bad([](auto& c) { c.threads = 0; }, "threads must be >= 1 (got 0)");
  bad([](auto& c) { c.key_tile = 0; }, "query_tile and key_tile must be >= 1 (got 64 and 0)");
  bad([](auto& c) { c.scale = xfmr::AttentionScale::user(std::nan("")); },
      "scale.factor must be finite (got nan)");
  bad([](auto& c) { c.scale = xfmr::AttentionScale::user(INFINITY); },
      "scale.factor must be finite (got inf)");
  bad([](auto& c) { c.scale = xfmr::AttentionScale::log_n(1.0); },
      "scale.base_length must be finite and > 1 (got 1)");
  bad([](auto& c) { c.scale = xfmr::AttentionScale::log_n(512.0, 0.5); },
      "scale.min_length must be finite and >= 1 (got 0.5)");

  SoftmaxAttention<float> attn(config(4, 3));
  const RowMatrix<float> q = RowMatrix<float>::Ones(5, 8), k = RowMatrix<float>::Ones(6, 8),
                         v = RowMatrix<float>::Ones(6, 6);
  RowMatrix<float> out(5, 6);
  attn.forward(q, k, v, out);
  XFMR_REQUIRE_INVALID(attn.forward(RowMatrix<float>::Ones(5, 7), k, v, out),
                       "expected q.cols() to be a positive multiple of head_dim=4 (got q.cols()=7)");
  XFMR_REQUIRE_INVALID(attn.forward(q, RowMatrix<float>::Ones(6, 6), v, out),
                       "expected k.cols() to be a positive multiple of head_dim=4 (got k.cols()=6)");
  RowMatrix<float> out9(5, 9);
  XFMR_REQUIRE_INVALID(attn.forward(RowMatrix<float>::Ones(5, 12), k, v, out9),
                       "expected the key/value heads to divide the query heads (got 3 query heads, 2 key/value heads)");
  XFMR_REQUIRE_INVALID(attn.forward(q, k, RowMatrix<float>::Ones(6, 8), out),
                       "expected v.cols() = kv_heads·value_dim=6 (got v.cols()=8)");
  XFMR_REQUIRE_INVALID(attn.forward(q, k, RowMatrix<float>::Ones(7, 6), out),
                       "expected v.rows() = k.rows() (got v.rows()=7, k.rows()=6)");
  RowMatrix<float> out_bad(4, 6);
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, out_bad), "expected out to be 5x6 (got 4x6)");
  RowMatrix<float> shared = RowMatrix<float>::Ones(6, 8);
  XFMR_REQUIRE_INVALID(attn.forward(shared.topRows(5), k, v, shared.block(0, 0, 5, 6)),
                       "expected out not to overlap q (got overlapping views");
}

TEMPLATE_TEST_CASE("pos0 moves the log-position scale like a prefix of masked keys",
                   "[softmax][contract]", float, double) {
  // Key row j at pos0 + j, query row i at pos0 + n_k − n_q + i (attention/contract.hpp): the
  // call with pos0 = P equals the call with P leading keys that no query may see (key_valid),
  // which puts every key and query P positions later.
  using T = TestType;
  auto rng = xfmr_test::make_rng(77);
  const Index P = 37, nq = 5, nk = 23, d = 8, heads = 2;
  const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, nq, heads * d);
  const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, nk, heads * d);
  const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, nk, heads * d);
  RowMatrix<T> kp = xfmr_test::random_matrix<T>(rng, P + nk, heads * d);
  RowMatrix<T> vp = xfmr_test::random_matrix<T>(rng, P + nk, heads * d);
  kp.bottomRows(nk) = k;
  vp.bottomRows(nk) = v;
  SoftmaxAttentionConfig c;
  c.head_dim = d;
  c.scale = xfmr::AttentionScale::log_position(8);
  SoftmaxAttention<T> attn(c);
  RowMatrix<T> a(nq, heads * d), b(nq, heads * d), z(nq, heads * d);
  AttentionMask<T> causal;
  causal.set_causal();
  attn.forward(q, k, v, a, causal, P);
  Eigen::Matrix<bool, Eigen::Dynamic, 1> valid(P + nk);
  for (Index j = 0; j < P + nk; ++j) valid[j] = j >= P;
  AttentionMask<T> prefix = causal;
  prefix.set_key_valid(valid);
  attn.forward(q, kp, vp, b, prefix);
  CHECK((a - b).cwiseAbs().maxCoeff() <= 10 * tol<T>());
  attn.forward(q, k, v, z, causal);  // a test that can fail: pos0 changed λ
  CHECK((a - z).cwiseAbs().maxCoeff() > 1e-3);
  XFMR_REQUIRE_INVALID(attn.forward(q, k, v, a, causal, -1), "expected pos0 >= 0 (got pos0=-1)");
}

TEST_CASE("The one-shot softmax_attention equals the component, T never spelled out",
          "[softmax]") {
  // float and double matrices, a strided block as q, with and without a mask: the call syntax
  // of the former float/double overloads (now a template on q's type).
  auto rng = xfmr_test::make_rng(78);
  const Index n = 7, d = 4, heads = 2;
  const RowMatrix<float> big = xfmr_test::random_matrix<float>(rng, n + 1, heads * d + 3);
  const RowMatrix<float> kf = xfmr_test::random_matrix<float>(rng, n, heads * d);
  RowMatrix<float> of(n, heads * d), ef(n, heads * d);
  AttentionMask<float> causal;
  causal.set_causal();
  xfmr::softmax_attention(big.block(1, 2, n, heads * d), kf, kf, of, config(d), causal);
  SoftmaxAttention<float>(config(d)).forward(big.block(1, 2, n, heads * d), kf, kf, ef, causal);
  CHECK((of - ef).cwiseAbs().maxCoeff() == 0.0f);
  const RowMatrix<double> qd = xfmr_test::random_matrix<double>(rng, n, heads * d);
  RowMatrix<double> od(n, heads * d);
  xfmr::softmax_attention(qd, qd, qd, od, config(d));
  xfmr_ref::AttentionRef r;
  r.d = d;
  r.dv = d;
  CHECK(xfmr_ref::rel_error(od, xfmr_ref::softmax_attention(r, qd, qd, qd)) <= 1e-12);
}

// SPDX-License-Identifier: MIT
// SoftmaxAttention<float> with bf16 K/V (forward(q, ConstMatrixRef<bf16> k, v, …)): the float
// overload on the widened K/V (same bits: the products are exact and the paths are the same
// code), the naive double reference on the rounded K/V, the rounding bound against the
// unrounded K/V, masks, scales, GQA, strided and misaligned views, threads, non-finite values
// and errors. The row kernels' bf16 loads on every ISA: tests/simd/decode.test.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/softmax.hpp>

#include "reference/attention.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::AttentionMask;
using xfmr::bf16;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::SoftmaxAttention;
using xfmr::SoftmaxAttentionConfig;

namespace {

using HalfMap = Eigen::Map<const RowMatrix<bf16>, 0, Eigen::OuterStride<>>;

RowMatrix<bf16> round_bf16(const RowMatrix<float>& x) {
  RowMatrix<bf16> h(x.rows(), x.cols());
  for (Index i = 0; i < x.size(); ++i) h.data()[i] = xfmr::to_bf16(x.data()[i]);
  return h;
}

RowMatrix<float> widen(const RowMatrix<bf16>& h) {
  RowMatrix<float> x(h.rows(), h.cols());
  for (Index i = 0; i < h.size(); ++i) x.data()[i] = xfmr::to_float(h.data()[i]);
  return x;
}

bool same_bits(const RowMatrix<float>& a, const RowMatrix<float>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index i = 0; i < a.size(); ++i)
    if (!(a.data()[i] == b.data()[i]) && !(std::isnan(a.data()[i]) && std::isnan(b.data()[i])))
      return false;
  return true;
}

struct Case {
  Index nq, nk, heads, kv_heads, d, dv, br, bc;
  bool causal;
};

const Case kCases[] = {
    // Decoding (the grouped path reads bf16): MQA, GQA, MHA, odd sizes, short last key tile.
    {1, 53, 6, 2, 37, 13, 64, 16, false}, {2, 41, 6, 2, 9, 5, 64, 8, true},
    {3, 29, 5, 1, 16, 16, 64, 7, true},   {1, 300, 8, 2, 64, 64, 64, 256, true},
    {1, 1, 4, 4, 8, 8, 64, 256, false},   {1, 70, 32, 8, 128, 128, 64, 32, false},
    // Prefill (the tile paths on K/V widened once per call).
    {7, 13, 2, 1, 5, 3, 3, 4, false},     {17, 40, 4, 2, 8, 11, 5, 7, true},
    {100, 100, 1, 1, 17, 17, 16, 16, true}, {70, 70, 2, 1, 16, 16, 64, 32, true},
};

SoftmaxAttentionConfig config(const Case& c, xfmr::TileProduct product) {
  SoftmaxAttentionConfig cfg;
  cfg.head_dim = c.d;
  cfg.value_dim = c.dv;
  cfg.query_tile = c.br;
  cfg.key_tile = c.bc;
  cfg.tile_product = product;
  return cfg;
}

}  // namespace

TEST_CASE("bf16 K/V: the float result on the widened K/V, the reference, the rounding bound",
          "[attention][softmax][bf16]") {
  std::uint64_t salt = 31;
  for (const auto& c : kCases) {
    for (const auto product : {xfmr::TileProduct::Kernel, xfmr::TileProduct::Eigen}) {
      INFO("nq=" << c.nq << " nk=" << c.nk << " heads=" << c.heads << "/" << c.kv_heads
                 << " d=" << c.d << " dv=" << c.dv << " tiles=" << c.br << "x" << c.bc
                 << " causal=" << c.causal << " eigen=" << (product == xfmr::TileProduct::Eigen));
      auto rng = xfmr_test::make_rng(salt++);
      const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, c.nq, c.heads * c.d, -2, 2);
      const RowMatrix<float> k =
          xfmr_test::random_matrix<float>(rng, c.nk, c.kv_heads * c.d, -2, 2);
      const RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, c.nk, c.kv_heads * c.dv);
      const RowMatrix<bf16> kh = round_bf16(k), vh = round_bf16(v);
      const RowMatrix<float> kr = widen(kh), vr = widen(vh);
      SoftmaxAttention<float> attn(config(c, product));
      AttentionMask<float> mask;
      mask.set_causal(c.causal);
      const float nan = std::numeric_limits<float>::quiet_NaN();
      RowMatrix<float> out16 = RowMatrix<float>::Constant(c.nq, c.heads * c.dv, nan);
      RowMatrix<float> out32 = out16;
      attn.forward(q, kh, vh, out16, mask);
      attn.forward(q, kr, vr, out32, mask);
      CHECK(out16.allFinite());
      CHECK(same_bits(out16, out32));

      xfmr_ref::AttentionRef r;
      r.d = c.d;
      r.dv = c.dv;
      r.causal = c.causal;
      CHECK(xfmr_ref::rel_error(out16, xfmr_ref::softmax_attention(r, q, kr, vr)) <= 1e-5);

      // Against the unrounded K/V: each k, v element moves by at most 2^-9 of itself, so a score
      // by δ_i ≤ 2^-9·λ·Σ_p |q_ip·k_jp|, the weights of row i by at most (e^{2δ_i} − 1) in l1
      // and the output by that times max |v|, plus 2^-9·max |v| from v itself.
      const double lambda = 1.0 / std::sqrt(double(c.d));
      double delta = 0;
      for (Index i = 0; i < c.nq; ++i)
        for (Index h = 0; h < c.heads; ++h)
          for (Index j = 0; j < c.nk; ++j) {
            double m = 0;
            for (Index p = 0; p < c.d; ++p)
              m += std::fabs(double(q(i, h * c.d + p)) * k(j, h / (c.heads / c.kv_heads) * c.d + p));
            delta = std::max(delta, lambda * m * std::ldexp(1.0, -9));
          }
      const double vmax = v.cwiseAbs().maxCoeff();
      const double bound = (std::expm1(2 * delta) + std::ldexp(1.0, -9)) * vmax * 1.01 + 1e-5;
      const xfmr_ref::DMat exact = xfmr_ref::softmax_attention(r, q, k, v);
      CHECK((out16.cast<double>() - exact).cwiseAbs().maxCoeff() <= bound);
      // ... and the bound is not vacuous: it is below the output's own size.
      CHECK(bound < 0.5 * exact.cwiseAbs().maxCoeff());
    }
  }
}

TEST_CASE("bf16 K/V: masks, scales, threads, strided and misaligned views",
          "[attention][softmax][bf16]") {
  auto rng = xfmr_test::make_rng(77);
  const Index nq = 1, nk = 97, heads = 8, kv_heads = 2, d = 24;
  const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, nq, heads * d, -2, 2);
  // K and V cut from one bf16 buffer of odd row width: K at column 1 (2 bytes off every 4-byte
  // boundary), V after it, rows 2·kv_heads·d + 3 apart.
  const Index ld = 2 * kv_heads * d + 3;
  const RowMatrix<float> kv = xfmr_test::random_matrix<float>(rng, nk, ld, -2, 2);
  const RowMatrix<bf16> kvh = round_bf16(kv);
  const HalfMap kh(kvh.data() + 1, nk, kv_heads * d, Eigen::OuterStride<>(ld));
  const HalfMap vh(kvh.data() + 1 + kv_heads * d, nk, kv_heads * d, Eigen::OuterStride<>(ld));
  const RowMatrix<float> kvr = widen(kvh);
  const RowMatrix<float> kr = kvr.block(0, 1, nk, kv_heads * d);
  const RowMatrix<float> vr = kvr.block(0, 1 + kv_heads * d, nk, kv_heads * d);

  std::vector<AttentionMask<float>> masks(6);
  masks[1].set_causal(true);
  masks[2].key_length = 50;
  masks[3].key_valid = AttentionMask<float>::BoolVector::Constant(nk, true);
  for (Index j = 0; j < nk; j += 3) masks[3].key_valid[j] = false;
  masks[4].bias = xfmr_test::random_matrix<float>(rng, nq, nk, -1, 1);
  masks[5].allowed = AttentionMask<float>::BoolMatrix::Constant(nq, nk, true);
  masks[5].allowed(0, 5) = false;
  for (std::size_t mi = 0; mi < masks.size(); ++mi) {
    for (const auto scale : {xfmr::ScaleKind::InvSqrtDim, xfmr::ScaleKind::LogN,
                             xfmr::ScaleKind::LogPosition}) {
      for (const int threads : {1, 2}) {
        INFO("mask " << mi << ", scale " << int(scale) << ", threads "
                     << threads);
        SoftmaxAttentionConfig cfg;
        cfg.head_dim = d;
        cfg.key_tile = 32;
        cfg.threads = threads;
        cfg.scale.kind = scale;
        if (scale != xfmr::ScaleKind::InvSqrtDim) cfg.scale.base_length = 64;
        SoftmaxAttention<float> attn(cfg);
        RowMatrix<float> out16(nq, heads * d), out32(nq, heads * d);
        attn.forward(q, kh, vh, out16, masks[mi], 3);
        attn.forward(q, kr, vr, out32, masks[mi], 3);
        CHECK(out16.allFinite());
        CHECK(same_bits(out16, out32));
      }
    }
  }
}

TEST_CASE("bf16 K/V: NaN and infinity in K or V are not silent", "[attention][softmax][bf16]") {
  auto rng = xfmr_test::make_rng(78);
  const Index nk = 40, heads = 4, kv_heads = 2, d = 16;
  const RowMatrix<float> q = xfmr_test::random_matrix<float>(rng, 2, heads * d, -1, 1);
  const RowMatrix<float> k = xfmr_test::random_matrix<float>(rng, nk, kv_heads * d, -1, 1);
  const RowMatrix<float> v = xfmr_test::random_matrix<float>(rng, nk, kv_heads * d, -1, 1);
  SoftmaxAttentionConfig cfg;
  cfg.head_dim = d;
  cfg.key_tile = 16;
  for (const bool prefill : {false, true}) {
    INFO("prefill (widened) path " << prefill);
    SoftmaxAttention<float> attn(cfg);
    AttentionMask<float> mask;
    mask.set_causal(true);
    if (prefill) {  // an element mask sends decoding to the tile path
      mask.key_valid = AttentionMask<float>::BoolVector::Constant(nk, true);
    }
    RowMatrix<bf16> kh = round_bf16(k), vh = round_bf16(v);
    kh(20, 1 * d + 3) = xfmr::to_bf16(std::numeric_limits<float>::quiet_NaN());  // K/V head 1
    vh(30, 0 * d + 5) = xfmr::to_bf16(std::numeric_limits<float>::infinity());  // K/V head 0
    RowMatrix<float> out(2, heads * d);
    attn.forward(q, kh, vh, out, mask);
    // Both query rows (keys 38 and 39 visible) see key 20 and key 30.
    for (Index i = 0; i < 2; ++i) {
      for (Index h = 2; h < 4; ++h)  // heads of K/V head 1: NaN scores → NaN rows
        CHECK(std::isnan(out(i, h * d)));
      for (Index h = 0; h < 2; ++h) {  // heads of K/V head 0: v_30 = inf in column 5 only
        CHECK(std::isinf(out(i, h * d + 5)));
        CHECK(std::isfinite(out(i, h * d + 4)));
      }
    }
  }
}

TEST_CASE("bf16 K/V: bad input, messages", "[attention][softmax][bf16][errors]") {
  SoftmaxAttentionConfig cfg;
  cfg.head_dim = 4;
  SoftmaxAttention<float> attn(cfg);
  const RowMatrix<float> q = RowMatrix<float>::Ones(1, 8);
  const RowMatrix<bf16> kh = round_bf16(RowMatrix<float>::Ones(5, 4));
  const RowMatrix<bf16> k6 = round_bf16(RowMatrix<float>::Ones(5, 6));
  const RowMatrix<bf16> v4 = round_bf16(RowMatrix<float>::Ones(4, 4));
  RowMatrix<float> out(1, 8);
  XFMR_REQUIRE_INVALID(attn.forward(q, k6, kh, out),
                       "expected k.cols() to be a positive multiple of head_dim=4 (got k.cols()=6)");
  XFMR_REQUIRE_INVALID(attn.forward(q, kh, v4, out),
                       "expected v.rows() = k.rows() (got v.rows()=4, k.rows()=5)");
  // out over the bytes of k or v (a bf16 view of out's own memory).
  RowMatrix<float> buf = RowMatrix<float>::Zero(4, 8);
  Eigen::Map<RowMatrix<float>> o(buf.data(), 1, 8);
  const Eigen::Map<const RowMatrix<bf16>> alias(reinterpret_cast<const bf16*>(buf.data()) + 8, 5,
                                                4);
  XFMR_REQUIRE_INVALID(attn.forward(q, alias, kh, o), "expected out not to overlap k");
  XFMR_REQUIRE_INVALID(attn.forward(q, kh, alias, o), "expected out not to overlap v");
  // Disjoint: the same buffer's later rows as K/V.
  const Eigen::Map<const RowMatrix<bf16>> apart(reinterpret_cast<const bf16*>(buf.data() + 8), 5,
                                                4);
  attn.forward(q, apart, apart, o);
  CHECK(o.allFinite());
}

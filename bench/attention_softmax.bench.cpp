// SPDX-License-Identifier: MIT
// Softmax attention benchmarks: W3 (one head, n ∈ {512, 2048, 4096}, d ∈ {64, 128}, causal and
// not, float), 2-thread variants on the default ThreadPool (8 heads: (head, query tile) items;
// 1 head: query tiles, cut cyclically so causal tiles balance), the Eigen tile path, KV-cache
// decode (float and bf16 caches, 1 and 2 threads), W3 with bf16 K/V, and the plot-only
// BM_scaling_softmax sweep. FLOPs as DESIGN.md §5: 4·n²·d per head non-causal, 2·n²·d causal
// (masked tiles are skipped, not computed).
#include <cstdint>

#include <xfmr/detail/eigen.hpp>  // <Eigen/Core> after xfmr/config.hpp (GCC 12, see there)
#include <benchmark/benchmark.h>
#include <xfmr/attention/softmax.hpp>
#include <xfmr/simd/bf16.hpp>

#include "common.hpp"

namespace {

using xfmr::Index;
using xfmr::RowMatrix;

/// Softmax attention FLOPs per head (DESIGN.md §5): QKᵀ and PV, 2·n_q·n_k·d each; causal half.
double softmax_attention_flops(std::int64_t nq, std::int64_t nk, std::int64_t d, bool causal) {
  const double f = 4.0 * double(nq) * double(nk) * double(d);
  return causal ? f / 2 : f;
}

struct Inputs {
  RowMatrix<float> q, k, v, out;
  Inputs(Index nq, Index nk, Index width) : q(nq, width), k(nk, width), v(nk, width), out(nq, width) {
    xfmr_bench::fill(q.data(), std::size_t(q.size()));
    xfmr_bench::fill(k.data(), std::size_t(k.size()));
    xfmr_bench::fill(v.data(), std::size_t(v.size()));
    q *= 4.0f;  // scores spread over a few units, like trained attention
  }
};

void run(benchmark::State& state, Index heads, int threads, xfmr::TileProduct product) {
  const Index n = state.range(0), d = state.range(1);
  const bool causal = state.range(2) != 0;
  Inputs x(n, n, heads * d);
  xfmr::SoftmaxAttentionConfig cfg;
  cfg.head_dim = d;
  cfg.threads = threads;
  cfg.tile_product = product;
  xfmr::SoftmaxAttention<float> attn(cfg);
  xfmr::AttentionMask<float> mask;
  mask.set_causal(causal);
  attn.forward(x.q, x.k, x.v, x.out, mask);  // scratch sized before timing
  for (auto _ : state) {
    attn.forward(x.q, x.k, x.v, x.out, mask);
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] =
      xfmr_bench::flop_rate(double(heads) * softmax_attention_flops(n, n, d, causal));
}

void w3_args(benchmark::internal::Benchmark* b) {
  for (const std::int64_t d : {64, 128})
    for (const std::int64_t n : {512, 2048, 4096})
      for (const std::int64_t causal : {0, 1}) b->Args({n, d, causal});
  b->ArgNames({"n", "d", "causal"});
}

// ---- W3, one head, one thread ----------------------------------------------------------------
void BM_attention_softmax_w3(benchmark::State& state) {
  run(state, 1, 1, xfmr::TileProduct::Kernel);
}
BENCHMARK(BM_attention_softmax_w3)->Apply(w3_args)->Unit(benchmark::kMillisecond);

// ---- W3 with Eigen tile products (the reference path) ---------------------------------------
void BM_attention_softmax_w3_eigen(benchmark::State& state) {
  run(state, 1, 1, xfmr::TileProduct::Eigen);
}
BENCHMARK(BM_attention_softmax_w3_eigen)->Apply(w3_args)->Unit(benchmark::kMillisecond);

// ---- 2 threads: one head, parallel over query tiles -----------------------------------------
void BM_attention_softmax_w3_2threads(benchmark::State& state) {
  run(state, 1, 2, xfmr::TileProduct::Kernel);
}
BENCHMARK(BM_attention_softmax_w3_2threads)
    ->Apply(w3_args)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- 8 heads, 1 and 2 threads (parallel over heads) -----------------------------------------
void heads_args(benchmark::internal::Benchmark* b) {
  for (const std::int64_t d : {64, 128})
    for (const std::int64_t causal : {0, 1}) b->Args({2048, d, causal});
  b->ArgNames({"n", "d", "causal"});
}
void BM_attention_softmax_8heads(benchmark::State& state) {
  run(state, 8, 1, xfmr::TileProduct::Kernel);
}
BENCHMARK(BM_attention_softmax_8heads)->Apply(heads_args)->Unit(benchmark::kMillisecond);
void BM_attention_softmax_8heads_2threads(benchmark::State& state) {
  run(state, 8, 2, xfmr::TileProduct::Kernel);
}
BENCHMARK(BM_attention_softmax_8heads_2threads)
    ->Apply(heads_args)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- decode: one query per head against a cache of n keys (32 heads, GQA 8 K/V heads) -------
// bf16 = 1: the cache in bf16 (forward's bf16 K/V overload, rows widened in registers).
void decode(benchmark::State& state, int threads) {
  const Index n = state.range(0), d = 128, heads = 32, kv_heads = 8;
  const bool half = state.range(1) != 0;
  Inputs x(1, n, kv_heads * d);
  RowMatrix<xfmr::bf16> kh, vh;
  if (half) {
    kh.resize(n, kv_heads * d);
    vh.resize(n, kv_heads * d);
    xfmr::simd::convert_row(x.k.data(), kh.data(), x.k.size());
    xfmr::simd::convert_row(x.v.data(), vh.data(), x.v.size());
    x.k.resize(0, 0);  // only the bf16 cache stays resident
    x.v.resize(0, 0);
  }
  RowMatrix<float> q(1, heads * d), out(1, heads * d);
  xfmr_bench::fill(q.data(), std::size_t(q.size()));
  xfmr::SoftmaxAttentionConfig cfg;
  cfg.head_dim = d;
  cfg.threads = threads;
  xfmr::SoftmaxAttention<float> attn(cfg);
  const auto step = [&] {
    if (half)
      attn.forward(q, kh, vh, out);
    else
      attn.forward(q, x.k, x.v, out);
  };
  step();
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(double(heads) * softmax_attention_flops(1, n, d, false));
  // The cache is read once per call (K and V of every K/V head, once for its query group), in
  // bytes of its element type: read float against BM_ceiling_memcpy/bytes:16777216 (n = 4096)
  // and 134217728 (n = 32768), which move the same number of bytes, bf16 against the halves
  // (bytes:8388608 and 67108864).
  state.SetBytesProcessed(std::int64_t(state.iterations()) * 2 * n * kv_heads * d *
                          (half ? 2 : 4));
}
void BM_attention_softmax_decode(benchmark::State& state) { decode(state, 1); }
BENCHMARK(BM_attention_softmax_decode)
    ->ArgsProduct({{4096, 32768}, {0, 1}})
    ->ArgNames({"n", "bf16"})
    ->Unit(benchmark::kMicrosecond);
// Two threads: the 8 K/V heads in two blocks of 4 (one per thread), each streamed once.
void BM_attention_softmax_decode_2threads(benchmark::State& state) { decode(state, 2); }
BENCHMARK(BM_attention_softmax_decode_2threads)
    ->ArgsProduct({{4096, 32768}, {0, 1}})
    ->ArgNames({"n", "bf16"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// ---- W3 with bf16 K/V: one head, causal and not (K/V widened once per call for the tiles) ---
void BM_attention_softmax_w3_bf16kv(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1);
  const bool causal = state.range(2) != 0;
  Inputs x(n, n, d);
  RowMatrix<xfmr::bf16> kh(n, d), vh(n, d);
  xfmr::simd::convert_row(x.k.data(), kh.data(), x.k.size());
  xfmr::simd::convert_row(x.v.data(), vh.data(), x.v.size());
  xfmr::SoftmaxAttentionConfig cfg;
  cfg.head_dim = d;
  xfmr::SoftmaxAttention<float> attn(cfg);
  xfmr::AttentionMask<float> mask;
  mask.set_causal(causal);
  attn.forward(x.q, kh, vh, x.out, mask);
  for (auto _ : state) {
    attn.forward(x.q, kh, vh, x.out, mask);
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(softmax_attention_flops(n, n, d, causal));
}
BENCHMARK(BM_attention_softmax_w3_bf16kv)
    ->Args({2048, 64, 0})
    ->Args({2048, 64, 1})
    ->Args({4096, 128, 1})
    ->ArgNames({"n", "d", "causal"})
    ->Unit(benchmark::kMillisecond);

// ---- plot only (CI skips BM_scaling_*): one head, d = 64, non-causal, n = 256 … 65536 --------
void BM_scaling_softmax(benchmark::State& state) {
  const Index n = state.range(0), d = 64;
  Inputs x(n, n, d);
  xfmr::SoftmaxAttentionConfig cfg;
  cfg.head_dim = d;
  xfmr::SoftmaxAttention<float> attn(cfg);
  attn.forward(x.q, x.k, x.v, x.out);
  for (auto _ : state) {
    attn.forward(x.q, x.k, x.v, x.out);
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(softmax_attention_flops(n, n, d, false));
}
BENCHMARK(BM_scaling_softmax)->RangeMultiplier(2)->Range(256, 65536)->Unit(benchmark::kMillisecond);

}  // namespace

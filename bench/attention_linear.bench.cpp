// SPDX-License-Identifier: MIT
// W4 linear attention (elu+1, d = 64, one head, float): FLOP/s against BM_ceiling_fma in the same
// run, the recurrent decode step, Eigen's GEMM at the chunk shape, and the plot-only
// BM_scaling_linear sweep (time against sequence length).
#include <cstdint>

#include <xfmr/detail/eigen.hpp>  // <Eigen/Core> after xfmr/config.hpp (GCC 12, see there)
#include <benchmark/benchmark.h>
#include <xfmr/attention/linear.hpp>
#include <xfmr/attention/recurrent_state.hpp>

#include "common.hpp"

namespace {

using xfmr::Index;
using xfmr::RowMatrix;

/// SPEC §12: 2·n·d_k·d_v multiply-adds per head for S = ϕ(K)^T V and as many for φ(Q)·S, so
/// 4·n·d² FLOPs (causal counted the same: the state carries the prefix; the intra-chunk
/// quadratic part is extra work, not counted).
double linear_flops(std::int64_t n, std::int64_t d) { return 4.0 * double(n) * double(d) * double(d); }

struct Inputs {
  RowMatrix<float> q, k, v, out;
  Inputs(Index n, Index d) : q(n, d), k(n, d), v(n, d), out(n, d) {
    xfmr_bench::fill(q.data(), static_cast<std::size_t>(q.size()));
    xfmr_bench::fill(k.data(), static_cast<std::size_t>(k.size()));
    xfmr_bench::fill(v.data(), static_cast<std::size_t>(v.size()));
    out.setZero();
  }
};

xfmr::LinearAttentionConfig<float> w4_config(Index d, Index chunk,
                                             xfmr::CausalKernel kernel = xfmr::CausalKernel::Scan) {
  xfmr::LinearAttentionConfig<float> c;
  c.causal_kernel = kernel;
  c.head_dim = d;
  c.feature_map = xfmr::FeatureMap::EluPlusOne;
  c.chunk_size = chunk;
  return c;
}

// ---- W4: n ∈ {4096, 65536}, d = 64, causal and not ------------------------------------------
void BM_linear_attention(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1), chunk = state.range(3);
  const bool causal = state.range(2) != 0;
  Inputs x(n, d);
  xfmr::LinearAttention<float> attn(w4_config(d, chunk));
  const auto mask = xfmr::AttentionMask<float>{}.set_causal(causal);
  attn.forward(x.q, x.k, x.v, x.out, mask);  // sizes the scratch
  for (auto _ : state) {
    attn.forward(x.q, x.k, x.v, x.out, mask);
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(linear_flops(n, d));
}
BENCHMARK(BM_linear_attention)
    ->ArgsProduct({{4096, 65536}, {64}, {0, 1}, {64}})
    ->ArgNames({"tokens", "dim", "causal", "chunk"})
    ->Unit(benchmark::kMicrosecond);

// The same causal workload with the chunked masked-quadratic kernel (4 Eigen GEMMs per chunk).
void BM_linear_attention_quadratic(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1), chunk = state.range(2);
  Inputs x(n, d);
  xfmr::LinearAttention<float> attn(w4_config(d, chunk, xfmr::CausalKernel::Quadratic));
  const auto mask = xfmr::AttentionMask<float>{}.set_causal();
  attn.forward(x.q, x.k, x.v, x.out, mask);
  for (auto _ : state) {
    attn.forward(x.q, x.k, x.v, x.out, mask);
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(linear_flops(n, d));
}
BENCHMARK(BM_linear_attention_quadratic)
    ->ArgsProduct({{65536}, {64}, {32, 64}})
    ->ArgNames({"tokens", "dim", "chunk"})
    ->Unit(benchmark::kMicrosecond);

// Causal scan with other token blocks (chunk_size).
BENCHMARK(BM_linear_attention)
    ->ArgsProduct({{65536}, {64}, {1}, {16, 256}})
    ->ArgNames({"tokens", "dim", "causal", "chunk"})
    ->Unit(benchmark::kMicrosecond);

// ---- recurrent decoding: one token against the state (S is d × d, in L1) ---------------------
void BM_linear_attention_decode(benchmark::State& state) {
  const Index d = state.range(0), heads = state.range(1);
  xfmr::LinearAttentionConfig<float> c = w4_config(d, 64);
  xfmr::RecurrentAttentionState<float> s(c, heads);
  Inputs x(1, heads * d);
  for (auto _ : state) {
    s.step(x.q, x.k, x.v, x.out);
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(double(heads) * linear_flops(1, d));
}
BENCHMARK(BM_linear_attention_decode)
    ->Args({64, 1})
    ->Args({64, 12})
    ->ArgNames({"dim", "heads"})
    ->Unit(benchmark::kNanosecond);

// ---- Eigen SGEMM at the chunk shape (C × d)·(d × d): the product the causal path is made of --
void BM_linear_attention_gemm(benchmark::State& state) {
  const Index m = state.range(0), k = state.range(1), n = state.range(2);
  RowMatrix<float> a(m, k), b(k, n), c(m, n);
  xfmr_bench::fill(a.data(), static_cast<std::size_t>(a.size()));
  xfmr_bench::fill(b.data(), static_cast<std::size_t>(b.size()));
  c.setZero();
  for (auto _ : state) {
    c.noalias() += a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(xfmr_bench::gemm_flops(m, n, k));
}
BENCHMARK(BM_linear_attention_gemm)
    ->Args({64, 64, 64})
    ->Args({256, 64, 64})
    ->ArgNames({"M", "K", "N"})
    ->Unit(benchmark::kMicrosecond);

// ---- plot only (CI skips BM_scaling_*): non-causal, one head, d = 64, n = 256 … 65536 --------
void BM_scaling_linear(benchmark::State& state) {
  const Index n = state.range(0), d = 64;
  Inputs x(n, d);
  xfmr::LinearAttention<float> attn(w4_config(d, 64));
  attn.forward(x.q, x.k, x.v, x.out);
  for (auto _ : state) {
    attn.forward(x.q, x.k, x.v, x.out);
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(linear_flops(n, d));
}
BENCHMARK(BM_scaling_linear)->RangeMultiplier(2)->Range(256, 65536)->Unit(benchmark::kMicrosecond);

}  // namespace

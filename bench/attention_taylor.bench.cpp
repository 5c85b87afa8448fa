// SPDX-License-Identifier: MIT
// Taylor attention (SPEC §7): the Taylor softmax as a drop-in for softmax on a score matrix, in
// bytes/s against BM_ceiling_memcpy of the same size (it reads one buffer and writes another:
// 512 × 768 floats = 1.5 MiB, cache; 4096 × 4096 = 64 MiB, DRAM), and order-2 Taylor linear
// attention in FLOP/s against BM_ceiling_fma.
#include <cstdint>

#include <xfmr/detail/eigen.hpp>  // <Eigen/Core> after xfmr/config.hpp (GCC 12, see there)
#include <benchmark/benchmark.h>
#include <xfmr/attention/linear.hpp>
#include <xfmr/attention/taylor.hpp>

#include "common.hpp"

namespace {

using xfmr::Index;
using xfmr::RowMatrix;

// ---- Taylor softmax of order n over each row: p = f_n(s) / Σ f_n(s) -------------------------
void BM_taylor_softmax(benchmark::State& state) {
  const Index rows = state.range(0), cols = state.range(1);
  const int order = static_cast<int>(state.range(2));
  RowMatrix<float> scores(rows, cols), out(rows, cols);
  xfmr_bench::fill(scores.data(), static_cast<std::size_t>(scores.size()));
  xfmr_bench::fill(out.data(), static_cast<std::size_t>(out.size()));
  for (auto _ : state) {
    xfmr::taylor_softmax(scores, out, order);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  // DESIGN.md §5 for element-wise kernels: the scores read once, the weights written once.
  state.SetBytesProcessed(state.iterations() * 2 * rows * cols * std::int64_t(sizeof(float)));
}
BENCHMARK(BM_taylor_softmax)
    ->ArgsProduct({{512}, {768}, {2, 4}})
    ->ArgsProduct({{4096}, {4096}, {2, 4}})
    ->ArgNames({"rows", "cols", "order"})
    ->Unit(benchmark::kMicrosecond);

// ---- Order-2 Taylor linear attention: φ of dimension m = 1 + d + d(d+1)/2 ---------------------
// FLOPs as linear attention with key size m (SPEC §12): 2·n·m·d_v for S = φ(K)ᵀV and as many for
// φ(Q)·S, so 4·n·m·d; the feature maps themselves are extra work, not counted.
void BM_taylor_linear_attention(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1);
  const bool causal = state.range(2) != 0;
  RowMatrix<float> q(n, d), k(n, d), v(n, d), out(n, d);
  xfmr_bench::fill(q.data(), static_cast<std::size_t>(q.size()));
  xfmr_bench::fill(k.data(), static_cast<std::size_t>(k.size()));
  xfmr_bench::fill(v.data(), static_cast<std::size_t>(v.size()));
  xfmr::LinearAttention<float> attn(xfmr::taylor_linear_attention_config<float>(d));
  const auto mask = xfmr::AttentionMask<float>{}.set_causal(causal);
  attn.forward(q, k, v, out, mask);  // sizes the scratch
  for (auto _ : state) {
    attn.forward(q, k, v, out, mask);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double m = double(xfmr::taylor2_feature_dim(d));
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(4.0 * double(n) * m * double(d));
}
BENCHMARK(BM_taylor_linear_attention)
    ->ArgsProduct({{4096}, {16, 32}, {0, 1}})
    ->ArgNames({"tokens", "dim", "causal"})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

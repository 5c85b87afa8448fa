// SPDX-License-Identifier: MIT
// LayerNorm / RMSNorm throughput, in place, native and scalar side by side. Bytes as DESIGN.md §5
// counts element-wise kernels: the matrix read once and written once (γ, β not counted). The
// shapes match BM_ceiling_inplace's buffers: 512 × 768 floats = 1.5 MiB (cache), 4096 × 4096
// floats = 64 MiB (DRAM). A row is read twice: its statistics fused into the pass that
// normalises the previous row (streamed from L2/DRAM), then its normalising pass from L1.
#include <cstdint>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/layers/norm.hpp"

namespace {

using xfmr::Index;

template <class Norm, typename Config>
void run_norm(benchmark::State& state, Config config) {
  const Index rows = state.range(0), dim = state.range(1);
  config.dim = dim;
  const Norm norm(config);
  auto buffer = xfmr_bench::make_aligned<float>(static_cast<std::size_t>(rows * dim));
  xfmr_bench::fill(buffer.get(), static_cast<std::size_t>(rows * dim));
  Eigen::Map<xfmr::RowMatrix<float>> x(buffer.get(), rows, dim);
  for (auto _ : state) {
    norm.apply(x);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * rows * dim * std::int64_t(sizeof(float)));
}

void BM_layer_norm(benchmark::State& state) {
  run_norm<xfmr::LayerNorm<float>>(state, xfmr::LayerNormConfig{});
}
void BM_layer_norm_scalar(benchmark::State& state) {
  run_norm<xfmr::LayerNorm<float, xfmr::simd::scalar_isa>>(state, xfmr::LayerNormConfig{});
}
void BM_rms_norm(benchmark::State& state) {
  run_norm<xfmr::RmsNorm<float>>(state, xfmr::RmsNormConfig{});
}
void BM_rms_norm_scalar(benchmark::State& state) {
  run_norm<xfmr::RmsNorm<float, xfmr::simd::scalar_isa>>(state, xfmr::RmsNormConfig{});
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"tokens", "dim"})->Args({512, 768})->Args({4096, 4096});
}

}  // namespace

BENCHMARK(BM_layer_norm)->Apply(shapes);
BENCHMARK(BM_layer_norm_scalar)->Apply(shapes);
BENCHMARK(BM_rms_norm)->Apply(shapes);
BENCHMARK(BM_rms_norm_scalar)->Apply(shapes);

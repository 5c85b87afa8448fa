// SPDX-License-Identifier: MIT
// Dense (layers/dense.hpp) at the FFN shapes of W8: n = 4096 tokens, 384 → 1536 (MiniLM) and
// 768 → 3072 (BERT-base), the weight prepacked, bias and activation fused in the GEMM epilogue;
// FLOPs 2·n·in·out (xfmr_bench::gemm_flops, the activation not counted), read against
// BM_ceiling_fma and against BM_layers_dense_eigen (Eigen x·Wᵀ + b, then a std::erf GELU loop:
// the unfused path composed by hand) from the same run.
// BM_layers_gelu: the activation row kernels alone, in place, elements/s, on one FFN row block
// (64 × 1536 floats, L2-resident) for GELU erf/tanh and SiLU, native and scalar, and std::erf.
#include <cmath>
#include <cstdint>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/layers/dense.hpp"

namespace {

using xfmr::ActivationKind;
using xfmr::Index;
using Mat = xfmr::RowMatrix<float>;
using Vec = Eigen::Matrix<float, Eigen::Dynamic, 1>;

void fill(Mat& m) { xfmr_bench::fill(m.data(), static_cast<std::size_t>(m.size())); }

void BM_layers_dense(benchmark::State& state) {
  const Index n = state.range(0), in = state.range(1), out = state.range(2);
  const auto kind = static_cast<ActivationKind>(state.range(3));
  Mat w(out, in), x(n, in), y(n, out);
  Vec b(out);
  fill(w);
  fill(x);
  xfmr_bench::fill(b.data(), static_cast<std::size_t>(out));
  const xfmr::Dense<float> dense(w, b, kind);
  for (auto _ : state) {
    dense.forward(x, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(xfmr_bench::gemm_flops(n, out, in));
  state.SetLabel(xfmr::to_string(kind));
}

void BM_layers_dense_eigen(benchmark::State& state) {
  const Index n = state.range(0), in = state.range(1), out = state.range(2);
  const bool gelu = state.range(3) == static_cast<std::int64_t>(ActivationKind::GeluErf);
  Mat w(out, in), x(n, in), y(n, out);
  Eigen::Matrix<float, 1, Eigen::Dynamic> b(out);
  fill(w);
  fill(x);
  xfmr_bench::fill(b.data(), static_cast<std::size_t>(out));
  for (auto _ : state) {
    y.noalias() = x * w.transpose();
    y.rowwise() += b;
    if (gelu)
      for (Index i = 0; i < y.size(); ++i) {
        const float v = y.data()[i];
        y.data()[i] = 0.5f * v * (1.0f + std::erf(v * 0.70710678f));
      }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(xfmr_bench::gemm_flops(n, out, in));
  state.SetLabel(gelu ? "gelu_erf (std::erf loop)" : "identity");
}

void dense_args(benchmark::internal::Benchmark* b) {
  for (const auto kind : {ActivationKind::Identity, ActivationKind::GeluErf}) {
    b->Args({4096, 384, 1536, static_cast<std::int64_t>(kind)});
    b->Args({4096, 768, 3072, static_cast<std::int64_t>(kind)});
  }
  b->ArgNames({"n", "in", "out", "act"});
}

template <class Isa, class F>
void run_gelu(benchmark::State& state, F f) {
  const Index size = state.range(0);
  auto buf = xfmr_bench::make_aligned<float>(static_cast<std::size_t>(size));
  for (auto _ : state) {
    state.PauseTiming();  // keep the inputs in GELU's busy range (in place would drift)
    xfmr_bench::fill(buf.get(), static_cast<std::size_t>(size));
    state.ResumeTiming();
    xfmr::simd::activation_row<Isa>(f, buf.get(), buf.get(), size);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * size);
}

void BM_layers_gelu(benchmark::State& state) {
  run_gelu<xfmr::simd::native_isa>(state, xfmr::simd::GeluErf{});
}
void BM_layers_gelu_tanh(benchmark::State& state) {
  run_gelu<xfmr::simd::native_isa>(state, xfmr::simd::GeluTanh{});
}
void BM_layers_silu(benchmark::State& state) {
  run_gelu<xfmr::simd::native_isa>(state, xfmr::simd::Silu{});
}
void BM_layers_gelu_scalar(benchmark::State& state) {
  run_gelu<xfmr::simd::scalar_isa>(state, xfmr::simd::GeluErf{});
}
void BM_layers_gelu_std_erf(benchmark::State& state) {
  const Index size = state.range(0);
  auto buf = xfmr_bench::make_aligned<float>(static_cast<std::size_t>(size));
  for (auto _ : state) {
    state.PauseTiming();
    xfmr_bench::fill(buf.get(), static_cast<std::size_t>(size));
    state.ResumeTiming();
    float* p = buf.get();
    for (Index i = 0; i < size; ++i) p[i] = 0.5f * p[i] * (1.0f + std::erf(p[i] * 0.70710678f));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * size);
}

void gelu_args(benchmark::internal::Benchmark* b) { b->Arg(64 * 1536)->ArgName("elements"); }

}  // namespace

BENCHMARK(BM_layers_dense)->Apply(dense_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_layers_dense_eigen)->Apply(dense_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_layers_gelu)->Apply(gelu_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_layers_gelu_tanh)->Apply(gelu_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_layers_silu)->Apply(gelu_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_layers_gelu_scalar)->Apply(gelu_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_layers_gelu_std_erf)->Apply(gelu_args)->Unit(benchmark::kMicrosecond);

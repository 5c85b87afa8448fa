// SPDX-License-Identifier: MIT
// GlobalPointer and Efficient GlobalPointer forward (DESIGN.md §5, workload W7: one sequence of
// n = 256 tokens, hidden 768, 9 entity types, head 64; float, no padding). Read the FLOP/s against
// BM_ceiling_fma (register-only FMA roof) and BM_ceiling_gemm from the same run.
//
// FLOPs counted (global_pointer_flops / efficient_global_pointer_flops below):
//   GlobalPointer: dense 2·n·D·(H·2d) + scores 2·H·n²·d (the full n×n product per type, although
//                  with tril_mask only the upper triangle is computed; RoPE, scale and masking are
//                  not counted).
//   EGP:           dense 2·n·D·2d + bias dense 2·n·2d·2H + scores 2·n²·d (once, shared by the
//                  types; the per-type broadcast add and masking are not counted). EGP is bound
//                  by writing the [H, n, n] output, not by FLOPs, so its ratio to the FMA roof is
//                  low by construction; time is the number to compare with GlobalPointer.
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/heads/global_pointer.hpp"

namespace {

using xfmr::Index;

double global_pointer_flops(double n, double hidden, double types, double head) {
  return 2.0 * n * hidden * (types * 2.0 * head) + 2.0 * types * n * n * head;
}
double efficient_global_pointer_flops(double n, double hidden, double types, double head) {
  return 2.0 * n * hidden * 2.0 * head + 2.0 * n * 2.0 * head * 2.0 * types + 2.0 * n * n * head;
}

xfmr::GlobalPointerConfig w7_config(const benchmark::State& state) {
  xfmr::GlobalPointerConfig config;
  config.hidden_size = state.range(1);
  config.types = state.range(2);
  config.head_size = state.range(3);
  return config;
}

template <typename T>
xfmr::RowMatrix<T> filled(Index rows, Index cols, T scale) {
  xfmr::RowMatrix<T> m(rows, cols);
  xfmr_bench::fill(m.data(), static_cast<std::size_t>(m.size()));
  m *= scale;
  return m;
}

void BM_global_pointer_forward(benchmark::State& state) {
  using T = float;
  const Index n = state.range(0);
  const auto config = w7_config(state);
  const Index D = config.hidden_size, H = config.types, d = config.head_size;
  xfmr::GlobalPointer<T> gp(config);
  gp.set_weights(filled<T>(D, H * 2 * d, T(0.05)), filled<T>(1, H * 2 * d, T(0.1)));
  const auto hidden = filled<T>(n, D, T(1));
  std::vector<T> out(static_cast<std::size_t>(H * n * n));
  xfmr_bench::fill(out.data(), out.size());
  gp.scores(hidden, xfmr::ScoreTensor<T>(out.data(), 1, H, n, n));  // grows the scratch
  for (auto _ : state) {
    gp.scores(hidden, xfmr::ScoreTensor<T>(out.data(), 1, H, n, n));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(global_pointer_flops(
      double(n), double(D), double(H), double(d)));
}

void BM_global_pointer_efficient_forward(benchmark::State& state) {
  using T = float;
  const Index n = state.range(0);
  const auto config = w7_config(state);
  const Index D = config.hidden_size, H = config.types, d = config.head_size;
  xfmr::EfficientGlobalPointer<T> egp(config);
  egp.set_weights(filled<T>(D, 2 * d, T(0.05)), filled<T>(1, 2 * d, T(0.1)),
                  filled<T>(2 * d, 2 * H, T(0.1)), filled<T>(1, 2 * H, T(0.1)));
  const auto hidden = filled<T>(n, D, T(1));
  std::vector<T> out(static_cast<std::size_t>(H * n * n));
  xfmr_bench::fill(out.data(), out.size());
  egp.scores(hidden, xfmr::ScoreTensor<T>(out.data(), 1, H, n, n));
  for (auto _ : state) {
    egp.scores(hidden, xfmr::ScoreTensor<T>(out.data(), 1, H, n, n));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(efficient_global_pointer_flops(
      double(n), double(D), double(H), double(d)));
}

void w7_args(benchmark::internal::Benchmark* b) {
  b->Args({256, 768, 9, 64});  // W7
  b->ArgNames({"tokens", "hidden", "types", "head"});
}
BENCHMARK(BM_global_pointer_forward)->Apply(w7_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_global_pointer_efficient_forward)->Apply(w7_args)->Unit(benchmark::kMicrosecond);

}  // namespace

// SPDX-License-Identifier: MIT
// BERT-whitening (DESIGN.md §5, workload W6: fit 100000 × 768 → 256, and transform throughput).
// FLOPs: the covariance is a symmetric rank-N update, N·D² FLOPs (the lower half of the Gram,
// 2 FLOPs per multiply-add); the transform is a GEMM, 2·N·D·k. Read against BM_ceiling_fma.
#include <chrono>
#include <cstdint>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/heads/whitening.hpp"
#include "xfmr/heads/whitening_stats.hpp"

namespace {

using xfmr::Index;

/// Sentence-vector stand-in: a common offset plus bounded noise (values need not be realistic
/// for timing; the fit sees a full-rank covariance).
template <typename T>
xfmr::RowMatrix<T> data(Index n, Index d) {
  xfmr::RowMatrix<T> x(n, d);
  xfmr_bench::fill(x.data(), static_cast<std::size_t>(x.size()));
  x.array() += T(0.25);
  return x;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Whole fit: statistics (mean + float Gram + Chan folds), eigensolver, W_k. FLOP/s counts the
/// Gram only (N·D²); stats_s and finalize_s split the time.
void BM_whitening_fit(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1), k = state.range(2);
  const auto x = data<float>(n, d);
  xfmr::WhiteningConfig config;
  config.components = k;
  double stats_s = 0, finalize_s = 0;
  for (auto _ : state) {
    xfmr::BertWhitening<float> w(d, config);
    const auto t0 = std::chrono::steady_clock::now();
    w.partial_fit(x);
    stats_s += seconds_since(t0);
    const auto t1 = std::chrono::steady_clock::now();
    w.finalize();
    finalize_s += seconds_since(t1);
    benchmark::DoNotOptimize(w.whitening_matrix().data());
  }
  const double it = static_cast<double>(state.iterations());
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(static_cast<double>(n) * d * d);
  state.counters["stats_s"] = stats_s / it;
  state.counters["finalize_s"] = finalize_s / it;
}
BENCHMARK(BM_whitening_fit)
    ->Args({100000, 768, 256})
    ->ArgNames({"N", "D", "k"})
    ->Unit(benchmark::kMillisecond);

/// The statistics alone (block means + centred float Gram + folds), N·D² FLOPs; exact:1 runs
/// the Gram in double (the exact_gram option).
void BM_whitening_gram(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1);
  const bool exact = state.range(2) != 0;
  const auto x = data<float>(n, d);
  xfmr::WhiteningStats stats(d, 4096, exact);
  for (auto _ : state) {
    stats.reset();
    stats.add<float>(x);
    benchmark::DoNotOptimize(stats.mean().data());
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(static_cast<double>(n) * d * d);
}
BENCHMARK(BM_whitening_gram)
    ->Args({16384, 768, 0})
    ->Args({16384, 768, 1})
    ->ArgNames({"N", "D", "exact"})
    ->Unit(benchmark::kMillisecond);

/// Eigensolver + W_k from ready statistics (D × D, double).
void BM_whitening_finalize(benchmark::State& state) {
  const Index d = state.range(0), k = state.range(1);
  const auto x = data<float>(4 * d, d);
  xfmr::WhiteningConfig config;
  config.components = k;
  xfmr::BertWhitening<float> w(d, config);
  w.partial_fit(x);
  for (auto _ : state) {
    w.finalize();
    benchmark::DoNotOptimize(w.whitening_matrix().data());
  }
}
BENCHMARK(BM_whitening_finalize)->Args({768, 256})->ArgNames({"D", "k"})->Unit(benchmark::kMillisecond);

/// (x − βμ)·W_k for N rows: 2·N·D·k FLOPs. float runs the packed register-tile kernel,
/// double Eigen's GEMM.
template <typename T>
void BM_whitening_transform(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1), k = state.range(2);
  const auto x = data<T>(n, d);
  xfmr::WhiteningConfig config;
  config.components = k;
  xfmr::BertWhitening<T> w(d, config);
  w.fit(data<T>(4 * d, d));
  xfmr::RowMatrix<T> out(n, k);
  for (auto _ : state) {
    w.transform(x, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(xfmr_bench::gemm_flops(n, k, d));
}
BENCHMARK_TEMPLATE(BM_whitening_transform, float)
    ->Args({16384, 768, 256})
    ->Args({16384, 768, 768})
    ->Args({1, 768, 256})
    ->ArgNames({"N", "D", "k"})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_whitening_transform, double)
    ->Args({16384, 768, 256})
    ->ArgNames({"N", "D", "k"})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

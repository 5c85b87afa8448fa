// SPDX-License-Identifier: MIT
// simd::gemm_nt / gemm_nn (the GEMM engine, simd/gemm.hpp, B packed in the call), at the shapes
// softmax attention feeds them: score tiles Q·Kᵀ (m query rows × n keys, K = d = 64 or 128) and
// P·V tiles (m rows × d, K = n keys), plus one whole head (2048 × 2048 × 64 nt, 2048 × 64 × 2048
// nn). FLOPs 2·m·n·k per call (xfmr_bench::gemm_flops). Read against BM_ceiling_fma (register-only
// FMA roof) and BM_ceiling_gemm (Eigen SGEMM) from the same run. Operands are cache-resident
// (filled before timing), as inside the attention tile loop; β = 0 (C overwritten).
#include <cstdint>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/simd/gemm.hpp"

namespace {

using xfmr::Index;

template <typename T, bool NT>
void run_gemm(benchmark::State& state) {
  const Index m = state.range(0), n = state.range(1), k = state.range(2);
  const Index brows = NT ? n : k, bcols = NT ? k : n;
  auto a = xfmr_bench::make_aligned<T>(static_cast<std::size_t>(m * k));
  auto b = xfmr_bench::make_aligned<T>(static_cast<std::size_t>(brows * bcols));
  auto c = xfmr_bench::make_aligned<T>(static_cast<std::size_t>(m * n));
  xfmr_bench::fill(a.get(), static_cast<std::size_t>(m * k));
  xfmr_bench::fill(b.get(), static_cast<std::size_t>(brows * bcols));
  xfmr_bench::fill(c.get(), static_cast<std::size_t>(m * n));
  for (auto _ : state) {
    if constexpr (NT)
      xfmr::simd::gemm_nt(m, n, k, T(1), a.get(), k, b.get(), bcols, T(0), c.get(), n);
    else
      xfmr::simd::gemm_nn(m, n, k, T(1), a.get(), k, b.get(), bcols, T(0), c.get(), n);
    benchmark::DoNotOptimize(c.get());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(xfmr_bench::gemm_flops(m, n, k));
}

void BM_gemm_nt(benchmark::State& state) { run_gemm<float, true>(state); }
void BM_gemm_nn(benchmark::State& state) { run_gemm<float, false>(state); }
void BM_gemm_nt_double(benchmark::State& state) { run_gemm<double, true>(state); }
void BM_gemm_nn_double(benchmark::State& state) { run_gemm<double, false>(state); }

// Score tiles: (query rows, keys, d).
void nt_args(benchmark::internal::Benchmark* b) {
  for (const std::int64_t d : {64, 128})
    for (const std::int64_t m : {64, 128})
      for (const std::int64_t n : {64, 128, 256}) b->Args({m, n, d});
  b->Args({2048, 2048, 64});  // one whole head, W3 n = 2048
  b->ArgNames({"M", "N", "K"});
}
// P·V tiles: (query rows, d, keys).
void nn_args(benchmark::internal::Benchmark* b) {
  for (const std::int64_t d : {64, 128})
    for (const std::int64_t m : {64, 128})
      for (const std::int64_t k : {64, 128, 256}) b->Args({m, d, k});
  b->Args({2048, 64, 2048});
  b->ArgNames({"M", "N", "K"});
}

// Encoder shapes: the Dense layers of a batch of 4096 tokens, x (M × K) · Wᵀ with W prepacked
// once (PackedB, as layers::Dense): K = hidden 384 (MiniLM) / 768 (BERT-base), N = hidden,
// 4·hidden (FFN up), and the FFN down projection (K = 4·hidden, N = hidden).
void BM_gemm_packed(benchmark::State& state) {
  using T = float;
  const Index m = state.range(0), n = state.range(1), k = state.range(2);
  auto a = xfmr_bench::make_aligned<T>(static_cast<std::size_t>(m * k));
  auto w = xfmr_bench::make_aligned<T>(static_cast<std::size_t>(n * k));
  auto c = xfmr_bench::make_aligned<T>(static_cast<std::size_t>(m * n));
  auto packed =
      xfmr_bench::make_aligned<T>(static_cast<std::size_t>(xfmr::simd::packed_b_size<T>(k, n)));
  xfmr_bench::fill(a.get(), static_cast<std::size_t>(m * k));
  xfmr_bench::fill(w.get(), static_cast<std::size_t>(n * k));
  xfmr::simd::pack_b(k, n, xfmr::simd::GemmB<T>{w.get(), k, true}, packed.get());
  for (auto _ : state) {
    xfmr::simd::gemm(m, n, k, T(1), xfmr::simd::GemmA<T>{a.get(), k, 1},
                     xfmr::simd::PackedB<T>{packed.get(), k, n}, T(0), c.get(), n);
    benchmark::DoNotOptimize(c.get());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(xfmr_bench::gemm_flops(m, n, k));
}
void packed_args(benchmark::internal::Benchmark* b) {
  for (const std::int64_t h : {384, 768}) {
    b->Args({4096, h, h});
    b->Args({4096, 4 * h, h});
    b->Args({4096, h, 4 * h});
  }
  b->ArgNames({"M", "N", "K"});
}

BENCHMARK(BM_gemm_packed)->Apply(packed_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gemm_nt)->Apply(nt_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_gemm_nn)->Apply(nn_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_gemm_nt_double)->Apply(nt_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_gemm_nn_double)->Apply(nn_args)->Unit(benchmark::kMicrosecond);

}  // namespace

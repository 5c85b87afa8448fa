// SPDX-License-Identifier: MIT
// The GEMM engine with bf16 weights (simd/gemm_bf16.hpp): C (M × N) = A (M × K, fp32) · B (K × N,
// prepacked bf16 by pack_b_bf16, read transposed from an (N × K) nn.Linear weight), at the
// encoder's Dense shapes: M = 4096 tokens (32 × 128), K = 384 / 768, N = 384 … 3072 (MiniLM and
// BERT-base QKV, output, FFN). FLOPs 2·M·N·K; read against BM_ceiling_bf16 (register-only
// vdpbf16ps roof) on AVX512_BF16 builds, against BM_ceiling_fma elsewhere (B widened to fp32).
// Isa = native_isa. BM_gemm_bf16: the Auto kernel (the context xfmr_bf16_kernel says which runs);
// BM_gemm_bf16_dot / _widen: each kernel by name, on AVX512_BF16 builds (where both exist).
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/simd/gemm_bf16.hpp"

namespace {

using xfmr::Index;

using BenchIsa = xfmr::simd::native_isa;

void run_bf16(benchmark::State& state, xfmr::simd::Bf16Kernel kernel) {
  const Index m = state.range(0), n = state.range(1), k = state.range(2);
  auto a = xfmr_bench::make_aligned<float>(static_cast<std::size_t>(m * k));
  auto w = xfmr_bench::make_aligned<float>(static_cast<std::size_t>(n * k));
  auto c = xfmr_bench::make_aligned<float>(static_cast<std::size_t>(m * n));
  xfmr_bench::fill(a.get(), static_cast<std::size_t>(m * k));
  xfmr_bench::fill(w.get(), static_cast<std::size_t>(n * k));
  std::vector<xfmr::bf16> packed(
      static_cast<std::size_t>(xfmr::simd::packed_b_bf16_size<BenchIsa>(k, n)));
  xfmr::simd::pack_b_bf16<BenchIsa>(k, n, xfmr::simd::GemmB<float>{w.get(), k, true},
                                    packed.data());
  for (auto _ : state) {
    xfmr::simd::gemm<BenchIsa>(m, n, k, 1.0f, xfmr::simd::GemmA<float>{a.get(), k, 1},
                               xfmr::simd::PackedB<xfmr::bf16>{packed.data(), k, n}, 0.0f,
                               c.get(), n, xfmr::simd::NoEpilogue{}, xfmr::simd::GemmPart::Full,
                               kernel);
    benchmark::DoNotOptimize(c.get());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(xfmr_bench::gemm_flops(m, n, k));
}

void BM_gemm_bf16(benchmark::State& state) { run_bf16(state, xfmr::simd::Bf16Kernel::Auto); }
#if XFMR_HAS_AVX512_BF16
void BM_gemm_bf16_dot(benchmark::State& state) {
  run_bf16(state, xfmr::simd::Bf16Kernel::DotProduct);
}
void BM_gemm_bf16_widen(benchmark::State& state) {
  run_bf16(state, xfmr::simd::Bf16Kernel::Widen);
}
#endif

// The shapes of BM_gemm_packed (gemm.bench.cpp, fp32 weights) plus the fused QKV: per hidden
// size h, N × K = h × h, 3h × h, 4h × h (FFN up), h × 4h (FFN down).
void encoder_args(benchmark::internal::Benchmark* b) {
  for (const std::int64_t h : {384, 768}) {
    b->Args({4096, h, h});
    b->Args({4096, 3 * h, h});
    b->Args({4096, 4 * h, h});
    b->Args({4096, h, 4 * h});
  }
  b->ArgNames({"M", "N", "K"});
}

BENCHMARK(BM_gemm_bf16)->Apply(encoder_args)->Unit(benchmark::kMillisecond);
#if XFMR_HAS_AVX512_BF16
BENCHMARK(BM_gemm_bf16_dot)->Apply(encoder_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gemm_bf16_widen)->Apply(encoder_args)->Unit(benchmark::kMillisecond);
#endif

// Which kernel BM_gemm_bf16 (Auto) runs on this CPU.
const bool kBf16KernelContext = [] {
  benchmark::AddCustomContext(
      "xfmr_bf16_kernel",
      xfmr::simd::to_string(xfmr::simd::gemm_bf16_resolve<BenchIsa>(xfmr::simd::Bf16Kernel::Auto)));
  return true;
}();

}  // namespace

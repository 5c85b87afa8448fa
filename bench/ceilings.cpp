// SPDX-License-Identifier: MIT
// Machine ceilings, measured in the same binary and run as the kernels (DESIGN.md §5), so every
// kernel result reads as a ratio: memory roofs for copies and in-place passes at the buffer
// sizes of the RoPE workloads, the register-only FMA roof, and Eigen SGEMM at attention shapes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <xfmr/detail/eigen.hpp>  // <Eigen/Core> after xfmr/config.hpp (GCC 12, see there)
#include <benchmark/benchmark.h>

#if (defined(__AVX2__) && defined(__FMA__)) || defined(__AVX512BF16__)
#include <immintrin.h>
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define XFMR_BENCH_AVX2 1
#else
#define XFMR_BENCH_AVX2 0
#endif

#include "common.hpp"

namespace {

using xfmr_bench::flop_rate;

// Buffer sizes in bytes: the RoPE tensors of W1 (4096×32×128 and 512×12×64 floats) and W2
// (1024×12×64 floats, also the size of W1-small in double).
constexpr std::int64_t kRopeBufferBytes[] = {
    std::int64_t(4096) * 32 * 128 * 4,  // 64 MiB: DRAM
    std::int64_t(512) * 12 * 64 * 4,    // 1.5 MiB: L3
    std::int64_t(1024) * 12 * 64 * 4,   // 3 MiB: L3
};

void memory_args(benchmark::internal::Benchmark* b) {
  for (const std::int64_t bytes : kRopeBufferBytes) b->Arg(bytes);
  b->ArgNames({"bytes"});
}

// ---- copy: read one buffer, write another ---------------------------------------------------
void BM_ceiling_memcpy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  auto src = xfmr_bench::make_aligned<float>(bytes / sizeof(float));
  auto dst = xfmr_bench::make_aligned<float>(bytes / sizeof(float));
  xfmr_bench::fill(src.get(), bytes / sizeof(float));
  xfmr_bench::fill(dst.get(), bytes / sizeof(float));
  for (auto _ : state) {
    std::memcpy(dst.get(), src.get(), bytes);
    benchmark::DoNotOptimize(dst.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2 *
                          static_cast<std::int64_t>(bytes));  // read + write
}
BENCHMARK(BM_ceiling_memcpy)->Apply(memory_args)->Unit(benchmark::kMicrosecond);

// ---- in place: x = a·x over one buffer (the roof for in-place kernels such as RoPE) ---------
// Out of line so that the loop is the same code whatever the caller; 4 vectors per iteration.
__attribute__((noinline)) void scale_in_place(float* x, std::size_t n, float a) {
  std::size_t i = 0;
#if XFMR_BENCH_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_ps(x + i, _mm256_mul_ps(av, _mm256_loadu_ps(x + i)));
    _mm256_storeu_ps(x + i + 8, _mm256_mul_ps(av, _mm256_loadu_ps(x + i + 8)));
    _mm256_storeu_ps(x + i + 16, _mm256_mul_ps(av, _mm256_loadu_ps(x + i + 16)));
    _mm256_storeu_ps(x + i + 24, _mm256_mul_ps(av, _mm256_loadu_ps(x + i + 24)));
  }
#endif
  for (; i < n; ++i) x[i] *= a;
}

void BM_ceiling_inplace(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const std::size_t n = bytes / sizeof(float);
  auto x = xfmr_bench::make_aligned<float>(n);
  xfmr_bench::fill(x.get(), n);
  float a = -1.0f;  // exact and bounded however often it is applied; opaque to the compiler
  benchmark::DoNotOptimize(a);
  for (auto _ : state) {
    scale_in_place(x.get(), n, a);
    benchmark::DoNotOptimize(x.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2 *
                          static_cast<std::int64_t>(bytes));  // read + write
}
BENCHMARK(BM_ceiling_inplace)->Apply(memory_args)->Unit(benchmark::kMicrosecond);

// ---- compute: register-only FMA chains -------------------------------------------------------
// 12 independent accumulators cover FMA latency (4–5 cycles) × 2 FMA ports with margin.
constexpr int kFmaInner = 4096;
constexpr int kFmaAccumulators = 12;

void BM_ceiling_fma(benchmark::State& state) {
#if XFMR_BENCH_AVX2
  constexpr int lanes = 8;
  float bf = 0.999f, cf = 1e-3f;  // acc → c/(1−b): stays finite
  benchmark::DoNotOptimize(bf);
  benchmark::DoNotOptimize(cf);
  const __m256 b = _mm256_set1_ps(bf), c = _mm256_set1_ps(cf);
  for (auto _ : state) {
    __m256 a0 = _mm256_set1_ps(0.0f), a1 = _mm256_set1_ps(0.1f), a2 = _mm256_set1_ps(0.2f),
           a3 = _mm256_set1_ps(0.3f), a4 = _mm256_set1_ps(0.4f), a5 = _mm256_set1_ps(0.5f),
           a6 = _mm256_set1_ps(0.6f), a7 = _mm256_set1_ps(0.7f), a8 = _mm256_set1_ps(0.8f),
           a9 = _mm256_set1_ps(0.9f), a10 = _mm256_set1_ps(1.0f), a11 = _mm256_set1_ps(1.1f);
    for (int k = 0; k < kFmaInner; ++k) {
      a0 = _mm256_fmadd_ps(a0, b, c);
      a1 = _mm256_fmadd_ps(a1, b, c);
      a2 = _mm256_fmadd_ps(a2, b, c);
      a3 = _mm256_fmadd_ps(a3, b, c);
      a4 = _mm256_fmadd_ps(a4, b, c);
      a5 = _mm256_fmadd_ps(a5, b, c);
      a6 = _mm256_fmadd_ps(a6, b, c);
      a7 = _mm256_fmadd_ps(a7, b, c);
      a8 = _mm256_fmadd_ps(a8, b, c);
      a9 = _mm256_fmadd_ps(a9, b, c);
      a10 = _mm256_fmadd_ps(a10, b, c);
      a11 = _mm256_fmadd_ps(a11, b, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    benchmark::DoNotOptimize(s);
  }
#else
  constexpr int lanes = 1;
  double bf = 0.999, cf = 1e-3;
  benchmark::DoNotOptimize(bf);
  benchmark::DoNotOptimize(cf);
  for (auto _ : state) {
    double acc[kFmaAccumulators] = {};
    for (int k = 0; k < kFmaInner; ++k)
      for (double& a : acc) a = a * bf + cf;
    benchmark::DoNotOptimize(acc);
  }
#endif
  state.counters["FLOP/s"] =
      flop_rate(2.0 * kFmaInner * kFmaAccumulators * lanes);  // 2 FLOP per FMA lane
}
BENCHMARK(BM_ceiling_fma)->Unit(benchmark::kMicrosecond);

// ---- bf16 compute: register-only vdpbf16ps chains (AVX512_BF16 builds only) -----------------
// Each instruction: 16 fp32 lanes += 2 bf16 products each = 64 FLOP (2 per pair product).
// 16 independent accumulators cover the latency × 2 ports with margin (32 zmm registers). The
// operands are bf16(2^-10): each step adds 2^-19, so after 4096 steps an accumulator is 2^-7 + its
// start, finite, far from subnormals.
#if defined(__AVX512BF16__) && defined(__AVX512F__)
void BM_ceiling_bf16(benchmark::State& state) {
  constexpr int kAcc = 16;
  std::int32_t pair = 0x3a803a80;  // two bf16 2^-10
  benchmark::DoNotOptimize(pair);
  const __m512bh x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(pair));
  for (auto _ : state) {
    __m512 acc[kAcc];
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(0.01f * float(i));
    for (int k = 0; k < kFmaInner; ++k)
      for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, x);
    __m512 s = acc[0];
    for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
    benchmark::DoNotOptimize(s);
  }
  state.counters["FLOP/s"] = flop_rate(64.0 * kFmaInner * kAcc);
}
BENCHMARK(BM_ceiling_bf16)->Unit(benchmark::kMicrosecond);
#endif

// ---- Eigen SGEMM at attention shapes: C = A·Bᵀ (Q·Kᵀ tiles, K = head_dim) -------------------
void BM_ceiling_gemm(benchmark::State& state) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Index m = state.range(0), n = state.range(1), k = state.range(2);
  Mat a(m, k), b(n, k), c(m, n);
  xfmr_bench::fill(a.data(), static_cast<std::size_t>(a.size()));
  xfmr_bench::fill(b.data(), static_cast<std::size_t>(b.size()));
  c.setZero();
  for (auto _ : state) {
    c.noalias() = a * b.transpose();
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = flop_rate(xfmr_bench::gemm_flops(m, n, k));
}
void gemm_args(benchmark::internal::Benchmark* b) {
  for (const std::int64_t k : {64, 128})
    for (const std::int64_t mn : {512, 2048, 4096}) b->Args({mn, mn, k});  // W3 score tiles
  b->Args({1024, 1024, 1024});  // square reference
  b->ArgNames({"M", "N", "K"});
}
BENCHMARK(BM_ceiling_gemm)->Apply(gemm_args)->Unit(benchmark::kMillisecond);

}  // namespace

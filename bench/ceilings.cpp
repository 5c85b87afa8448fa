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
#if XFMR_BENCH_AVX2 && defined(__AVX512F__)
#define XFMR_BENCH_AVX512 1
#else
#define XFMR_BENCH_AVX512 0
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
// W9 decode: a copy that moves as many bytes as the decode reads, K and V of n ∈ {4096, 32768}
// keys × 8 K/V heads × d = 128 floats (16 + 16 MiB and 128 + 128 MiB); the bf16 cache at
// n = 4096 reads 8 + 8 MiB (its n = 32768 twin, 64 MiB, is the first RoPE size above).
BENCHMARK(BM_ceiling_memcpy)
    ->Arg(std::int64_t(4096) * 8 * 128 * 2)
    ->Arg(std::int64_t(4096) * 8 * 128 * 4)
    ->Arg(std::int64_t(32768) * 8 * 128 * 4)
    ->ArgNames({"bytes"})
    ->Unit(benchmark::kMicrosecond);

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
  const float a = xfmr_bench::opaque(-1.0f);  // exact and bounded however often it is applied
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

// Independent accumulator chains of acc = acc·b + c per tier: enough to cover the FMA latency on
// every port (4 cycles × 2 ports = 8 chains in flight on Intel; 12 for AVX2, 16 for AVX-512 leaves
// slack) while staying in registers (16 ymm / 32 zmm).
template <class Ops, int N>
XFMR_INLINE void fma_chains(typename Ops::type (&acc)[N], typename Ops::type b,
                            typename Ops::type c) {
  for (int k = 0; k < kFmaInner; ++k) {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 32
#endif
    for (int i = 0; i < N; ++i) acc[i] = Ops::fmadd(acc[i], b, c);
  }
}

template <class Ops, int N>
void fma_ceiling(benchmark::State& state) {
  using R = typename Ops::type;
  const float bf = xfmr_bench::opaque(0.999f), cf = xfmr_bench::opaque(1e-3f);  // acc → c/(1−b)
  const R b = Ops::set1(bf), c = Ops::set1(cf);
  for (auto _ : state) {
    R acc[N];
    for (int i = 0; i < N; ++i) acc[i] = Ops::set1(0.1f * static_cast<float>(i));
    fma_chains<Ops>(acc, b, c);
    R s = acc[0];
    for (int i = 1; i < N; ++i) s = Ops::add(s, acc[i]);
    benchmark::DoNotOptimize(s);
  }
  state.counters["FLOP/s"] =
      flop_rate(2.0 * kFmaInner * N * Ops::lanes);  // 2 FLOP per FMA lane
}

#if XFMR_BENCH_AVX2
struct FmaOpsAvx2 {
  using type = __m256;
  static constexpr int lanes = 8;
  static XFMR_INLINE type set1(float a) { return _mm256_set1_ps(a); }
  static XFMR_INLINE type add(type a, type b) { return _mm256_add_ps(a, b); }
  static XFMR_INLINE type fmadd(type a, type b, type c) { return _mm256_fmadd_ps(a, b, c); }
};
#endif
#if XFMR_BENCH_AVX512
struct FmaOpsAvx512 {
  using type = __m512;
  static constexpr int lanes = 16;
  static XFMR_INLINE type set1(float a) { return _mm512_set1_ps(a); }
  static XFMR_INLINE type add(type a, type b) { return _mm512_add_ps(a, b); }
  static XFMR_INLINE type fmadd(type a, type b, type c) { return _mm512_fmadd_ps(a, b, c); }
};
#endif
#if !XFMR_BENCH_AVX2
struct FmaOpsScalar {
  using type = float;
  static constexpr int lanes = 1;
  static XFMR_INLINE type set1(float a) { return a; }
  static XFMR_INLINE type add(type a, type b) { return a + b; }
  static XFMR_INLINE type fmadd(type a, type b, type c) { return a * b + c; }
};
#endif

// The register-only fp32 FMA roof, one row per compiled vector tier: BM_ceiling_fma/isa:avx512
// (the roof of the native tier when AVX-512 is compiled in), /isa:avx2; /isa:scalar without
// either. Read each kernel against the row of the tier it runs (bench context xfmr_isa).
#if XFMR_BENCH_AVX512
BENCHMARK_TEMPLATE(fma_ceiling, FmaOpsAvx512, 16)
    ->Name("BM_ceiling_fma/isa:avx512")
    ->Unit(benchmark::kMicrosecond);
#endif
#if XFMR_BENCH_AVX2
BENCHMARK_TEMPLATE(fma_ceiling, FmaOpsAvx2, 12)
    ->Name("BM_ceiling_fma/isa:avx2")
    ->Unit(benchmark::kMicrosecond);
#else
BENCHMARK_TEMPLATE(fma_ceiling, FmaOpsScalar, 12)
    ->Name("BM_ceiling_fma/isa:scalar")
    ->Unit(benchmark::kMicrosecond);
#endif

// ---- bf16 compute: register-only vdpbf16ps chains (AVX512_BF16 builds only) -----------------
// Each instruction: 16 fp32 lanes += 2 bf16 products each = 64 FLOP (2 per pair product).
// 16 independent accumulators cover the latency × 2 ports with margin (32 zmm registers). The
// operands are bf16(2^-10): each step adds 2^-19, so after 4096 steps an accumulator is 2^-7 + its
// start, finite, far from subnormals.
#if defined(__AVX512BF16__) && defined(__AVX512F__)
void BM_ceiling_bf16(benchmark::State& state) {
  constexpr int kAcc = 16;
  const std::int32_t pair = xfmr_bench::opaque(std::int32_t{0x3a803a80});  // two bf16 2^-10
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

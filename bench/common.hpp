// SPDX-License-Identifier: MIT
// Shared helpers for xfmr_bench: aligned buffers, touching memory before timing, and the byte
// and FLOP counts of DESIGN.md §5 (one helper per component, the same ones the README quotes).
#ifndef XFMR_BENCH_COMMON_HPP
#define XFMR_BENCH_COMMON_HPP

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include <benchmark/benchmark.h>

namespace xfmr_bench {

/// 64-byte aligned, uninitialised heap array (the same alignment Eigen uses for large blocks).
template <typename T>
struct AlignedFree {
  void operator()(T* p) const noexcept { std::free(p); }
};
template <typename T>
using AlignedArray = std::unique_ptr<T[], AlignedFree<T>>;

template <typename T>
AlignedArray<T> make_aligned(std::size_t n) {
  const std::size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  return AlignedArray<T>(static_cast<T*>(p));
}

/// `value`, opaque to the optimiser (a volatile round trip): for benchmark inputs that must not be
/// constant-folded. Not `benchmark::DoNotOptimize(local)`: with GCC 12 its "+m,r" constraint on a
/// float local compiled to a load from a stack slot that was never written, so the FMA ceilings
/// ran on whatever the stack held (intermittent misreadings down to 0.3 GFLOP/s from 75).
template <typename T>
T opaque(T value) {
  volatile T copy = value;
  return copy;
}

/// Writes every element (deterministic, bounded values) so that each page is mapped and, for
/// buffers that fit, cache-resident before the timed loop starts.
template <typename T>
void fill(T* p, std::size_t n) {
  std::uint32_t state = 0x9e3779b9u;
  for (std::size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    p[i] = static_cast<T>(static_cast<double>(state >> 8) / double(1u << 24) - 0.5);
  }
  benchmark::DoNotOptimize(p);
  benchmark::ClobberMemory();
}

/// RoPE traffic (DESIGN.md §5): the tensor is read once and written once,
/// 2 · tokens · heads · head_dim · sizeof(T). The cos/sin tables are excluded: they are
/// tokens · rotary_dim values, shared by all heads, a factor `heads` smaller than the tensor.
inline std::int64_t rope_bytes(std::int64_t tokens, std::int64_t heads, std::int64_t head_dim,
                               std::size_t elem_size) {
  return 2 * tokens * heads * head_dim * static_cast<std::int64_t>(elem_size);
}

/// GEMM C(M×N) = A(M×K)·B(K×N): 2·M·N·K FLOPs.
inline double gemm_flops(std::int64_t m, std::int64_t n, std::int64_t k) {
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
}

/// FLOP/s counter: `flops` per iteration, reported as a plain rate.
inline benchmark::Counter flop_rate(double flops_per_iteration) {
  return benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace xfmr_bench

#endif  // XFMR_BENCH_COMMON_HPP

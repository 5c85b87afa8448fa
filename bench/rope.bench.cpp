// SPDX-License-Identifier: MIT
// RoPE throughput (DESIGN.md §5, workloads W1 and W2). Each benchmark is registered twice, side
// by side: isa:native runs the component (Rope<T>::apply or RopeND<T>::apply_grid, on the widest
// compiled tier: AVX-512 or AVX2) and isa:scalar runs the portable kernel
// (simd::rope_*<scalar_isa>) head by head over the same data with the same cos/sin table.
// Read the rates against BM_ceiling_inplace (in place) and BM_ceiling_memcpy (out of place) at
// the same byte size: 4096×32×128 floats = 64 MiB, 512×12×64 floats = 1.5 MiB, 1024×12×64 floats
// (and 512×12×64 doubles) = 3 MiB.
#include <cstddef>
#include <cstdint>
#include <string>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/position/rope.hpp"
#include "xfmr/position/rope_nd.hpp"

namespace {

using xfmr::Index;
using xfmr::RopeLayout;

enum class Path { Native, Scalar };

const char* layout_name(RopeLayout layout) {
  return layout == RopeLayout::Interleaved ? "interleaved" : "half_split";
}
const char* path_name(Path path) { return path == Path::Native ? "native" : "scalar"; }

/// The scalar reference path: the loop of Rope<T>::apply (one table row per token, shared by all
/// heads) with the portable kernel. The table is built exactly as Rope builds its own.
template <typename T>
class ScalarRope {
 public:
  explicit ScalarRope(const xfmr::RopeConfig& config)
      : m_layout(config.layout),
        m_head_dim(config.head_dim),
        m_rot(config.rotary_dim == 0 ? config.head_dim : config.rotary_dim),
        m_table(xfmr::rope_inv_freq(m_rot, config.base, config.scaling),
                xfmr::rope_attention_factor(config.scaling), config.cached_positions) {}

  /// Positions [pos0, pos0 + rows) must be cached (they are in every workload here).
  void apply(const T* x, T* y, Index rows, Index cols, Index pos0) const {
    const Index heads = cols / m_head_dim, pairs = m_table.pairs();
    const auto rot = static_cast<std::size_t>(m_rot);
    for (Index t = 0; t < rows; ++t) {
      const T* c = m_table.row(pos0 + t, nullptr);
      const T* s = c + pairs;
      for (Index h = 0; h < heads; ++h) {
        const T* xh = x + t * cols + h * m_head_dim;
        T* yh = y + t * cols + h * m_head_dim;
        if (m_layout == RopeLayout::Interleaved)
          xfmr::simd::rope_interleaved<xfmr::simd::scalar_isa>(xh, c, s, yh, rot);
        else
          xfmr::simd::rope_half_split<xfmr::simd::scalar_isa>(xh, c, s, yh, rot);
      }
    }
  }

 private:
  RopeLayout m_layout;
  Index m_head_dim;
  Index m_rot;
  xfmr::detail::RopeTable<T> m_table;
};

/// Rotates a (tokens × heads·dim) matrix starting at position 0, so every position is cached
/// (cached_positions = 4096 >= tokens) and the timing is the kernel plus memory, not cos/sin.
/// In place the same buffer is rotated again each iteration: rotations keep values bounded.
template <typename T, bool InPlace>
void BM_rope(benchmark::State& state, RopeLayout layout, Path path) {
  const Index tokens = state.range(0), heads = state.range(1), dim = state.range(2);
  xfmr::RopeConfig config;
  config.head_dim = dim;
  config.layout = layout;

  xfmr::RowMatrix<T> x(tokens, heads * dim);
  xfmr_bench::fill(x.data(), static_cast<std::size_t>(x.size()));  // maps and touches every page
  xfmr::RowMatrix<T> out;
  if (!InPlace) {
    out.resize(tokens, heads * dim);
    xfmr_bench::fill(out.data(), static_cast<std::size_t>(out.size()));
  }
  T* y = InPlace ? x.data() : out.data();

  if (path == Path::Native) {
    const xfmr::Rope<T> rope(config);
    for (auto _ : state) {
      if constexpr (InPlace)
        rope.apply(x, 0);
      else
        rope.apply(x, out, 0);
      benchmark::DoNotOptimize(y);
      benchmark::ClobberMemory();
    }
  } else {
    const ScalarRope<T> rope(config);
    for (auto _ : state) {
      rope.apply(x.data(), y, tokens, heads * dim, 0);
      benchmark::DoNotOptimize(y);
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          xfmr_bench::rope_bytes(tokens, heads, dim, sizeof(T)));
}

/// The scalar reference for W2: RopeND's loop (block a of every head rotated by coordinate a,
/// RowFirst grid coordinates) with the portable kernel and the table RopeND builds.
template <typename T>
class ScalarRope2D {
 public:
  explicit ScalarRope2D(const xfmr::RopeNDConfig& config)
      : m_layout(config.layout),
        m_head_dim(config.head_dim),
        m_table(xfmr::rope_inv_freq(config.head_dim / 2, config.base), 1.0,
                config.cached_positions) {}

  /// In place over a rows × cols grid; every coordinate must be cached.
  void apply_grid(T* x, Index rows, Index cols, Index width) const {
    const Index d = m_head_dim, m = d / 2, heads = width / d, pairs = m_table.pairs();
    for (Index t = 0; t < rows * cols; ++t) {
      const Index coord[2] = {t / cols, t % cols};
      for (Index a = 0; a < 2; ++a) {
        const T* c = m_table.row(coord[a], nullptr);
        const T* s = c + pairs;
        for (Index h = 0; h < heads; ++h) {
          T* xb = x + t * width + h * d + a * m;
          if (m_layout == RopeLayout::Interleaved)
            xfmr::simd::rope_interleaved<xfmr::simd::scalar_isa>(xb, c, s, xb, std::size_t(m));
          else
            xfmr::simd::rope_half_split<xfmr::simd::scalar_isa>(xb, c, s, xb, std::size_t(m));
        }
      }
    }
  }

 private:
  RopeLayout m_layout;
  Index m_head_dim;
  xfmr::detail::RopeTable<T> m_table;
};

/// W2: RoPE-2D in place over a rows × cols patch grid (token t at row t / cols, column
/// t % cols), float. Same byte count as 1D: the tensor read once and written once.
void BM_rope_2d(benchmark::State& state, RopeLayout layout, Path path) {
  const Index rows = state.range(0), cols = state.range(1), heads = state.range(2),
              dim = state.range(3);
  xfmr::RopeNDConfig config;
  config.head_dim = dim;
  config.axes = 2;
  config.layout = layout;  // cached_positions (1024) covers every coordinate of the grid

  xfmr::RowMatrix<float> x(rows * cols, heads * dim);
  xfmr_bench::fill(x.data(), static_cast<std::size_t>(x.size()));
  if (path == Path::Native) {
    const xfmr::RopeND<float> rope(config);
    for (auto _ : state) {
      rope.apply_grid(x, rows, cols, xfmr::GridAxes::RowFirst);
      benchmark::DoNotOptimize(x.data());
      benchmark::ClobberMemory();
    }
  } else {
    const ScalarRope2D<float> rope(config);
    for (auto _ : state) {
      rope.apply_grid(x.data(), rows, cols, x.cols());
      benchmark::DoNotOptimize(x.data());
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          xfmr_bench::rope_bytes(rows * cols, heads, dim, sizeof(float)));
}

struct Shape {
  Index tokens, heads, dim;
};

template <typename T, bool InPlace>
void register_rope(const std::string& variant, const Shape& shape) {
  for (const RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit}) {
    for (const Path path : {Path::Native, Path::Scalar}) {
      const std::string name = "BM_rope_" + variant + "/layout:" + layout_name(layout) +
                               "/isa:" + path_name(path);
      benchmark::RegisterBenchmark(name.c_str(),
                                   [layout, path](benchmark::State& state) {
                                     BM_rope<T, InPlace>(state, layout, path);
                                   })
          ->Args({shape.tokens, shape.heads, shape.dim})
          ->ArgNames({"tokens", "heads", "dim"})
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

void register_rope_2d(Index rows, Index cols, Index heads, Index dim) {
  for (const RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit}) {
    for (const Path path : {Path::Native, Path::Scalar}) {
      const std::string name = std::string("BM_rope_2d/layout:") + layout_name(layout) +
                               "/isa:" + path_name(path);
      benchmark::RegisterBenchmark(
          name.c_str(),
          [layout, path](benchmark::State& state) { BM_rope_2d(state, layout, path); })
          ->Args({rows, cols, heads, dim})
          ->ArgNames({"rows", "cols", "heads", "dim"})
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

const bool registered = [] {
  // W1: RoPE-1D in place, float, LLaMA-7B-like (64 MiB, DRAM) and BERT-base-like (1.5 MiB, L3).
  register_rope<float, true>("inplace", {4096, 32, 128});
  register_rope<float, true>("inplace", {512, 12, 64});
  // W1-small in double (3 MiB).
  register_rope<double, true>("inplace_f64", {512, 12, 64});
  // W1-large out of place: x read, out written (compare with BM_ceiling_memcpy).
  register_rope<float, false>("outofplace", {4096, 32, 128});
  // W2: RoPE-2D over a 32×32 patch grid (1024 tokens, 3 MiB), 12 heads of 64.
  register_rope_2d(32, 32, 12, 64);
  return true;
}();

}  // namespace

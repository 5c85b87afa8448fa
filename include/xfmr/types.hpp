// SPDX-License-Identifier: MIT
// Common types: row-major Eigen matrices and the views every component takes.
#ifndef XFMR_TYPES_HPP
#define XFMR_TYPES_HPP

#include <cstdint>
#include <type_traits>

#include "detail/eigen.hpp"

#include "config.hpp"

XFMR_NAMESPACE_BEGIN

static_assert(std::is_same_v<Index, Eigen::Index>, "xfmr::Index must be Eigen::Index");

/// Row-major dense matrix: one token per row, channels contiguous.
template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

/// Views. Rows may be strided (a block of a larger matrix); channels within a row are contiguous.
template <typename T>
using MatrixRef = Eigen::Ref<RowMatrix<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using ConstMatrixRef = const Eigen::Ref<const RowMatrix<T>, 0, Eigen::OuterStride<>>&;

/// Integer positions (one per token) and integer coordinate tuples (one row per token).
using PositionVector = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;
using ConstPositionsRef = const Eigen::Ref<const PositionVector>&;
using CoordinateMatrix =
    Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstCoordinatesRef = const Eigen::Ref<const CoordinateMatrix, 0, Eigen::OuterStride<>>&;

/// How a layer keeps its weights: Native (as its scalar type T), or Bf16 (rounded to bfloat16
/// once, RNE: half the bytes, products accumulated in fp32 — vdpbf16ps where the CPU has
/// AVX512_BF16; float layers only). Error bound: simd/gemm_bf16.hpp.
enum class WeightStorage { Native, Bf16 };
/// "native" / "bf16".
inline const char* to_string(WeightStorage s) noexcept {
  return s == WeightStorage::Bf16 ? "bf16" : "native";
}

/// Token ids (vocabulary rows, token types): one per token, int64 as HF's input_ids; a padded
/// batch of sequences is a row-major (batch × n) IdMatrix.
using IdVector = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;
using ConstIdsRef = const Eigen::Ref<const IdVector>&;
using IdMatrix = Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstIdMatrixRef = const Eigen::Ref<const IdMatrix, 0, Eigen::OuterStride<>>&;

namespace detail {
inline constexpr double kPi = 3.141592653589793238462643383279502884;
}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_TYPES_HPP

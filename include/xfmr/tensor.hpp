// SPDX-License-Identifier: MIT
// Tensor views: Eigen's Tensor module and xfmr's row-major view names. Include this (or the
// umbrella) to call the tensor-view overloads of Rope, SoftmaxAttention, LinearAttention, ...;
// the component headers only declare Eigen's tensor classes (detail/tensor_fwd.hpp).
#ifndef XFMR_TENSOR_HPP
#define XFMR_TENSOR_HPP

#include <type_traits>

#include "detail/eigen.hpp"
#include <unsupported/Eigen/CXX11/Tensor>

#include "detail/tensor_fwd.hpp"

XFMR_NAMESPACE_BEGIN
namespace detail {
// The forward declarations name the very types Eigen's defaults give.
static_assert(std::is_same_v<TensorView<float, 3>,
                             Eigen::TensorMap<Eigen::Tensor<float, 3, Eigen::RowMajor>>> &&
                  std::is_same_v<ConstTensorView<double, 4>,
                                 Eigen::TensorMap<const Eigen::Tensor<double, 4, Eigen::RowMajor>>>,
              "xfmr::TensorView no longer matches Eigen's TensorMap defaults");
}  // namespace detail
XFMR_NAMESPACE_END

#endif  // XFMR_TENSOR_HPP

// SPDX-License-Identifier: MIT
// Eigen's TensorMap and Tensor, declared but not defined, and xfmr's names for the row-major
// tensor views, so that a component can offer tensor-view overloads without making every user
// compile Eigen's Tensor module (about 35k lines). Include <xfmr/tensor.hpp> (or
// <unsupported/Eigen/CXX11/Tensor>) to construct and pass a view.
#ifndef XFMR_DETAIL_TENSOR_FWD_HPP
#define XFMR_DETAIL_TENSOR_FWD_HPP

#include "eigen.hpp"

#include "../config.hpp"

// The same parameter lists as Eigen 3.4's TensorForwardDeclarations.h, without the default
// arguments (those may be given once only: Eigen gives them). Redeclaring a class template is
// legal before or after its definition, so the include order does not matter. Should Eigen ever
// change these lists, every translation unit that includes both fails to compile (a redeclaration
// mismatch), and xfmr/tensor.hpp checks that the aliases below equal Eigen's defaults.
namespace Eigen {
template <typename T>
struct MakePointer;
template <typename PlainObjectType, int Options_, template <class> class MakePointer_>
class TensorMap;
template <typename Scalar_, int NumIndices_, int Options_, typename IndexType>
class Tensor;
}  // namespace Eigen

XFMR_NAMESPACE_BEGIN

/// Row-major tensor views, e.g. [tokens, heads, dim] (Rank 3) or [batch, tokens, heads, dim]
/// (Rank 4): exactly Eigen::TensorMap<Eigen::Tensor<T, Rank, Eigen::RowMajor>> and its const
/// form. A member function taking one stays uninstantiated, hence compiles without the Tensor
/// module, until it is called, and a caller holding a TensorMap has the module already.
template <typename T, int Rank>
using TensorView = Eigen::TensorMap<Eigen::Tensor<T, Rank, Eigen::RowMajor, Eigen::DenseIndex>,
                                    Eigen::Unaligned, Eigen::MakePointer>;
template <typename T, int Rank>
using ConstTensorView =
    Eigen::TensorMap<const Eigen::Tensor<T, Rank, Eigen::RowMajor, Eigen::DenseIndex>,
                     Eigen::Unaligned, Eigen::MakePointer>;

XFMR_NAMESPACE_END

#endif  // XFMR_DETAIL_TENSOR_FWD_HPP

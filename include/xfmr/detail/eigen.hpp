// SPDX-License-Identifier: MIT
// <Eigen/Core> for xfmr's headers, always after config.hpp, which includes <immintrin.h> first
// with GCC 12's false -Wmaybe-uninitialized / -Wuninitialized silenced inside the intrinsics only
// (see config.hpp). Include this instead of <Eigen/Core> in include/xfmr.
#ifndef XFMR_DETAIL_EIGEN_HPP
#define XFMR_DETAIL_EIGEN_HPP

#include "../config.hpp"

#include <Eigen/Core>

#endif  // XFMR_DETAIL_EIGEN_HPP

// SPDX-License-Identifier: MIT
// The vector vocabulary Vec<T, Isa> for every ISA this build can run.
#ifndef XFMR_SIMD_VEC_HPP
#define XFMR_SIMD_VEC_HPP

#include "isa.hpp"
#include "vec_scalar.hpp"
#include "vec_avx2.hpp"
#include "vec_avx512.hpp"

#endif  // XFMR_SIMD_VEC_HPP

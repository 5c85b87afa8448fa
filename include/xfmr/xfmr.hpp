// SPDX-License-Identifier: MIT
// Umbrella header: every public xfmr header.
#ifndef XFMR_XFMR_HPP
#define XFMR_XFMR_HPP

#include "config.hpp"
#include "error.hpp"
#include "types.hpp"
#include "version.hpp"

#include "simd/exp.hpp"
#include "simd/isa.hpp"
#include "simd/rope.hpp"
#include "simd/vec.hpp"

#include "position/hierarchical.hpp"
#include "position/rope.hpp"
#include "position/rope_nd.hpp"
#include "position/rope_scaling.hpp"
#include "position/sinusoidal.hpp"

#endif  // XFMR_XFMR_HPP

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

#include "heads/global_pointer.hpp"
#include "heads/span_decode.hpp"
#include "heads/whitening.hpp"
#include "heads/whitening_stats.hpp"

#include "io/binary_format.hpp"

#endif  // XFMR_XFMR_HPP

// SPDX-License-Identifier: MIT
// xfmr version; CMake parses these three lines.
#ifndef XFMR_VERSION_HPP
#define XFMR_VERSION_HPP

#define XFMR_VERSION_MAJOR 0
#define XFMR_VERSION_MINOR 1
#define XFMR_VERSION_PATCH 0

#endif  // XFMR_VERSION_HPP

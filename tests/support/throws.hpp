// SPDX-License-Identifier: MIT
// Error checks: exception type *and* message (STYLE.md §3.5).
#ifndef XFMR_TESTS_SUPPORT_THROWS_HPP
#define XFMR_TESTS_SUPPORT_THROWS_HPP

#include <stdexcept>

#include <catch2/catch.hpp>

/// expr throws std::invalid_argument whose what() contains text. Evaluates expr twice.
#define XFMR_REQUIRE_INVALID(expr, text)                    \
  do {                                                      \
    REQUIRE_THROWS_AS(expr, std::invalid_argument);         \
    REQUIRE_THROWS_WITH(expr, Catch::Contains(text));       \
  } while (false)

#endif  // XFMR_TESTS_SUPPORT_THROWS_HPP

// SPDX-License-Identifier: MIT
// Reading the golden data of tests/golden (written by tests/golden/make_golden.py): inputs and
// reference outputs stored as F32 safetensors, float64 references as hi + lo F32 pairs.
#ifndef XFMR_TESTS_SUPPORT_GOLDEN_HPP
#define XFMR_TESTS_SUPPORT_GOLDEN_HPP

#include <algorithm>
#include <cmath>
#include <string>

#include <xfmr/models/encoder_model.hpp>
#include <xfmr/types.hpp>
#include <xfmr/weights/safetensors.hpp>

#ifndef XFMR_TEST_GOLDEN_DIR
#error "XFMR_TEST_GOLDEN_DIR must name tests/golden (set by tests/CMakeLists.txt)"
#endif

namespace xfmr_test {

inline std::string golden_dir(const std::string& model) {
  return std::string(XFMR_TEST_GOLDEN_DIR) + "/" + model;
}

/// The golden file of one model folder.
struct Golden {
  xfmr::SafetensorsFile file;

  explicit Golden(const std::string& model)
      : file(xfmr::SafetensorsFile::open(golden_dir(model) + "/golden.safetensors")) {}

  /// A reference from the float run ("f32.hidden", …) as T, or the float64 run's hi + lo pair
  /// summed in double (f64("f64.hidden") reads "f64.hidden.hi" + "f64.hidden.lo").
  template <typename T>
  xfmr::RowMatrix<T> f32(const std::string& name) const {
    return file.matrix<T>(name);
  }
  xfmr::RowMatrix<double> f64(const std::string& name) const {
    xfmr::RowMatrix<double> hi = file.matrix<double>(name + ".hi");
    hi += file.matrix<double>(name + ".lo");
    return hi;
  }

  /// The padded batch: ids, token types, lengths (stored as F32, exact integers).
  xfmr::EncoderInput input() const {
    const xfmr::RowMatrix<double> ids = file.matrix<double>("input_ids");
    const xfmr::RowMatrix<double> types = file.matrix<double>("token_type_ids");
    const Eigen::VectorXd lengths = file.vector<double>("lengths");
    xfmr::EncoderInput in;
    in.ids = ids.cast<std::int64_t>();
    in.token_type_ids = types.cast<std::int64_t>();
    in.lengths = lengths.cast<xfmr::Index>();
    return in;
  }
  xfmr::IdMatrix segment_ids() const {
    return file.matrix<double>("segment_ids").cast<std::int64_t>();
  }
};

/// max over the valid rows of sequence b of |got − ref|, divided by max |ref| over the same
/// rows: the relative error the golden tests quote ("per sequence").
template <class A, class B>
double sequence_rel_error(const A& got, const B& ref, xfmr::Index row0, xfmr::Index rows) {
  long double num = 0, den = 0;
  for (xfmr::Index r = row0; r < row0 + rows; ++r)
    for (xfmr::Index c = 0; c < ref.cols(); ++c) {
      const long double g = static_cast<long double>(got(r, c));
      const long double f = static_cast<long double>(ref(r, c));
      num = std::max(num, std::fabs(g - f));
      den = std::max(den, std::fabs(f));
      if (std::isnan(static_cast<double>(g))) return INFINITY;
    }
  return den > 0 ? static_cast<double>(num / den) : static_cast<double>(num);
}

}  // namespace xfmr_test

#endif  // XFMR_TESTS_SUPPORT_GOLDEN_HPP

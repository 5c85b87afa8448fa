// SPDX-License-Identifier: MIT
// libFuzzer target for the safetensors reader (weights/safetensors.hpp): any input either throws
// xfmr::format_error or opens into a file whose every tensor reads, with its offsets inside the
// data and its byte count numel × dtype size. Anything else (another exception, a sanitizer
// report, a broken invariant) is a finding.
// Build: cmake -DXFMR_BUILD_FUZZERS=ON -DCMAKE_CXX_COMPILER=clang++ (-fsanitize=fuzzer,address,
// undefined); run: xfmr_fuzz_safetensors -dict=tests/fuzz/safetensors.dict <scratch corpus dir>
// tests/fuzz/corpus/safetensors (see README "Fuzzing").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <xfmr/weights/safetensors.hpp>

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void read_all(const xfmr::SafetensorsFile& f, std::size_t input_size) {
  std::uint64_t covered = 0;
  for (const std::string& name : f.names()) {
    const xfmr::TensorInfo& t = f.info(name);
    check(t.name == name);
    check(t.begin <= t.end && t.end <= input_size);
    check(static_cast<std::uint64_t>(t.numel()) * xfmr::dtype_size(t.dtype) == t.end - t.begin);
    covered += t.end - t.begin;
    if (t.dtype == xfmr::Dtype::I64) continue;
    const auto v = f.flat<float>(name);
    check(v.size() == t.numel());
    if (t.shape.size() == 2) {
      const auto m = f.matrix<double>(name, t.shape[0], t.shape[1]);
      for (xfmr::Index i = 0; i < m.size(); ++i)  // float → double is exact (NaN stays NaN)
        check(m.data()[i] == static_cast<double>(v(i)) || (m.data()[i] != m.data()[i]));
    } else if (t.shape.size() == 1) {
      check(f.vector<float>(name, t.shape[0]).size() == t.shape[0]);
    }
  }
  check(covered + 8 <= input_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  try {
    const xfmr::SafetensorsFile f = xfmr::SafetensorsFile::from_bytes(std::move(bytes));
    read_all(f, size);
  } catch (const xfmr::format_error&) {
    // malformed input, rejected as it should be
  }
  return 0;
}

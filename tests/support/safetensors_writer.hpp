// SPDX-License-Identifier: MIT
// A minimal safetensors writer for tests: build checkpoints with chosen names, shapes and dtypes
// (F32, BF16, I64), then open them with SafetensorsFile::from_bytes.
#ifndef XFMR_TESTS_SUPPORT_SAFETENSORS_WRITER_HPP
#define XFMR_TESTS_SUPPORT_SAFETENSORS_WRITER_HPP

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <xfmr/types.hpp>

namespace xfmr_test {

struct SafetensorsWriter {
  struct Entry {
    std::string dtype;
    std::vector<xfmr::Index> shape;
    std::vector<std::uint8_t> bytes;
  };
  std::map<std::string, Entry> tensors;  // sorted by name, as written

  /// Float values stored as F32, or as BF16 (round to nearest even) when bf16 is set.
  void add(const std::string& name, std::vector<xfmr::Index> shape, const float* values,
           bool bf16 = false) {
    xfmr::Index n = 1;
    for (auto s : shape) n *= s;
    Entry e{bf16 ? "BF16" : "F32", std::move(shape), {}};
    for (xfmr::Index i = 0; i < n; ++i) {
      std::uint32_t bits;
      std::memcpy(&bits, values + i, 4);
      if (bf16) {
        const std::uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
        e.bytes.push_back(std::uint8_t(rounded & 0xff));
        e.bytes.push_back(std::uint8_t(rounded >> 8));
      } else {
        for (int b = 0; b < 4; ++b) e.bytes.push_back(std::uint8_t(bits >> (8 * b)));
      }
    }
    tensors[name] = std::move(e);
  }
  void add_i64(const std::string& name, const std::vector<std::int64_t>& values) {
    Entry e{"I64", {static_cast<xfmr::Index>(values.size())}, {}};
    for (std::int64_t v : values)
      for (int b = 0; b < 8; ++b) e.bytes.push_back(std::uint8_t(std::uint64_t(v) >> (8 * b)));
    tensors[name] = std::move(e);
  }

  std::vector<std::uint8_t> bytes() const {
    std::string header = "{";
    std::size_t offset = 0;
    bool first = true;
    for (const auto& [name, e] : tensors) {
      header += (first ? "\"" : ",\"") + name + "\":{\"dtype\":\"" + e.dtype + "\",\"shape\":[";
      for (std::size_t i = 0; i < e.shape.size(); ++i)
        header += (i ? "," : "") + std::to_string(e.shape[i]);
      header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
                std::to_string(offset + e.bytes.size()) + "]}";
      offset += e.bytes.size();
      first = false;
    }
    header += "}";
    while (header.size() % 8 != 0) header += ' ';
    std::vector<std::uint8_t> out(8);
    const std::uint64_t n = header.size();
    for (int b = 0; b < 8; ++b) out[std::size_t(b)] = std::uint8_t(n >> (8 * b));
    out.insert(out.end(), header.begin(), header.end());
    for (const auto& kv : tensors)
      out.insert(out.end(), kv.second.bytes.begin(), kv.second.bytes.end());
    return out;
  }
};

}  // namespace xfmr_test

#endif  // XFMR_TESTS_SUPPORT_SAFETENSORS_WRITER_HPP

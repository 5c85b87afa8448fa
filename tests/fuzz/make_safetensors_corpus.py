#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of tests/fuzz/safetensors_fuzz.cpp: small valid safetensors files
(standard library only; the layout is SPEC §16). Run from anywhere:
    python3 tests/fuzz/make_safetensors_corpus.py
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "safetensors")
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


def write(name, tensors, metadata=None, pad=0):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for tname, dtype, shape, raw in tensors:
        n = 1
        for s in shape:
            n *= s
        assert len(raw) == n * SIZE[dtype], tname
        header[tname] = {"dtype": dtype, "shape": shape,
                         "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode() + b" " * pad
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def u16(*v):
    return struct.pack("<%dH" % len(v), *v)


def main():
    os.makedirs(OUT, exist_ok=True)
    write("empty", [], pad=6)
    write("metadata_only", [], metadata={"format": "pt"})
    write("f32_matrix", [("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6))])
    write("f32_misaligned", [("w", "F32", [3], f32(-1, 0.5, 1e30)), ("b", "F32", [1], f32(2))],
          pad=1)
    write("f16_specials", [("h", "F16", [8], u16(0x7BFF, 0x0400, 0x0001, 0x03FF, 0x8000, 0x7C00,
                                                  0xFC00, 0x7E00))], pad=3)
    write("bf16", [("g", "BF16", [2, 2], u16(0x3F80, 0xC020, 0x7F62, 0x0001))],
          metadata={"a": "b"})
    write("mixed", [("position_ids", "I64", [1, 2], struct.pack("<2q", 0, 1)),
                    ("z", "F32", [0, 4], b""),
                    ("s", "F32", [], f32(2.5)),
                    ("h", "F16", [2], u16(0x3C00, 0xBC00)),
                    ("w", "BF16", [1, 1, 2], u16(0x3F80, 0x4000))],
          metadata={"format": "pt"}, pad=2)
    golden = os.path.join(HERE, "..", "golden", "safetensors_sample.safetensors")
    shutil.copy(golden, os.path.join(OUT, "python_library_sample"))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes tests/golden/safetensors_sample.safetensors with the reference Python `safetensors`
library, for tests/weights/safetensors.test.cpp (which recomputes every value below; C++ tests
and CI need no Python).

Needs torch and safetensors (bf16 needs torch; numpy has no bfloat16), e.g. in a virtual
environment:
    python3 -m venv /tmp/venv-st && /tmp/venv-st/bin/pip install torch safetensors
    /tmp/venv-st/bin/python tests/golden/make_safetensors_sample.py
The package versions are written into the file's __metadata__ ("generator").
"""
import os

import safetensors
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors_sample.safetensors")


def main():
    # F32 3 x 5: w[i, j] = (5 i + j) / 8 - 1 (exact in binary).
    w = torch.tensor([[(5 * i + j) / 8 - 1 for j in range(5)] for i in range(3)],
                     dtype=torch.float32)
    # F32 vector of 7: b[k] = 0.1 * k - 0.3 as float32 (not exact: checks the bytes, not a formula).
    b = torch.tensor([0.1 * k - 0.3 for k in range(7)], dtype=torch.float32)
    # F16 specials: max, min normal, min subnormal, largest subnormal, -0, inf, -inf, 1/3 rounded.
    h_bits = [0x7BFF, 0x0400, 0x0001, 0x03FF, 0x8000, 0x7C00, 0xFC00, 0x3555, 0x7E00]
    h = torch.tensor([x - 0x10000 if x >= 0x8000 else x for x in h_bits],
                     dtype=torch.int16).view(torch.float16)
    # BF16 2 x 3: 1, -2.5, 3.0e38 (rounded), 1e-40 (subnormal, rounded), 0.1 (rounded), -inf.
    g = torch.tensor([[1.0, -2.5, 3.0e38], [1e-40, 0.1, float("-inf")]], dtype=torch.bfloat16)
    tensors = {
        "encoder.dense.weight": w,
        "encoder.dense.bias": b,
        "halves": h,
        "bf16.matrix": g,
        "embeddings.position_ids": torch.arange(6, dtype=torch.int64).reshape(1, 6),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
    }
    generator = f"safetensors {safetensors.__version__}, torch {torch.__version__}"
    save_file(tensors, OUT, metadata={"format": "pt", "generator": generator})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes) with {generator}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the small seed inputs of the libFuzzer targets (scripts/fuzz.sh):
  tests/fuzz/corpus/gguf/tiny.gguf               - every metadata value type, tensors of every weight type
  tests/fuzz/corpus/safetensors/tiny.safetensors - F32 / F16 / BF16 tensors and __metadata__
Needs the PyPI `gguf` package and numpy. Deterministic; rerunnable.
"""
import json
import os
import struct

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def raw_blocks(t, n_blocks, rng):
    blk, size = gguf.GGML_QUANT_SIZES[t]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    d_off = 208 if t == Q.Q6_K else 0
    raw[:, d_off:d_off + 2] = np.full(n_blocks, 0.01, np.float16).view(np.uint8).reshape(n_blocks, 2)
    return raw


def write_gguf(path):
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint8("t.u8", 7)
    w.add_int8("t.i8", -7)
    w.add_uint16("t.u16", 700)
    w.add_int16("t.i16", -700)
    w.add_uint32("t.u32", 70000)
    w.add_int32("t.i32", -70000)
    w.add_float32("t.f32", 0.5)
    w.add_bool("t.bool", True)
    w.add_uint64("t.u64", 1 << 40)
    w.add_int64("t.i64", -(1 << 40))
    w.add_float64("t.f64", 2.5)
    w.add_string("t.str", "hello")
    w.add_array("t.strs", ["a", "bc", "def"])
    w.add_array("t.ints", [1, 2, 3])
    w.add_array("t.floats", [0.5, 1.5])
    x = rng.standard_normal((2, 32)).astype(np.float32)
    w.add_tensor("f32", x)
    w.add_tensor("f16", x.astype(np.float16))
    w.add_tensor("bf16", gguf.quants.quantize(x, Q.BF16), raw_dtype=Q.BF16)
    for t in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0):
        w.add_tensor(t.name.lower(), gguf.quants.quantize(x, t), raw_dtype=t)
    for t in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        raw = raw_blocks(t, 1, rng)
        w.add_tensor(t.name.lower(), raw, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_safetensors(path):
    x = np.arange(6, dtype=np.float32) - 2.5
    h = (np.arange(4, dtype=np.float32) * 0.5).astype(np.float16)
    bf = (np.arange(8, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    blobs, header, off = [], {"__metadata__": {"format": "pt"}}, 0
    for name, dt, shape, arr in [("a", "F32", [2, 3], x), ("h", "F16", [4], h), ("b", "BF16", [2, 2, 2], bf)]:
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


if __name__ == "__main__":
    os.makedirs(os.path.join(CORPUS, "gguf"), exist_ok=True)
    os.makedirs(os.path.join(CORPUS, "safetensors"), exist_ok=True)
    write_gguf(os.path.join(CORPUS, "gguf", "tiny.gguf"))
    write_safetensors(os.path.join(CORPUS, "safetensors", "tiny.safetensors"))
    print("wrote seeds under", CORPUS)

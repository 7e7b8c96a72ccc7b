#!/usr/bin/env python3
"""Writes the quantization golden fixtures used by tests/kernels/quant_test.cpp and tests/core/gguf_test.cpp.

  tests/golden/quant_ref.json    - activation quantization (q8_0 / q8_1 / q8_K) of a fixed input, ggml's
                                   reference algorithms; weight quantization (q4_0..q8_0) via gguf.quants;
                                   dequantization of random blocks of every weight type via gguf.quants.
  tests/golden/gguf_dequant.json - first 64 values of row 0 and of the last row of a few tensors of each
                                   type in the two bundled model files (gguf.GGUFReader + gguf.quants).

Needs the PyPI `gguf` package and numpy. Rerunnable; output is deterministic (fixed seeds).
Usage: python3 scripts/golden/make_quant_fixtures.py [repo_root]
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import np_roundf

ROOT = os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden")
f32 = np.float32


def floats(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def fixed_input(n=1024):
    rng = np.random.default_rng(1234)
    x = rng.standard_normal(n).astype(f32)
    x[0:256] *= f32(0.05)
    x[256:288] = 0.0                      # an all-zero q8_0 block
    x[512:768] = 0.0                      # an all-zero q8_K super-block
    x[800] = f32(-7.5)                    # the largest magnitude of its block is negative
    x[900:932] = np.arange(32, dtype=f32) - f32(16.0)  # integers: exact ties after scaling
    return x


def q8_1_ref(x):
    out = bytearray()
    for b in x.reshape(-1, 32):
        amax = np.abs(b).max()
        d = f32(amax / f32(127))
        idv = f32(f32(1) / d) if d != 0 else f32(0)
        qs = np_roundf(b * idv).astype(np.int8)
        s = f32(f32(int(qs.astype(np.int32).sum())) * d)
        out += np.array([d], dtype=np.float16).tobytes() + np.array([s], dtype=np.float16).tobytes() + qs.tobytes()
    return bytes(out)


def q8_K_ref(x):
    out = bytearray()
    for b in x.reshape(-1, 256):
        a = np.abs(b)
        amax = a.max()
        if amax == 0:
            out += np.zeros(1, f32).tobytes() + np.zeros(256, np.int8).tobytes() + np.zeros(16, np.int16).tobytes()
            continue
        mx = b[int(np.argmax(a))]
        iscale = f32(f32(-127) / mx)
        v = (iscale * b).astype(f32)
        qs = np.minimum(127, np.rint(v)).astype(np.int8)   # nearest_int: round half to even
        bsums = qs.astype(np.int32).reshape(16, 16).sum(axis=1).astype(np.int16)
        d = f32(f32(1) / iscale)
        out += np.array([d], f32).tobytes() + qs.tobytes() + bsums.tobytes()
    return bytes(out)


def random_blocks(t, n_blocks, rng):
    """Random bytes for `n_blocks` of type t with finite, moderate fp16 scales."""
    blk, size = gguf.GGML_QUANT_SIZES[t]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)

    def put_f16(col, lo, hi):
        v = rng.uniform(lo, hi, size=n_blocks).astype(np.float16)
        raw[:, col:col + 2] = v.view(np.uint8).reshape(n_blocks, 2)

    if t in (Q.Q4_0, Q.Q5_0, Q.Q8_0):
        put_f16(0, -0.1, 0.1)
    elif t in (Q.Q4_1, Q.Q5_1):
        put_f16(0, 0.0, 0.1)
        put_f16(2, -1.0, 1.0)
    elif t in (Q.Q4_K, Q.Q5_K):
        put_f16(0, 0.0, 0.01)
        put_f16(2, 0.0, 0.01)
    elif t == Q.Q6_K:
        put_f16(208, -0.01, 0.01)
    return raw.tobytes()


def main():
    rng = np.random.default_rng(42)
    x = fixed_input()
    ref = {"input": floats(x), "quantize": {}, "dequantize": {}}
    ref["quantize"]["q8_0"] = gguf.quants.quantize(x.reshape(1, -1), Q.Q8_0).tobytes().hex()
    ref["quantize"]["q8_1"] = q8_1_ref(x).hex()
    ref["quantize"]["q8_K"] = q8_K_ref(x).hex()
    for name, t in [("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1), ("q5_0", Q.Q5_0), ("q5_1", Q.Q5_1)]:
        ref["quantize"][name] = gguf.quants.quantize(x.reshape(1, -1), t).tobytes().hex()

    for name, t, nb in [("q4_0", Q.Q4_0, 8), ("q4_1", Q.Q4_1, 8), ("q5_0", Q.Q5_0, 8), ("q5_1", Q.Q5_1, 8),
                        ("q8_0", Q.Q8_0, 8), ("q4_K", Q.Q4_K, 2), ("q5_K", Q.Q5_K, 2), ("q6_K", Q.Q6_K, 2)]:
        raw = random_blocks(t, nb, rng)
        vals = gguf.quants.dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(1, -1), t)
        ref["dequantize"][name] = {"hex": raw.hex(), "values": floats(vals)}
    h = (rng.standard_normal(256) * 3).astype(np.float16)
    ref["dequantize"]["f16"] = {"hex": h.tobytes().hex(), "values": floats(h.astype(f32))}
    b = (rng.standard_normal(256) * 3).astype(f32).view(np.uint32) >> 16
    b = b.astype(np.uint16)
    ref["dequantize"]["bf16"] = {"hex": b.tobytes().hex(),
                                 "values": floats((b.astype(np.uint32) << 16).view(f32))}
    with open(os.path.join(OUT, "quant_ref.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))

    models = {
        "SmolLM2-135M-Instruct.Q4_1.gguf": ["token_embd.weight", "blk.0.attn_q.weight", "blk.3.ffn_down.weight",
                                            "blk.0.attn_norm.weight", "output_norm.weight"],
        "gemma-3-270m-q4_k_m.gguf": ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_output.weight",
                                     "blk.0.ffn_down.weight", "blk.0.attn_k_norm.weight", "blk.0.attn_v.weight"],
    }
    out = {}
    for fname, names in models.items():
        r = gguf.GGUFReader(os.path.join(ROOT, "models", fname))
        by_name = {t.name: t for t in r.tensors}
        entries = []
        for nm in names:
            t = by_name[nm]
            ne = [int(v) for v in t.shape]
            vals = gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1, ne[0])
            last = vals.shape[0] - 1
            entries.append({"name": nm, "type": t.tensor_type.name.lower(), "ne": ne,
                            "rows": {"0": floats(vals[0, :64]), str(last): floats(vals[last, :64])}})
        out[fname] = entries
    with open(os.path.join(OUT, "gguf_dequant.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.join(OUT, "quant_ref.json"), "and", os.path.join(OUT, "gguf_dequant.json"))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the small seed inputs of the libFuzzer targets (scripts/fuzz.sh):
  tests/fuzz/corpus/gguf/tiny.gguf               - every metadata value type, tensors of every weight type
  tests/fuzz/corpus/safetensors/tiny.safetensors - F32 / F16 / BF16 tensors and __metadata__
  tests/fuzz/corpus/predictor/tiny.body          - a 1-layer Deja Vu predictor file without its checksum
                                                   (the target appends it, so mutations get past it)
  tests/fuzz/corpus/linmaps/tiny.linmaps         - linear maps: one full-rank and one rank-1 run
  tests/fuzz/corpus/thresholds/*.json            - TEAL and CATS threshold files
  tests/fuzz/corpus/study/*.yaml                 - study files (configs/*.yaml of this repository)
  tests/fuzz/corpus/hf_json/*.json               - a tokenizer.json and a config.json
Needs numpy and the PyPI `gguf` package for the GGUF and safetensors seeds only. Deterministic; rerunnable.
Usage: make_fuzz_seed.py [TARGET...]   (default: every target; e.g. `make_fuzz_seed.py predictor linmaps`)
"""
import json
import os
import struct

import math
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def raw_blocks(t, n_blocks, rng):
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as Q
    blk, size = gguf.GGML_QUANT_SIZES[t]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    d_off = 208 if t == Q.Q6_K else 0
    raw[:, d_off:d_off + 2] = np.full(n_blocks, 0.01, np.float16).view(np.uint8).reshape(n_blocks, 2)
    return raw


def write_gguf(path):
    import numpy as np
    import gguf  # PyPI `gguf`, only for this seed
    from gguf import GGMLQuantizationType as Q
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
    import numpy as np
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


def f32s(*v):
    return struct.pack("<%df" % len(v), *v)


def net(n_in, rank, n_out, seed):
    b = struct.pack("<qqq", n_in, rank, n_out)
    for n in (rank * n_in, rank, n_out * rank, n_out):
        b += f32s(*[math.sin(seed + 0.7 * i) for i in range(n)])
    return b


def write_predictor_body(path):
    name = b"tiny"
    n_layer, n_embd, n_ff, n_head, rank, head_rank = 1, 4, 8, 2, 2, 2
    b = b"SPDV" + struct.pack("<I", 2) + struct.pack("<I", len(name)) + name
    b += struct.pack("<qqqqqq", n_layer, n_embd, n_ff, n_head, rank, head_rank)
    b += struct.pack("<B", 1) + f32s(0.2) + struct.pack("<qq", 1, 10)
    for layer in range(n_layer):
        b += f32s(0.5, 0.5) + f32s(0.9, 0.8, 0.7, 0.5) + f32s(0.9)
        b += net(n_embd, rank, n_ff, 2 * layer) + net(n_embd, head_rank, n_head, 2 * layer + 1)
    with open(path, "wb") as f:
        f.write(b)


def write_linmaps(path):
    d = 4
    name, info = b"tiny", b"seed"
    b = b"SPLINMAP" + struct.pack("<I", 1) + struct.pack("<I", len(name)) + name + struct.pack("<qq", 3, d)
    b += struct.pack("<I", len(info)) + info + struct.pack("<I", 2)
    b += struct.pack("<qqq", 0, 1, 0) + f32s(0.5) + f32s(*([0.01] * (d * d))) + f32s(*([0.1] * d))
    b += struct.pack("<qqq", 1, 1, 1) + f32s(0.25) + f32s(*([0.02] * d)) + f32s(*([0.03] * d)) + f32s(*([0.0] * d))
    b += b"SPLINEND"
    with open(path, "wb") as f:
        f.write(b)


def write_text_seeds():
    th = os.path.join(CORPUS, "thresholds")
    os.makedirs(th, exist_ok=True)
    base = {"format": "specula-thresholds-v1", "model": "tiny", "n_layer": 2, "n_embd": 4, "n_ff": 8,
            "target_sparsity": 0.5, "calib_tokens": 100, "calib_data": "x.txt"}
    with open(os.path.join(th, "teal.json"), "w") as f:
        json.dump(dict(base, method="teal", input=[0.1, 0.2], act=[0.3, 0.4]), f)
    with open(os.path.join(th, "cats.json"), "w") as f:
        json.dump(dict(base, method="cats", gate=[0.1, 0.2]), f)
    st = os.path.join(CORPUS, "study")
    os.makedirs(st, exist_ok=True)
    for name in ("quickstart.yaml", "spec_drafters.yaml"):
        with open(os.path.join(ROOT, "configs", name)) as src, open(os.path.join(st, name), "w") as dst:
            dst.write(src.read())
    hf = os.path.join(CORPUS, "hf_json")
    os.makedirs(hf, exist_ok=True)
    vocab = {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "<s>": 4}
    tok = {"version": "1.0", "added_tokens": [{"id": 4, "content": "<s>", "special": True}],
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
           "model": {"type": "BPE", "byte_fallback": False, "vocab": vocab, "merges": ["a b"]}}
    with open(os.path.join(hf, "tokenizer.json"), "w") as f:
        json.dump(tok, f)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
           "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 5,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 64, "tie_word_embeddings": True,
           "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 32}}
    with open(os.path.join(hf, "config.json"), "w") as f:
        json.dump(cfg, f)


WRITERS = {
    "gguf": lambda d: write_gguf(os.path.join(d, "tiny.gguf")),
    "safetensors": lambda d: write_safetensors(os.path.join(d, "tiny.safetensors")),
    "predictor": lambda d: write_predictor_body(os.path.join(d, "tiny.body")),
    "linmaps": lambda d: write_linmaps(os.path.join(d, "tiny.linmaps")),
    "text": lambda d: write_text_seeds(),  # thresholds, study, hf_json
}

if __name__ == "__main__":
    names = sys.argv[1:] or list(WRITERS)
    for n in names:
        if n not in WRITERS:
            sys.exit(f"make_fuzz_seed.py: unknown target '{n}' (expected one of {', '.join(WRITERS)})")
        d = os.path.join(CORPUS, n)
        if n != "text":
            os.makedirs(d, exist_ok=True)
        WRITERS[n](d)
    print("wrote seeds under", CORPUS)

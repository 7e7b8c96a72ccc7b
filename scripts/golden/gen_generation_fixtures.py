#!/usr/bin/env python3
"""Generate greedy-generation golden fixtures from llama.cpp (llama-cpp-python).

For each model, 12 fixed plain-text prompts (no chat template) are tokenized with
``llm.tokenize(text.encode(), add_bos=True, special=False)`` (llama.cpp honours the GGUF
``tokenizer.ggml.add_bos_token`` flag, so BOS is only prepended where that flag is true; the
tokens actually obtained are stored) and then 64 tokens are generated greedily by evaluating
token by token (``reset(); eval(prompt); loop: argmax(scores[n_tokens-1]); eval([next])``).
Generation does NOT stop at EOS.

Output, per model NAME (see MODELS):
  tests/golden/generation_NAME.json       metadata, prompts, tokens, top-1/top-2 gaps, top-5
  tests/golden/generation_NAME.logits.f16 raw little-endian IEEE float16 full-vocabulary logits,
                                          shape [n_prompts][n_steps][n_vocab] (row-major)

"Logit step j" = logits produced at the last position after evaluating prompt + generated[:j];
they predict generated[j] (argmax of the float32 logits == generated[j]).

Usage: gen_generation_fixtures.py [--models-dir models] [--out-dir tests/golden] [--model NAME]
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import llama_cpp

MODELS = {
    "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3-270m": "gemma-3-270m-q4_k_m.gguf",
}

PROMPTS = [
    "Once upon a time, in a small village at the edge of a dark forest, there lived",
    "Question: What is the capital of Australia, and why was it chosen?\nAnswer:",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Here are five things to pack for a weekend camping trip:\n1.",
    "A train leaves the station at 3 pm travelling at 60 km/h. Another train leaves the same "
    "station at 4 pm travelling at 90 km/h. The second train catches up with the first at",
    "La vie est belle quand on prend le temps de",
    "Recipe for simple pancakes.\nIngredients:\n- 2 cups flour\n-",
    "Alice: Did you finish the report for tomorrow's meeting?\nBob:",
    "Photosynthesis is defined as",
    "Shall I compare thee to a summer's day?",
    "Dear Mr. Thompson,\n\nI am writing to follow up on",
    "2, 4, 8, 16, 32, 64,",
]

N_GEN = 64
LOGIT_STEPS = [0, 15, 31, 47, 63]
N_CTX = 512
N_THREADS = 2
N_BATCH = 512
TOPK_JSON = 5


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def top2_gap(row):
    # row: float32 logits
    i1 = int(np.argmax(row))
    v1 = float(row[i1])
    tmp = row.copy()
    tmp[i1] = -np.inf
    v2 = float(np.max(tmp))
    return i1, v1 - v2


def topk(row, k):
    idx = np.argpartition(-row, k)[:k]
    idx = idx[np.argsort(-row[idx], kind="stable")]
    return [int(i) for i in idx], [float(row[i]) for i in idx]


def run_model(name, model_path, out_dir):
    t0 = time.time()
    settings = dict(n_ctx=N_CTX, n_threads=N_THREADS, n_threads_batch=N_THREADS, n_batch=N_BATCH,
                    logits_all=True, flash_attn=False, seed=0)
    llm = llama_cpp.Llama(model_path=model_path, verbose=False, **settings)
    cp = llm.context_params
    actual = dict(
        n_ctx=llm.n_ctx(), n_batch=cp.n_batch, n_ubatch=cp.n_ubatch, n_threads=cp.n_threads,
        n_threads_batch=cp.n_threads_batch, flash_attn=bool(cp.flash_attn),
        type_k=int(cp.type_k), type_v=int(cp.type_v),
        type_k_name="f16" if cp.type_k == llama_cpp.GGML_TYPE_F16 else str(cp.type_k),
        type_v_name="f16" if cp.type_v == llama_cpp.GGML_TYPE_F16 else str(cp.type_v),
        offload_kqv=bool(cp.offload_kqv), swa_full=bool(cp.swa_full), logits_all=True, seed=0,
        n_gpu_layers=llm.model_params.n_gpu_layers, backend="cpu",
        tokenize_call="llm.tokenize(text.encode('utf-8'), add_bos=True, special=False)",
        decoding="greedy argmax over float32 logits, token-by-token eval, no EOS stop",
    )
    n_vocab = llm.n_vocab()
    md = llm.metadata
    print(f"[{name}] n_vocab={n_vocab} add_bos_token(meta)={md.get('tokenizer.ggml.add_bos_token')} "
          f"settings={actual}", flush=True)

    prompts_out = []
    logits_blob = []
    fresh_check = None
    batch_mismatch_total = 0
    batch_max_absdiff = 0.0
    for pi, text in enumerate(PROMPTS):
        ptoks = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        llm.reset()
        llm.eval(ptoks)
        gen, gaps, step_rows = [], [], {}
        for j in range(N_GEN):
            row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32, copy=True)
            nxt, gap = top2_gap(row)
            if j in LOGIT_STEPS:
                step_rows[j] = row
            gen.append(nxt)
            gaps.append(round(gap, 5))
            llm.eval([nxt])

        # Verify logits_all row semantics once: fresh eval of prompt+gen[:j] must reproduce row j.
        if pi == 0:
            diffs = {}
            for j in (0, 31):
                llm.reset()
                llm.eval(ptoks + gen[:j])
                fr = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
                diffs[j] = float(np.max(np.abs(fr - step_rows[j])))
                assert int(np.argmax(fr)) == gen[j]
            fresh_check = diffs
            print(f"[{name}] fresh-eval check (max |diff| vs incremental row): {diffs}", flush=True)

        # Batch vs incremental: one eval of prompt + gen[:-1]; argmax at each position.
        llm.reset()
        full = ptoks + gen[:-1]
        llm.eval(full)
        base = len(ptoks) - 1
        bsc = np.array(llm.scores[base:base + N_GEN], dtype=np.float32)
        bargs = np.argmax(bsc, axis=1)
        mism = [j for j in range(N_GEN) if int(bargs[j]) != gen[j]]
        batch_mismatch_total += len(mism)
        mad = max(float(np.max(np.abs(bsc[j] - step_rows[j]))) for j in LOGIT_STEPS)
        batch_max_absdiff = max(batch_max_absdiff, mad)

        steps_json = []
        for j in LOGIT_STEPS:
            ids, vals = topk(step_rows[j], TOPK_JSON)
            steps_json.append(dict(step=j, top5_ids=ids, top5_logits=[round(v, 5) for v in vals]))
            logits_blob.append(step_rows[j].astype("<f2"))
        prompts_out.append(dict(
            text=text, prompt_tokens=[int(t) for t in ptoks], generated=gen, top2_gap=gaps,
            logit_steps=LOGIT_STEPS, logit_step_top5=steps_json,
            batch_vs_incremental=dict(argmax_mismatch_steps=mism, max_abs_logit_diff_at_steps=round(mad, 6)),
        ))
        txt = llm.detokenize(gen).decode("utf-8", errors="replace")
        print(f"[{name}] #{pi} prompt_tokens={len(ptoks)} first={ptoks[:3]} min_gap={min(gaps):.4f} "
              f"batch_mismatch={len(mism)} maxdiff={mad:.4g}\n  PROMPT: {text!r}\n  GEN: {txt!r}", flush=True)

    os.makedirs(out_dir, exist_ok=True)
    logits_name = f"generation_{name}.logits.f16"
    blob = np.stack(logits_blob).reshape(len(PROMPTS), len(LOGIT_STEPS), n_vocab)
    assert blob.dtype == np.dtype("<f2")
    blob.tofile(os.path.join(out_dir, logits_name))
    doc = dict(
        model=name,
        model_file=os.path.basename(model_path),
        model_sha256=sha256_file(model_path),
        generator="scripts/golden/gen_generation_fixtures.py",
        llama_cpp_python_version=llama_cpp.__version__,
        settings=actual,
        gguf_add_bos_token=md.get("tokenizer.ggml.add_bos_token"),
        bos_token_id=llm.token_bos(),
        eos_token_id=llm.token_eos(),
        n_vocab=n_vocab,
        n_gen=N_GEN,
        logit_steps=LOGIT_STEPS,
        logit_step_meaning="step j: logits at the last position after evaluating prompt_tokens + "
                           "generated[:j] (predict generated[j]); incremental (token-by-token) eval",
        logits_file=logits_name,
        logits_layout=dict(dtype="float16", byteorder="little", order="C",
                           shape=[len(PROMPTS), len(LOGIT_STEPS), n_vocab],
                           axes=["prompt", "logit_step", "vocab"],
                           note="float32 logits rounded to IEEE half; top5 in JSON are float32"),
        checks=dict(fresh_eval_max_abs_diff=fresh_check,
                    batch_vs_incremental_argmax_mismatches=batch_mismatch_total,
                    batch_vs_incremental_max_abs_logit_diff=round(batch_max_absdiff, 6)),
        prompts=prompts_out,
    )
    jpath = os.path.join(out_dir, f"generation_{name}.json")
    with open(jpath, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"[{name}] wrote {jpath} ({os.path.getsize(jpath)} B) and {logits_name} "
          f"({blob.nbytes} B); batch-vs-incremental argmax mismatches: {batch_mismatch_total}/"
          f"{N_GEN * len(PROMPTS)}, max |dlogit| at steps {batch_max_absdiff:.4g}; "
          f"{time.time() - t0:.1f}s", flush=True)
    del llm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default="models")
    ap.add_argument("--out-dir", default="tests/golden")
    ap.add_argument("--model", choices=sorted(MODELS), help="only this model")
    a = ap.parse_args()
    names = [a.model] if a.model else list(MODELS)
    for n in names:
        p = os.path.join(a.models_dir, MODELS[n])
        if not os.path.exists(p):
            sys.exit(f"missing model file {p}")
        run_model(n, p, a.out_dir)


if __name__ == "__main__":
    main()

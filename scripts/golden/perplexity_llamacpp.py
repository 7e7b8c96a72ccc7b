#!/usr/bin/env python3
"""Reference perplexity with llama.cpp (llama-cpp-python) under specula's strided scheme.

Scheme (specula's C++ implementation follows exactly the same steps):

 1. Read the text file as bytes, decode as UTF-8 (strict), replace every "\\r\\n" by "\\n".
 2. Tokenize the whole text once: tokenize(text, add_bos=False, special=False).
 3. Truncate to the first --max-tokens tokens (default 8192). N = number of tokens kept.
 4. b = 1 if the GGUF says tokenizer.ggml.add_bos_token = true (then BOS is prepended to every
    window's input), else b = 0 (override with --bos yes/no).
    The first text token (index 0) is a target only when b = 1 (it is predicted from BOS);
    otherwise targets start at index 1. first_target = 0 if b else 1.
 5. Context C (--ctx, default 512), stride S (--stride, default 256), 0 < S <= C - 1 - b.
    Window w = 0, 1, 2, ...: s = w*S, hi = min(N, s + C - b).
    Input = ([BOS] if b) + tokens[s:hi]   (at most C positions, positions 0..len-1),
    evaluated on a fresh (empty) KV cache. Input position p predicts input[p + 1]; the text
    token at absolute index t sits at input position t - s + b and is predicted by the logits
    at input position t - s + b - 1.
    Scored targets of window w: t in [lo, hi) with
        lo = first_target                 for w = 0   (the first window scores all its targets)
        lo = s + C - b - S                for w > 0   (only its last S targets; each of them has
                                                       at least C - S - b text tokens, i.e. C - S
                                                       window positions incl. BOS, of left context)
    Stop before the first window with lo >= N. Every target index in [first_target, N) is
    therefore scored exactly once (asserted).
 6. NLL(t) = -log_softmax(logits)[tokens[t]], computed in float64 from the float32 logits.
    PPL = exp(mean NLL over all scored targets).

Prints a JSON object {ppl, tokens_scored, n_ctx, stride, max_tokens, model, bos, ...} and
optionally writes it to --out.

Example:
  perplexity_llamacpp.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --text /work/shared/data/wikitext2_wiki.test.raw --out tests/golden/perplexity_smollm2-135m.json
"""
import argparse
import hashlib
import json
import math
import os
import time

import numpy as np
import llama_cpp


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def windows(n_tokens, ctx, stride, b):
    """Yield (s, hi, lo) per window, per the scheme in the module docstring."""
    first_target = 0 if b else 1
    w = 0
    while True:
        s = w * stride
        hi = min(n_tokens, s + ctx - b)
        lo = first_target if w == 0 else s + ctx - b - stride
        if lo >= n_tokens:
            return
        yield s, hi, lo
        w += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--text", default="/work/shared/data/wikitext2_wiki.test.raw")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--stride", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bos", choices=["auto", "yes", "no"], default="auto")
    ap.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args()

    t_start = time.time()
    llm = llama_cpp.Llama(model_path=a.model, n_ctx=a.ctx, n_batch=a.ctx, n_ubatch=a.ctx,
                          n_threads=a.threads, n_threads_batch=a.threads, logits_all=True,
                          flash_attn=False, seed=0, verbose=False)
    md = llm.metadata
    meta_bos = str(md.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"
    b = int(meta_bos) if a.bos == "auto" else int(a.bos == "yes")
    bos_id = llm.token_bos()
    assert 0 < a.stride <= a.ctx - 1 - b, "need 0 < stride <= ctx - 1 - b"

    raw = open(a.text, "rb").read()
    text = raw.decode("utf-8").replace("\r\n", "\n")
    t0 = time.time()
    all_tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    t_tok = time.time() - t0
    tokens = all_tokens[: a.max_tokens]
    n = len(tokens)

    scored = np.zeros(n, dtype=np.int32)
    nll_sum = 0.0
    per_window = []
    t0 = time.time()
    for s, hi, lo in windows(n, a.ctx, a.stride, b):
        inp = ([bos_id] if b else []) + tokens[s:hi]
        assert len(inp) <= a.ctx
        llm.reset()
        llm.eval(inp)
        # target t is predicted by input position t - s + b - 1
        rows = np.asarray(llm.scores[lo - s + b - 1: hi - s + b - 1], dtype=np.float64)
        tgt = np.asarray(tokens[lo:hi], dtype=np.int64)
        mx = rows.max(axis=1, keepdims=True)
        lse = mx[:, 0] + np.log(np.exp(rows - mx).sum(axis=1))
        nll = lse - rows[np.arange(len(tgt)), tgt]
        scored[lo:hi] += 1
        w_sum = float(nll.sum())
        nll_sum += w_sum
        per_window.append([s, lo, hi, round(w_sum, 6)])
    t_eval = time.time() - t0

    first_target = 0 if b else 1
    assert np.all(scored[first_target:] == 1), "each target must be scored exactly once"
    assert np.all(scored[:first_target] == 0)
    n_scored = int(scored.sum())
    assert n_scored == n - first_target
    ppl = math.exp(nll_sum / n_scored)

    cp = llm.context_params
    res = dict(
        ppl=round(ppl, 6),
        mean_nll=round(nll_sum / n_scored, 8),
        tokens_scored=n_scored,
        n_ctx=a.ctx,
        stride=a.stride,
        max_tokens=a.max_tokens,
        n_text_tokens_used=n,
        n_text_tokens_total=len(all_tokens),
        first_token_ids=tokens[:8],
        model=os.path.basename(a.model),
        model_sha256=sha256_file(a.model),
        bos=bool(b),
        bos_id=bos_id if b else None,
        gguf_add_bos_token=md.get("tokenizer.ggml.add_bos_token"),
        text_file=os.path.basename(a.text),
        text_sha256=sha256_file(a.text),
        text_preprocess="utf-8 decode, CRLF->LF, tokenize(add_bos=False, special=False) whole text, truncate",
        n_windows=len(per_window),
        windows_s_lo_hi_nllsum=per_window,
        llama_cpp_python_version=llama_cpp.__version__,
        settings=dict(n_threads=a.threads, n_batch=cp.n_batch, n_ubatch=cp.n_ubatch,
                      flash_attn=bool(cp.flash_attn), type_k=int(cp.type_k), type_v=int(cp.type_v),
                      kv_cache="f16" if cp.type_k == cp.type_v == llama_cpp.GGML_TYPE_F16 else "other",
                      swa_full=bool(cp.swa_full), logits_all=True, backend="cpu",
                      fresh_kv_cache_per_window=True, logsoftmax="float64"),
        seconds=dict(tokenize=round(t_tok, 2), eval=round(t_eval, 2), total=round(time.time() - t_start, 2)),
        generator="scripts/golden/perplexity_llamacpp.py",
    )
    js = json.dumps(res, indent=1)
    print(js)
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            f.write(js + "\n")


if __name__ == "__main__":
    main()

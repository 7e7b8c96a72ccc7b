#!/usr/bin/env python3
"""Decode and prefill speed of specula vs llama.cpp on the same GGUF, same threads, same lengths.

llama.cpp runs through its PyPI package llama-cpp-python (Python API over the llama.cpp library
built from the sources vendored in that sdist). Each measurement runs in a fresh process, and the
two engines alternate within every repetition (which one goes first alternates too), so slow drifts
of a noisy machine hit both alike. Reported: the median over repetitions per engine, and the ratio
specula / llama.cpp (> 1: specula is faster).

Measured, as llama-bench does: prefill = one forward pass over P prompt tokens (tokens/s);
decode = G single-token forward passes after a P-token prompt, greedy argmax between steps (tokens/s).
The prompt is the start of WikiText-2 (../shared/data), tokenized by each engine (their tokenizers
agree token for token on these models; see tests/golden).

  python3 bench/compare_llamacpp.py                       # both installed models, 2 threads
  python3 bench/compare_llamacpp.py --models smollm2-135m --reps 7 --json out.json

Needs: `pip install llama-cpp-python` (builds llama.cpp from source, a few minutes), and a built
specula (scripts/setup.sh).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "wikitext2_wiki.test.raw")
MODELS = {
    "smollm2-135m": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3-270m": "models/gemma-3-270m-q4_k_m.gguf",
}


def prompt_text():
    with open(DATA, encoding="utf-8") as f:
        return f.read(200000)


def llama_worker(path, threads, p, g):
    """Runs in a child process: prints one JSON line with prefill/decode tokens/s."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=max(1024, p + g + 8),
                n_batch=512, n_ubatch=512, logits_all=False, verbose=False)
    toks = llm.tokenize(prompt_text().encode("utf-8"), add_bos=True)[:p]
    if len(toks) < p:
        raise SystemExit(f"prompt has only {len(toks)} tokens")
    n_vocab = llm.n_vocab()

    def argmax_last():  # logits of the last evaluated token (the only output row)
        return int(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).argmax())

    llm.reset()
    t0 = time.perf_counter()
    llm.eval(toks)
    t1 = time.perf_counter()
    nxt = argmax_last()
    t2 = time.perf_counter()
    for _ in range(g):
        llm.eval([nxt])
        nxt = argmax_last()
    t3 = time.perf_counter()
    print(json.dumps({"prefill_tok_s": p / (t1 - t0), "decode_tok_s": g / (t3 - t2)}))


def run_llama(path, threads, p, g):
    out = subprocess.run([sys.executable, __file__, "--llama-worker", path, str(threads), str(p), str(g)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"llama.cpp run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_specula(binary, path, threads, p, g):
    out = subprocess.run([binary, "bench", "--model", path, "--threads", str(threads), "--prompt-tokens", str(p),
                          "--gen-tokens", str(g), "--reps", "1", "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"specula bench failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--llama-worker":
        llama_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), help="installed model names (default: both)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5, help="repetitions per engine and measurement (median reported)")
    ap.add_argument("--decode-prompt", type=int, default=64, help="prompt tokens before decoding")
    ap.add_argument("--decode-tokens", type=int, default=128, help="generated tokens timed")
    ap.add_argument("--prefill-tokens", type=int, default=512, help="prompt length of the prefill measurement")
    ap.add_argument("--specula", default=os.path.join(ROOT, "build", "specula"), help="specula binary")
    ap.add_argument("--json", help="also write the results to this JSON file")
    a = ap.parse_args()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise SystemExit("error: the Python package llama-cpp-python is not installed; install it with\n"
                         "  pip install llama-cpp-python==0.3.16\n(it builds llama.cpp from source, a few minutes)")
    if not os.access(a.specula, os.X_OK):
        raise SystemExit(f"error: {a.specula} not found or not executable (run scripts/setup.sh)")
    if a.reps < 1 or a.threads < 1:
        raise SystemExit("error: --reps and --threads must be >= 1")
    results = []
    for name in a.models:
        if name not in MODELS:
            raise SystemExit(f"error: unknown model '{name}' (known: {', '.join(MODELS)})")
        path = os.path.join(ROOT, MODELS[name])
        if not os.path.exists(path):
            raise SystemExit(f"error: {path} not installed (run scripts/setup.sh)")
        runs = {"specula": {"decode": [], "prefill": []}, "llama.cpp": {"decode": [], "prefill": []}}
        for rep in range(a.reps):
            order = ["specula", "llama.cpp"] if rep % 2 == 0 else ["llama.cpp", "specula"]
            for eng in order:
                fn = run_specula if eng == "specula" else (lambda _b, *x: run_llama(*x))
                d = fn(a.specula, path, a.threads, a.decode_prompt, a.decode_tokens)
                pf = fn(a.specula, path, a.threads, a.prefill_tokens, 1)
                runs[eng]["decode"].append(d["decode_tok_s"])
                runs[eng]["prefill"].append(pf["prefill_tok_s"])
            print(f"[{name}] rep {rep + 1}/{a.reps}: decode specula {runs['specula']['decode'][-1]:.1f} / "
                  f"llama.cpp {runs['llama.cpp']['decode'][-1]:.1f} tok/s; prefill specula "
                  f"{runs['specula']['prefill'][-1]:.1f} / llama.cpp {runs['llama.cpp']['prefill'][-1]:.1f} tok/s",
                  file=sys.stderr, flush=True)
        med = {e: {k: statistics.median(v) for k, v in r.items()} for e, r in runs.items()}
        results.append({
            "model": name, "file": MODELS[name], "threads": a.threads, "reps": a.reps,
            "decode": {"prompt_tokens": a.decode_prompt, "gen_tokens": a.decode_tokens,
                       "specula_tok_s": med["specula"]["decode"], "llamacpp_tok_s": med["llama.cpp"]["decode"],
                       "ratio": med["specula"]["decode"] / med["llama.cpp"]["decode"]},
            "prefill": {"prompt_tokens": a.prefill_tokens,
                        "specula_tok_s": med["specula"]["prefill"], "llamacpp_tok_s": med["llama.cpp"]["prefill"],
                        "ratio": med["specula"]["prefill"] / med["llama.cpp"]["prefill"]},
            "samples": runs,
        })
    print(f"\n| model | threads | decode specula tok/s | decode llama.cpp tok/s | ratio | "
          f"prefill {a.prefill_tokens} specula tok/s | prefill llama.cpp tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        d, p = r["decode"], r["prefill"]
        print(f"| {r['model']} | {r['threads']} | {d['specula_tok_s']:.1f} | {d['llamacpp_tok_s']:.1f} | "
              f"**{d['ratio']:.2f}x** | {p['specula_tok_s']:.1f} | {p['llamacpp_tok_s']:.1f} | **{p['ratio']:.2f}x** |")
    print(f"\n(medians of {a.reps} interleaved repetitions; decode: {a.decode_tokens} tokens after a "
          f"{a.decode_prompt}-token prompt; llama-cpp-python {__import__('llama_cpp').__version__})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

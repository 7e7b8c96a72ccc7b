#!/usr/bin/env python3
"""Compact per-task self-draft table (tau / speedup per Spec-Bench task, plus c and V) from the JSON that
`specula spec-bench --json` writes. Usage: bench/selfdraft_table.py RESULT.json [--label SPEC=NAME ...]"""
import argparse
import json
import re

TASKS = ["mt_bench", "translation", "summarization", "qa", "math_reasoning", "rag", "all"]


def short(spec: str) -> str:
    """A drafter SPEC without the defaults spec-bench echoes back (paths shortened to file names)."""
    name, _, rest = spec.partition(":")
    keep = []
    for kv in re.split(r",(?=[a-z_]+=)", rest):
        k, _, v = kv.partition("=")
        if k in ("branches", "lookahead", "select", "thr", "budget", "measure", "max_tokens", "predictor", "where"):
            continue
        if k == "path":
            v = v.rsplit("/", 1)[-1]
        if re.fullmatch(r"\d+\.\d{6,}", v):
            v = f"{float(v):g}"
        keep.append(f"{k}={v}")
    return f"{name}:{','.join(keep)}" if keep else name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("json")
    a = ap.parse_args()
    j = json.load(open(a.json))
    print(f"| self-draft (k={j['k']}) | " + " | ".join(TASKS) + " | c | V | equal |")
    print("|---" * (len(TASKS) + 4) + "|")
    for d in j["drafters"]:
        t = d["tasks"]
        cells = []
        for task in TASKS:
            r = t.get(task)
            cells.append(f"{r['tau']:.2f} / {r['speedup']:.2f}x" if r else "-")
        cm = t["all"]["cost_model"]
        eq = "yes" if t["all"]["mismatches"] == 0 else f"NO ({t['all']['mismatches']})"
        print(f"| `{short(d['drafter'])}` | " + " | ".join(cells) + f" | {cm['c']:.2f} | {cm['V']:.2f} | {eq} |")
    print(f"\nplain decoding: {j['drafters'][0]['tasks']['all']['plain_tokens_per_s']:.1f} tok/s overall "
          f"({j['prompts'] if isinstance(j['prompts'], int) else len(j['prompts'])} prompts x {j['max_tokens']} tokens, {j['threads']} threads)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Split a `specula spec-bench --json` report by how each plain output ended: outputs that ran to the
token cap (-n) against those that stopped at an end-of-generation token. Prints, per drafter and task,
the decode speedup (total tokens / total decode time against plain's) and tau of both groups, from the
report's per-prompt figures ("per_prompt"). With --outputs (the JSONL of `spec-bench --outputs`), also
the share of tokens in the second half of each output that close an N-token sequence already seen
earlier in the same output (--ngram, default 16): a measure of how repetitive the outputs are.

Usage: python3 bench/spec_bench_split.py REPORT.json [--outputs OUT.jsonl] [--ngram N]
"""
import argparse
import json
import sys


def fail(msg):
    print(f"spec_bench_split.py: {msg}", file=sys.stderr)
    sys.exit(2)


def load_report(path):
    try:
        with open(path) as f:
            rep = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fail(f"cannot read report {path}: {e}")
    for key in ("per_prompt", "drafters", "max_tokens"):
        if key not in rep:
            fail(f"{path}: no '{key}' (expected the --json report of specula spec-bench; per_prompt needs a build from session 16 on)")
    return rep


def split_table(rep):
    cap = rep["max_tokens"]
    pp = rep["per_prompt"]
    tasks = sorted({p["task"] for p in pp}) + ["all"]
    print(f"{len(pp)} prompts, cap {cap} tokens: {sum(p['plain']['tokens'] >= cap for p in pp)} plain outputs reach it\n")
    print("| drafter | task | reach the cap: n / tau / speedup | end before it: n / tau / speedup |")
    print("|---|---|---|---|")
    for di, d in enumerate(rep["drafters"]):
        for task in tasks:
            cells = []
            for at_cap in (True, False):
                rows = [p for p in pp if (task == "all" or p["task"] == task) and (p["plain"]["tokens"] >= cap) == at_cap]
                if not rows:
                    cells.append("0 / - / -")
                    continue
                pl = [p["plain"] for p in rows]
                dr = [p["drafters"][di] for p in rows]
                plain_tps = sum(x["tokens"] for x in pl) / sum(x["decode_s"] for x in pl)
                spec_tps = sum(x["tokens"] for x in dr) / sum(x["decode_s"] for x in dr)
                # tau pooled as spec-bench pools it: (tokens - 1) summed over verification steps.
                steps = sum((x["tokens"] - 1) / x["tau"] for x in dr if x["tau"] > 0)
                tau = sum(x["tokens"] - 1 for x in dr) / steps if steps > 0 else 0
                cells.append(f"{len(rows)} / {tau:.2f} / {spec_tps / plain_tps:.2f}x")
            print(f"| {d['drafter']} | {task} | {cells[0]} | {cells[1]} |")


def repetition(outputs, cap, n):
    groups = {True: [0, 0], False: [0, 0]}  # at cap -> [tokens counted, tokens closing a repeat]
    try:
        lines = open(outputs).read().splitlines()
    except OSError as e:
        fail(f"cannot read outputs {outputs}: {e}")
    for i, line in enumerate(lines):
        if not line.strip():  # as bench/ngram_oracle.py reads these files
            continue
        try:
            out = json.loads(line)["out"]
        except (json.JSONDecodeError, KeyError, TypeError):
            fail(f"{outputs}:{i + 1}: expected a JSON object with 'out' (specula spec-bench --outputs)")
        at_cap = len(out) >= cap
        seen = set()
        for t in range(n - 1, len(out)):
            g = tuple(out[t - n + 1:t + 1])
            if t >= len(out) // 2:
                groups[at_cap][0] += 1
                groups[at_cap][1] += g in seen
            seen.add(g)
    print(f"\nsecond half of each output: share of tokens that close a {n}-token sequence seen earlier in it")
    for at_cap, (tot, rep) in groups.items():
        label = "reach the cap" if at_cap else "end before it"
        print(f"  {label}: {rep / tot:.3f} of {tot} tokens" if tot else f"  {label}: no tokens")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", help="JSON of specula spec-bench --json")
    ap.add_argument("--outputs", help="JSONL of specula spec-bench --outputs (same run)")
    ap.add_argument("--ngram", type=int, default=16, help="sequence length for the repetition share (default 16)")
    a = ap.parse_args()
    if a.ngram < 1:
        fail(f"invalid --ngram {a.ngram}: expected >= 1")
    rep = load_report(a.report)
    split_table(rep)
    if a.outputs:
        repetition(a.outputs, rep["max_tokens"], a.ngram)


if __name__ == "__main__":
    main()

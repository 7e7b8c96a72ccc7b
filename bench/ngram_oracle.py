#!/usr/bin/env python3
"""Replay prompt-lookup drafters on recorded greedy outputs, without running the model.

Under greedy verification a drafter's accepted length at each step depends only on the target's own
greedy continuation, so tau (tokens per verification pass) can be computed offline from the plain
outputs that `specula spec-bench --outputs FILE` records. This gives, for the same prompts:

  * `ngram`: the latest-match n-gram drafter exactly as draft/ngram_drafter.cpp runs it (the last
    max..min tokens, most recent earlier occurrence, its continuation; per_match cuts it to
    max(1, per_match * n) tokens), single branch;
  * `ngram ... conf=P`: the adaptive-length drafter (ngram:...,conf=P), including its online
    acceptance estimates, learnt over the records in file order as spec-bench runs them. Exact when
    the outputs were recorded with --ignore-eos (otherwise the real drafter also learns from draft
    tokens the target accepts past an end-of-generation token, which the outputs do not contain);
  * `oracle`: an upper bound for any drafter that copies from the context (prompt + generated text):
    at each step, the longest prefix (<= k) of the true continuation that occurs anywhere in the
    context. It knows the future, so it is a bound, not a drafter.

  * `--history N` (with --conf): the adaptive drafter that also matches against the outputs of the
    records before the current one (SuffixDecoding-style history of earlier generations), with its own
    acceptance buckets, when the context has no match or a shorter one than the history's (>= N
    tokens). An experiment (README, speculative decoding), not a specula drafter.

tau = (generated tokens - 1) / verification passes, as specula reports it (the first token comes
from the prefill). The second table estimates the speedup over plain decoding from a verification
cost model: a pass costs 1 + A per drafted token + B per pass that drafts (--cost A,B; 0.15,0.03 on
the 2-core Zen 4 machine, see the README). --cut-eos IDS cuts each output after its first token in IDS
(outputs recorded with --ignore-eos, replayed as runs that stop at the end token). Usage:

  specula spec-bench -m smollm2-135m -n 128 --draft ngram --outputs out.jsonl ...
  python3 bench/ngram_oracle.py out.jsonl [--k 4] [--ngram 2,4] [--ngram 1,3] [--per-match 0] [--conf 0]
          [--max-tokens 128] [--json F]
"""
import argparse
import collections
import json
import sys


class Context:
    """Prompt + generated tokens with the n-gram indexes both drafters need."""

    def __init__(self, tokens, max_n, k):
        self.s = []
        self.max_n, self.k = max_n, k
        self.last = {}  # (n-gram) -> [latest start, previous start]
        self.seen = [set() for _ in range(k + 1)]  # seen[m]: every m-gram of the context (m <= k)
        for t in tokens:
            self.push(t)

    def push(self, t):
        self.s.append(t)
        p = len(self.s) - 1
        for n in range(1, max(self.max_n, self.k) + 1):
            if p - n + 1 < 0:
                break
            g = tuple(self.s[p - n + 1:p + 1])
            if n <= self.max_n:
                prev = self.last.get(g)
                self.last[g] = [p - n + 1, prev[0] if prev else None]
            if n <= self.k:
                self.seen[n].add(g)

    def ngram(self, k, mn, mx, per_match):
        s, L = self.s, len(self.s)
        for n in range(min(mx, L - 1), mn - 1, -1):
            starts = self.last.get(tuple(s[L - n:]))
            # The latest occurrence is the suffix itself; the drafter wants the one before it.
            i = starts[1] if starts and starts[0] == L - n else (starts[0] if starts else None)
            if i is None:
                continue
            want = k if per_match <= 0 else min(k, max(1, int(per_match * n)))
            return s[i + n:i + n + want]
        return []

    def oracle(self, k, future):
        m = 0
        while m < min(k, len(future)) and tuple(future[:m + 1]) in self.seen[m + 1]:
            m += 1
        return future[:m]


class Adaptive:
    """ngram:min=MN,max=MX,conf=P exactly as draft/ngram_drafter.cpp (propose_adaptive, on_accept)."""

    PRIOR_WEIGHT = 4.0

    def __init__(self, mn, mx, conf):
        self.mn, self.mx, self.conf = mn, mx, conf
        self.trials, self.hits, self.pending = [0.0] * 96, [0.0] * 96, []

    def best_match(self, s):
        L = len(s)
        cap = min(self.mx, L - 1)
        if L < 2 or cap < self.mn:
            return None
        best, latest, ends = 0, -1, []
        last = s[L - 1]
        for i in range(L - 2, -1, -1):
            if s[i] != last:
                continue
            n = 1
            while n < cap and n <= i and s[i - n] == s[L - 1 - n]:
                n += 1
            if n < self.mn or n < best:
                continue
            if n > best:
                best, latest, ends = n, i, []
            ends.append(i)
        if best == 0:
            return None
        tok = s[latest + 1]
        same = sum(1 for e in ends if s[e + 1] == tok)
        agree = 2 if same == len(ends) else (1 if 2 * same >= len(ends) else 0)
        return ((min(best, 8) - 1) * 4 + (min(len(ends), 4) - 1)) * 3 + agree, tok

    def estimate(self, b):
        n, agree = b // 12 + 1, b % 3
        prior = min(0.9, 0.2 + 0.1 * n) if agree == 2 else 0.2
        return (self.hits[b] + self.PRIOR_WEIGHT * prior) / (self.trials[b] + self.PRIOR_WEIGHT)

    def propose(self, s, k):
        self.pending = []
        buf, d, cum = list(s), [], 1.0
        while len(d) < k:
            m = self.best_match(buf)
            if m is None:
                break
            cum *= self.estimate(m[0])
            if cum < self.conf:
                break
            d.append(m[1])
            self.pending.append(m[0])
            buf.append(m[1])
        return d

    def on_accept(self, m):
        for j, b in enumerate(self.pending):
            if j > m:
                break
            self.trials[b] += 1
            if j < m:
                self.hits[b] += 1
        self.pending = []


class History:
    """n-grams (n >= min_n, <= 8) of earlier records' outputs -> counts of the token that followed."""

    def __init__(self, min_n):
        self.min_n, self.idx = min_n, {}

    def add(self, seq):
        for n in range(self.min_n, 9):
            for i in range(len(seq) - n):
                self.idx.setdefault(tuple(seq[i:i + n]), collections.Counter())[seq[i + n]] += 1

    def match(self, s):
        """(n, most frequent next token, agreement class, occurrences) for the longest suffix found."""
        for n in range(min(8, len(s)), self.min_n - 1, -1):
            c = self.idx.get(tuple(s[len(s) - n:]))
            if c:
                tok, top = c.most_common(1)[0]
                tot = sum(c.values())
                return n, tok, 2 if top == tot else (1 if 2 * top >= tot else 0), tot
        return None


class HistoryAdaptive(Adaptive):
    """Adaptive plus a history source; history buckets (96 + the same layout) start from a prior of 0.3."""

    def __init__(self, mn, mx, conf, hist):
        super().__init__(mn, mx, conf)
        self.hist = hist
        self.trials += [0.0] * 96
        self.hits += [0.0] * 96

    def estimate(self, b):
        if b < 96:
            return super().estimate(b)
        return (self.hits[b] + self.PRIOR_WEIGHT * 0.3) / (self.trials[b] + self.PRIOR_WEIGHT)

    def best_match(self, s):
        m = super().best_match(s)
        h = self.hist.match(s)
        if h and (m is None or m[0] // 12 + 1 < h[0]):
            n, tok, agree, tot = h
            return 96 + ((min(n, 8) - 1) * 4 + (min(tot, 4) - 1)) * 3 + agree, tok
        return m


def replay(recs, k, drafter, max_n, max_tokens=None, on_accept=None, on_record=None):
    by = collections.defaultdict(lambda: [0, 0, 0, 0])  # tokens - 1, passes, passes with a draft, drafted tokens
    for r in recs:
        out = r["out"]
        if len(out) < 2:
            continue
        ctx = Context(r["prompt"] + out[:1], max_n, k)
        pos, passes, drafted, n_drafted = 1, 0, 0, 0
        while pos < len(out):
            # The loop drafts at most k_step = min(k, max_tokens - generated - 1) tokens.
            k_step = k if max_tokens is None else min(k, max_tokens - pos - 1)
            d = drafter(ctx, out[pos:], k_step) if k_step > 0 else []
            m = 0
            while m < len(d) and pos + m < len(out) and d[m] == out[pos + m]:
                m += 1
            if on_accept:
                on_accept(m)
            for t in out[pos:pos + m + 1]:
                ctx.push(t)
            pos += m + 1
            passes += 1
            drafted += bool(d)
            n_drafted += len(d)
        for key in (r["task"], "all"):
            b = by[key]
            b[0] += len(out) - 1
            b[1] += passes
            b[2] += drafted
            b[3] += n_drafted
        if on_record:
            on_record(out)
    return by


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outputs", help="JSONL from specula spec-bench --outputs")
    ap.add_argument("--k", type=int, default=4, help="draft length (default 4)")
    ap.add_argument("--ngram", action="append", default=None, metavar="MIN,MAX",
                    help="n-gram drafter match lengths (repeatable; default 2,4 and 1,3)")
    ap.add_argument("--per-match", type=float, default=0, help="as ngram:per_match (default 0 = off)")
    ap.add_argument("--conf", type=float, default=0,
                    help="as ngram:conf (adaptive length; default 0 = off): replays ngram:min,max,conf=P instead")
    ap.add_argument("--max-tokens", type=int, default=128, help="spec-bench's -n (caps the last drafts; default 128)")
    ap.add_argument("--history", type=int, default=0, metavar="N",
                    help="with --conf: also replay the drafter that matches >= N tokens in earlier records' outputs")
    ap.add_argument("--cost", default="0.15,0.03", metavar="A,B",
                    help="verification cost model for the speedup estimate (default 0.15,0.03)")
    ap.add_argument("--cut-eos", default="", metavar="IDS", help="cut each output after its first token in IDS (comma list)")
    ap.add_argument("--json", metavar="FILE", help="also write {drafter: {task: tau}} to FILE")
    a = ap.parse_args()
    recs = [json.loads(line) for line in open(a.outputs) if line.strip()]
    if not recs:
        sys.exit(f"error: {a.outputs}: no records")
    try:
        cost_tok, cost_step = (float(x) for x in a.cost.split(","))
        eos = {int(x) for x in a.cut_eos.split(",") if x.strip()}
    except ValueError:
        sys.exit(f"error: --cost wants A,B (numbers), --cut-eos token ids; got '{a.cost}', '{a.cut_eos}'")
    if a.history > 0 and a.conf <= 0:
        sys.exit("error: --history replays the adaptive drafter: give --conf P too")
    for r in recs:
        cut = next((i for i, t in enumerate(r["out"]) if t in eos), None)
        if cut is not None:
            r["out"] = r["out"][:cut + 1]
    specs = [tuple(int(x) for x in s.split(",")) for s in (a.ngram or ["2,4", "1,3"])]
    max_n = max(mx for _, mx in specs)
    rows = []
    if a.conf > 0 and a.per_match > 0:
        sys.exit("error: --conf and --per-match both set the draft length: use one")
    for mn, mx in specs:
        if a.conf > 0:
            ad = Adaptive(mn, mx, a.conf)
            by = replay(recs, a.k, lambda c, f, ks, ad=ad: ad.propose(c.s, ks), max_n, a.max_tokens, ad.on_accept)
            rows.append((f"ngram:min={mn},max={mx},conf={a.conf:g}", by))
            if a.history > 0:
                hist = History(a.history)
                ha = HistoryAdaptive(mn, mx, a.conf, hist)
                by = replay(recs, a.k, lambda c, f, ks, ha=ha: ha.propose(c.s, ks), max_n, a.max_tokens, ha.on_accept,
                            hist.add)
                rows.append((f"ngram:min={mn},max={mx},conf={a.conf:g} + history>={a.history} (experiment)", by))
            continue
        by = replay(recs, a.k, lambda c, f, ks, mn=mn, mx=mx: c.ngram(ks, mn, mx, a.per_match), max_n, a.max_tokens)
        rows.append((f"ngram:min={mn},max={mx}" + (f",per_match={a.per_match:g}" if a.per_match > 0 else ""), by))
    rows.append(("oracle copy (bound)", replay(recs, a.k, lambda c, f, ks: c.oracle(ks, f), max_n, a.max_tokens)))
    tasks = sorted(k for k in rows[0][1] if k != "all") + ["all"]
    print(f"{len(recs)} prompts, k = {a.k}; tau (share of passes with a draft)\n")
    def table(cell):
        print("| drafter | " + " | ".join(tasks) + " |")
        print("|---|" + "---|" * len(tasks))
        for name, by in rows:
            print(f"| {name} | " + " | ".join(cell(by[t]) for t in tasks) + " |")

    table(lambda b: f"{b[0] / b[1]:.2f} ({b[2] / b[1]:.2f})")
    print(f"\nestimated speedup over plain decoding, pass cost 1 + {cost_tok:g} x drafted tokens + {cost_step:g} x drafting\n")
    table(lambda b: f"{b[0] / (b[1] + cost_tok * b[3] + cost_step * b[2]):.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({name: {t: by[t][0] / by[t][1] for t in tasks} for name, by in rows}, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# bench/ngram_oracle.py replays the n-gram drafter on the plain greedy outputs `specula spec-bench
# --outputs` records. Under greedy verification that replay is exact, so its tau must equal the tau
# spec-bench measures with the real drafter, per task, to the printed digits (12 prompts, 2 per task):
# the fixed-length drafters and the adaptive one (conf=, whose online acceptance estimates the replay
# learns in the same order; --ignore-eos so that the outputs hold every token the verifier judged).
# Usage: ngram_replay.sh path/to/specula models_dir
set -u
source "$(dirname "$0")/common.sh"

"$SPECULA" spec-bench -m "$MODEL" -t 1 --per-task 2 -n 48 --k 4 --ignore-eos --draft "ngram:min=2,max=4" --draft "ngram:min=1,max=3" \
  --draft "ngram:min=1,max=8,conf=0.15" --outputs "$tmp/out.jsonl" --json "$tmp/sb.json" > "$tmp/sb.log" 2>&1 \
  || { tail -5 "$tmp/sb.log"; fail "spec-bench failed"; }
[ "$(wc -l < "$tmp/out.jsonl")" -eq 12 ] || fail "expected 12 output lines, got $(wc -l < "$tmp/out.jsonl")"
python3 "$ROOT/bench/ngram_oracle.py" "$tmp/out.jsonl" --k 4 --max-tokens 48 --ngram 2,4 --ngram 1,3 --json "$tmp/replay.json" \
  > /dev/null || fail "ngram_oracle.py failed"
python3 "$ROOT/bench/ngram_oracle.py" "$tmp/out.jsonl" --k 4 --max-tokens 48 --ngram 1,8 --conf 0.15 --json "$tmp/replay_conf.json" \
  > /dev/null || fail "ngram_oracle.py --conf failed"
python3 - "$tmp/sb.json" "$tmp/replay.json" "$tmp/replay_conf.json" <<'PY' || exit 1
import json, sys
sb, rp = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rp.update(json.load(open(sys.argv[3])))
checked = 0
for d in sb["drafters"]:
    name = d["drafter"].replace(",branches=1", "")
    for task, cell in d["tasks"].items():
        want, got = cell["tau"], rp[name][task]
        if abs(want - got) > 1e-9:
            print(f"FAIL: {name} {task}: spec-bench tau {want}, replay {got}")
            sys.exit(1)
        checked += 1
# The bound must not be below the real drafters.
for task, bound in rp["oracle copy (bound)"].items():
    for name in ("ngram:min=2,max=4", "ngram:min=1,max=3"):
        if bound + 1e-9 < rp[name][task]:
            print(f"FAIL: oracle bound {bound} below {name} {rp[name][task]} on {task}")
            sys.exit(1)
print(f"ok: replayed tau equals spec-bench's in {checked} (drafter, task) cells")
# The speedups in the report follow from the raw per-prompt figures: "speedup" = total tokens / total decode
# time against plain's, "speedup_spec_bench" = the mean over prompts of end-to-end tokens/s (prefill
# included, the plain run's prefill shared) against plain's, as Spec-Bench's evaluation/speed.py.
pp = sb["per_prompt"]
if len(pp) != 12:
    print(f"FAIL: {len(pp)} per_prompt records, expected 12"); sys.exit(1)
for di, d in enumerate(sb["drafters"]):
    for task, cell in d["tasks"].items():
        rows = [p for p in pp if task == "all" or p["task"] == task]
        pl, dr = [p["plain"] for p in rows], [p["drafters"][di] for p in rows]
        dec = (sum(x["tokens"] for x in dr) / sum(x["decode_s"] for x in dr)) / (sum(x["tokens"] for x in pl) / sum(x["decode_s"] for x in pl))
        sbs = sum(x["tokens"] / (y["prefill_s"] + x["decode_s"]) for x, y in zip(dr, pl)) / sum(y["tokens"] / (y["prefill_s"] + y["decode_s"]) for y in pl)
        for key, want in (("speedup", dec), ("speedup_spec_bench", sbs)):
            if abs(cell[key] - want) > 1e-9 * want or not want > 0:
                print(f"FAIL: {d['drafter']} {task}: {key} {cell[key]}, recomputed from per_prompt {want}"); sys.exit(1)
        if all(x["equal"] for x in dr) != (cell["mismatches"] == 0):
            print(f"FAIL: {d['drafter']} {task}: per_prompt equality disagrees with mismatches"); sys.exit(1)
print("ok: speedup and speedup_spec_bench recomputed from per_prompt in every cell")
PY
# bench/spec_bench_split.py reads the same report: every prompt lands in one of its two groups.
python3 "$ROOT/bench/spec_bench_split.py" "$tmp/sb.json" --outputs "$tmp/out.jsonl" > "$tmp/split.txt" \
  || fail "spec_bench_split.py failed"
python3 - "$tmp/split.txt" <<'PY' || exit 1
import re, sys
rows = [l for l in open(sys.argv[1]) if l.startswith("| ngram") and "| all |" in l]
if len(rows) != 3:
    print(f"FAIL: expected 3 'all' rows in the split table, got {len(rows)}"); sys.exit(1)
for r in rows:
    n = [int(x) for x in re.findall(r"\| (\d+) / ", r)]
    if sum(n) != 12:
        print(f"FAIL: split groups hold {sum(n)} prompts, expected 12: {r.strip()}"); sys.exit(1)
if "second half of each output" not in open(sys.argv[1]).read():
    print("FAIL: no repetition share"); sys.exit(1)
print("ok: spec_bench_split.py puts all 12 prompts in its two groups")
PY

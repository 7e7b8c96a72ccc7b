#!/usr/bin/env bash
# Issue 8 study (configs/relu_threshold_sweep.yaml runs the same cells through `specula run`): on both
# installed models, TEAL-style (threshold) and CATS-style (cats) sparsity from 0 to 90%, and the
# ReLUfication variants (relufy), each
#   - as a target accelerator: WikiText-2 perplexity (`specula perplexity --strategy`) and decode tok/s
#     vs dense in the same run (`specula bench --strategy`, strategy_decode_speedup);
#   - as a self-draft: tau and speedup per Spec-Bench task (`specula spec-bench --draft`), next to layer skip.
# Thresholds are calibrated on tinyshakespeare (`specula calibrate threshold`).
#
# Usage: bench/relu_threshold_sweep.sh [--models "smollm2-135m gemma3-270m"] [--levels "0.25 0.4 0.5 0.65"]
#                                      [--threads 2] [--ppl-tokens 4096] [--per-task 1] [--no-spec] [--out DIR]
# Full sweep of the issue: --levels "0.1 0.25 0.4 0.5 0.65 0.8 0.9"
set -euo pipefail
cd "$(dirname "$0")/.."
SPECULA=${SPECULA:-./build/specula}
DATA=${DATA:-../shared/data}
MODELS="smollm2-135m gemma3-270m" LEVELS="0.25 0.4 0.5 0.65" THREADS=2 PPL_TOKENS=4096 PER_TASK=1 SPEC=1
OUT=bench/results/relu_threshold
while [ $# -gt 0 ]; do
  case "$1" in
    --models) MODELS=$2; shift 2 ;;
    --levels) LEVELS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --ppl-tokens) PPL_TOKENS=$2; shift 2 ;;
    --per-task) PER_TASK=$2; shift 2 ;;
    --no-spec) SPEC=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "relu_threshold_sweep.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$SPECULA" ] || { echo "relu_threshold_sweep.sh: $SPECULA not built" >&2; exit 2; }
mkdir -p "$OUT"
TSV="$OUT/sweep.tsv"
printf 'model\tstrategy\tppl\tdense_decode_tok_s\tstrategy_decode_tok_s\tdecode_speedup\tmlp_sparsity\n' > "$TSV"

ppl() {  # model, strategy spec or "" -> ppl
  local args=(perplexity -m "$1" -t "$THREADS" --data "$DATA/wikitext2_wiki.test.raw" --max-tokens "$PPL_TOKENS" --json)
  [ -n "$2" ] && args+=(--strategy "$2")
  "$SPECULA" "${args[@]}" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["ppl"])'
}
bench() {  # model, strategy -> "dense strategy speedup mlp_sparsity"
  "$SPECULA" bench -m "$1" -t "$THREADS" --reps 3 --strategy "$2" --json 2>/dev/null | python3 -c '
import json,sys; j=json.load(sys.stdin); m=j.get("strategy_metrics",{})
print(j["decode_tok_s"], j["strategy_decode_tok_s"], j["strategy_decode_speedup"], m.get("mlp_sparsity", ""))'
}
row() {  # model, spec
  local p b
  p=$(ppl "$1" "$2")
  b=$(bench "$1" "$2")
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$p" "$(echo "$b" | tr ' ' '\t')" | tee -a "$TSV"
}

for m in $MODELS; do
  printf '%s\tdense\t%s\t\t\t1\t0\n' "$m" "$(ppl "$m" "")" | tee -a "$TSV"
  drafts=()
  for s in $LEVELS; do
    for method in teal cats; do
      f="$OUT/${m}_${method}_${s}.json"
      "$SPECULA" calibrate threshold -m "$m" -t "$THREADS" --data "$DATA/tinyshakespeare_input.txt" --out "$f" \
        --sparsity "$s" --method "$method" >/dev/null
      if [ "$method" = teal ]; then spec="threshold:path=$f"; else spec="cats:path=$f"; fi
      row "$m" "$spec"
      drafts+=("$spec")
    done
  done
  for spec in "relufy:act=relu" "relufy:act=drelu" "relufy:act=relu,threshold=0.05"; do row "$m" "$spec"; done
  if [ "$SPEC" = 1 ]; then
    case "$m" in gemma3-270m) L=18 ;; *) L=30 ;; esac  # layer count (layer skip over its middle third)
    args=(spec-bench -m "$m" -t "$THREADS" --per-task "$PER_TASK" -n 64 --k 4
          --json "$OUT/spec_${m}.json" --markdown "$OUT/spec_${m}.md" --draft "layerskip:skip=$((L / 3))-$((2 * L / 3 - 1))")
    for d in "${drafts[@]}"; do args+=(--draft "$d"); done
    "$SPECULA" "${args[@]}"
  fi
done
echo "wrote $TSV"

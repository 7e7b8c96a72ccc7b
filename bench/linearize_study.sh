#!/usr/bin/env bash
# Layer-linearization study (issue 9): per-layer linearity for each model, perplexity vs number of
# replaced/skipped layers for each selection rule, fitting time, and self-draft tau/speedup on a
# Spec-Bench subset (linearize replace vs skip vs plain layerskip with the same layers).
#
# Usage: bench/linearize_study.sh [--models "smollm2-135m gemma3-270m"] [--kmax-frac 4] [--ppl-tokens 4096]
#                                 [--per-task 2] [--max-tokens 64] [--threads 2] [--out DIR] [--no-spec]
# Writes into DIR (default bench/results/linearize): <model>.linearity.{csv,json,txt},
# <model>.<rule>.linmaps + .fit.json, ppl_vs_k_<model>.csv, spec_<model>.{json,md}, summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SPECULA=${SPECULA:-./build/specula}
MODELS="smollm2-135m gemma3-270m" KFRAC=4 PPL_TOKENS=4096 PER_TASK=2 MAX_TOKENS=64 THREADS=2
OUT=bench/results/linearize SPEC=1
CAL=../shared/data/tinyshakespeare_input.txt
WIKI=../shared/data/wikitext2_wiki.test.raw
while [ $# -gt 0 ]; do
  case "$1" in
    --models) MODELS=$2; shift 2 ;;
    --kmax-frac) KFRAC=$2; shift 2 ;;
    --ppl-tokens) PPL_TOKENS=$2; shift 2 ;;
    --per-task) PER_TASK=$2; shift 2 ;;
    --max-tokens) MAX_TOKENS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-spec) SPEC=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "linearize_study.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$SPECULA" ] || { echo "linearize_study.sh: $SPECULA not built" >&2; exit 2; }
mkdir -p "$OUT"
ppl() { "$SPECULA" perplexity -m "$1" -t "$THREADS" --data "$WIKI" --max-tokens "$PPL_TOKENS" ${2:+--strategy "$2"} --json 2>/dev/null \
        | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["ppl"])'; }
SUMMARY="$OUT/summary.md"
echo "# Layer linearization study" > "$SUMMARY"
for M in $MODELS; do
  echo "== $M: per-layer linearity"
  "$SPECULA" linearity -m "$M" -t "$THREADS" --data "$CAL" --csv "$OUT/$M.linearity.csv" | tee "$OUT/$M.linearity.txt"
  "$SPECULA" linearity -m "$M" -t "$THREADS" --data "$CAL" --json > "$OUT/$M.linearity.json" 2>/dev/null
  NL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["n_layer"])' "$OUT/$M.linearity.json")
  K=$((NL / KFRAC))
  for RULE in linearity influence greedy-ppl; do
    echo "== $M: fit maps, select by $RULE"
    CNT=(); [ "$RULE" = greedy-ppl ] && CNT=(--count "$K")
    "$SPECULA" calibrate linearize -m "$M" -t "$THREADS" --data "$CAL" --select "$RULE" "${CNT[@]}" \
      --out "$OUT/$M.$RULE.linmaps" --json > "$OUT/$M.$RULE.fit.json"
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("fit: collect %.1f s, fit %.1f s, select %.1f s, total %.1f s; order %s" % (j["collect_s"], j["fit_s"], j["select_s"], j["total_s"], [r["first"] for r in j["runs"]][:12]))' "$OUT/$M.$RULE.fit.json"
  done
  DENSE=$(ppl "$M" "")
  CSV="$OUT/ppl_vs_k_$M.csv"
  echo "rule,k,layers,replace_ppl,skip_ppl,dense_ppl" > "$CSV"
  for RULE in linearity influence greedy-ppl; do
    for k in $(seq 1 "$K"); do
      F="$OUT/$M.$RULE.linmaps"
      LAYERS=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(" ".join(str(r["first"]) for r in j["runs"][:int(sys.argv[2])]))' "$OUT/$M.$RULE.fit.json" "$k")
      R=$(ppl "$M" "linearize:path=$F,count=$k")
      S=$(ppl "$M" "linearize:path=$F,mode=skip,count=$k")
      echo "$RULE,$k,$LAYERS,$R,$S,$DENSE" | tee -a "$CSV"
    done
  done
  { echo; echo "## $M (dense ppl $DENSE on the first $PPL_TOKENS WikiText-2 tokens)"; echo;
    echo "| rule | k | layers | replace ppl | skip ppl |"; echo "|---|---|---|---|---|";
    tail -n +2 "$CSV" | awk -F, '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'; } >> "$SUMMARY"
  if [ "$SPEC" = 1 ]; then
    F="$OUT/$M.greedy-ppl.linmaps"
    LAYERS=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(",".join(str(r["first"]) for r in j["runs"]))' "$OUT/$M.greedy-ppl.fit.json")
    FL="$OUT/$M.linearity.linmaps"
    "$SPECULA" spec-bench -m "$M" -t "$THREADS" --per-task "$PER_TASK" -n "$MAX_TOKENS" --k 4 \
      --draft "linearize:path=$F" --draft "linearize:path=$F,mode=skip" --draft "layerskip:skip=$LAYERS" \
      --draft "linearize:path=$FL,count=$K" --draft "linearize:path=$FL,count=$((2 * K))" --draft "layerskip:skip=10-17" \
      --json "$OUT/spec_$M.json" --markdown "$OUT/spec_$M.md"
    { echo; echo "### $M self-draft (Spec-Bench, $PER_TASK prompts/task, $MAX_TOKENS tokens, k=4)"; echo; cat "$OUT/spec_$M.md"; } >> "$SUMMARY"
  fi
done
echo "wrote $SUMMARY"

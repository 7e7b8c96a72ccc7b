#!/usr/bin/env bash
# Layer-linearization study (issue 9): per-layer linearity for each model, perplexity vs number of
# replaced/skipped layers for each selection rule, fitting time, and self-draft tau/speedup on a
# Spec-Bench subset (linearize replace vs skip vs plain layerskip with the same layers).
#
# Usage: bench/linearize_study.sh [--models "smollm2-135m gemma3-270m"] [--kmax-frac 4] [--ppl-tokens 4096]
#                                 [--per-task 2] [--max-tokens 64] [--threads 2] [--out DIR] [--no-spec]
#                                 [--rules "linearity influence greedy-ppl"] [--reuse] [--only-spec]
# Writes into DIR (default bench/results/linearize): <model>.linearity.{csv,json,txt},
# <model>.<rule>.linmaps + .fit.json, ppl_vs_k_<model>.csv, spec_<model>.{json,md}, summary_<model>.md,
# summary.md (all models' sections found in DIR), plots <model>.linearity.png and ppl_vs_k_<model>.png.
# --reuse: keep linearity files and fitted maps already in DIR. --only-spec: only the self-draft part, from
# the maps already in DIR (needs <model>.greedy-ppl.* and <model>.linearity.* from an earlier run).
set -euo pipefail
cd "$(dirname "$0")/.."
SPECULA=${SPECULA:-./build/specula}
MODELS="smollm2-135m gemma3-270m" KFRAC=4 PPL_TOKENS=4096 PER_TASK=2 MAX_TOKENS=64 THREADS=2
OUT=bench/results/linearize SPEC=1 PPL=1 REUSE=0
RULES="linearity influence greedy-ppl"
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
    --only-spec) PPL=0; SPEC=1; shift ;;
    --rules) RULES=$2; shift 2 ;;
    --reuse) REUSE=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "linearize_study.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$SPECULA" ] || { echo "linearize_study.sh: $SPECULA not built" >&2; exit 2; }
mkdir -p "$OUT"
ppl() { "$SPECULA" perplexity -m "$1" -t "$THREADS" --data "$WIKI" --max-tokens "$PPL_TOKENS" ${2:+--strategy "$2"} --json 2>/dev/null \
        | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["ppl"])'; }
for M in $MODELS; do
  MS="$OUT/summary_$M.md"
  if [ "$PPL" = 1 ]; then
  if [ "$REUSE" = 1 ] && [ -s "$OUT/$M.linearity.json" ] && [ -s "$OUT/$M.linearity.csv" ]; then
    echo "== $M: per-layer linearity (reused)"
  else
    echo "== $M: per-layer linearity"
    # One collection for the CSV (plot data) and the JSON; the text table is rendered from the JSON.
    "$SPECULA" linearity -m "$M" -t "$THREADS" --data "$CAL" --csv "$OUT/$M.linearity.csv" --json > "$OUT/$M.linearity.json"
  fi
  python3 - "$OUT/$M.linearity.json" > "$OUT/$M.linearity.txt" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("%s: %d layers, n_embd %d; %d calibration tokens from %s (windows of %d)" % (j["model_name"], j["n_layer"], j["n_embd"], j["tokens"], j["data"], j["window"]))
print("%5s  %9s  %9s  %8s  %9s  %8s  %s" % ("layer", "linearity", "centered", "cosine", "influence", "angular", "centered linearity 0..1"))
for L in j["layers"]:
    n = round(min(max(L["linearity_centered"], 0), 1) * 40)
    print("%5d  %9.6f  %9.6f  %8.5f  %9.5f  %8.5f  %s" % (L["layer"], L["linearity"], L["linearity_centered"], L["cosine"], L["influence"], L["angular"], "#" * n + "." * (40 - n)))
print("mean linearity %.6f, mean centered linearity %.6f; collect %.1f s, scoring %.1f s" % (j["mean_linearity"], j["mean_linearity_centered"], j["collect_s"], j["score_s"]))
PY
  cat "$OUT/$M.linearity.txt"
  NL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["n_layer"])' "$OUT/$M.linearity.json")
  K=$((NL / KFRAC))
  for RULE in $RULES; do
    if [ "$REUSE" = 1 ] && [ -s "$OUT/$M.$RULE.linmaps" ] && [ -s "$OUT/$M.$RULE.fit.json" ]; then
      echo "== $M: maps selected by $RULE (reused)"
    else
      echo "== $M: fit maps, select by $RULE"
      CNT=(); [ "$RULE" = greedy-ppl ] && CNT=(--count "$K")
      "$SPECULA" calibrate linearize -m "$M" -t "$THREADS" --data "$CAL" --select "$RULE" "${CNT[@]}" \
        --out "$OUT/$M.$RULE.linmaps" --json > "$OUT/$M.$RULE.fit.json"
    fi
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("fit: collect %.1f s, score %.1f s, fit %.1f s, select %.1f s, total %.1f s; order %s" % (j["collect_s"], j["score_s"], j["fit_s"], j["select_s"], j["total_s"], [r["first"] for r in j["runs"]][:12]))' "$OUT/$M.$RULE.fit.json"
  done
  DENSE=$(ppl "$M" "")
  CSV="$OUT/ppl_vs_k_$M.csv"
  echo "rule,k,layers,replace_ppl,skip_ppl,dense_ppl" > "$CSV"
  for RULE in $RULES; do
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
    tail -n +2 "$CSV" | awk -F, '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'; } > "$MS"
  fi
  if [ "$SPEC" = 1 ]; then
    for f in "$OUT/$M.greedy-ppl.linmaps" "$OUT/$M.greedy-ppl.fit.json" "$OUT/$M.linearity.linmaps" "$OUT/$M.linearity.json"; do
      [ -s "$f" ] || { echo "linearize_study.sh: $f missing: run the perplexity part first" >&2; exit 2; }
    done
    NL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["n_layer"])' "$OUT/$M.linearity.json")
    K=$((NL / KFRAC))
    F="$OUT/$M.greedy-ppl.linmaps"
    LAYERS=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(",".join(str(r["first"]) for r in j["runs"]))' "$OUT/$M.greedy-ppl.fit.json")
    FL="$OUT/$M.linearity.linmaps"
    "$SPECULA" spec-bench -m "$M" -t "$THREADS" --per-task "$PER_TASK" -n "$MAX_TOKENS" --k 4 \
      --draft "linearize:path=$F" --draft "linearize:path=$F,mode=skip" --draft "layerskip:skip=$LAYERS" \
      --draft "linearize:path=$FL,count=$K" --draft "linearize:path=$FL,count=$((2 * K))" --draft "layerskip:skip=10-17" \
      --json "$OUT/spec_$M.json" --markdown "$OUT/spec_$M.md"
    { echo; echo "### $M self-draft (Spec-Bench, $PER_TASK prompts/task, $MAX_TOKENS tokens, k=4, $THREADS threads)"; echo; cat "$OUT/spec_$M.md"; } > "$OUT/summary_spec_$M.md"
  fi
done
SUMMARY="$OUT/summary.md"
{ echo "# Layer linearization study"; for f in "$OUT"/summary_*.md; do [ -e "$f" ] && cat "$f"; done; } > "$SUMMARY"
echo "wrote $SUMMARY"
# Plots (per-layer linearity, perplexity vs k): $SPECULA_PYTHON, else python3, else /usr/bin/python3 (Debian's
# python3-matplotlib when PATH has another python3 first); a missing matplotlib only loses the plots.
for PY in ${SPECULA_PYTHON:-} python3 /usr/bin/python3; do
  if "$PY" -c 'import matplotlib' 2>/dev/null; then "$PY" bench/linearize_plot.py "$OUT" || true; break; fi
done

#!/usr/bin/env bash
# Deja Vu sweep (issue 7): for one model, train predictors (lookahead on and off) from the shipped
# calibration text if missing, then over sparsity 0 -> 95% for the MLP only, the heads only and both:
# WikiText-2 perplexity and end-to-end decode tokens/s (`specula bench` interleaves dense and strategy
# runs and prints the ratio), and as a self-draft the Spec-Bench tau / speedup next to layer-skip.
# Writes JSON per cell plus a markdown summary to OUT/dejavu_<model>.md.
#
# Usage: bench/dejavu_sweep.sh [--model M] [--threads N] [--ppl-tokens N] [--out DIR] [--quick] [--no-spec]
#                              [--mlp-group G] [--mlp-only] [--rank R] [--tokens N]
#   --quick: fewer levels (0, 50, 80, 90, 95) and 1 prompt per Spec-Bench task.
#   --mlp-group G: predictors over groups of G consecutive neurons (GROUP sparsity, `calibrate dejavu
#     --mlp-group G`); files and the summary get a _gG suffix.
#   --mlp-only: only the MLP series with lookahead predictors (no heads, no same-layer series).
#   --rank R, --tokens N: predictor rank and calibration positions (default 128 and 8192, `calibrate
#     dejavu`'s defaults; `--rank 256 --tokens 32768` is the recipe whose held-out recall at 50% kept
#     reaches 0.90 / 0.92 in ~11 / ~9 minutes, see the README); files get an _rR_tN suffix.
# (configs/dejavu_sweep.yaml drives the same grid through `specula run`, with Spec-Bench prompts.)
set -euo pipefail
cd "$(dirname "$0")/.."
SPECULA=${SPECULA:-./build/specula}
MODEL=smollm2-135m THREADS=2 PPL_TOKENS=4096 OUT=bench/results/dejavu QUICK=0 SPEC=1 GROUP=1 MLP_ONLY=0
RANK=128 TOKENS=8192
DATA=../shared/data
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --ppl-tokens) PPL_TOKENS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-spec) SPEC=0; shift ;;
    --mlp-group) GROUP=$2; shift 2 ;;
    --mlp-only) MLP_ONLY=1; shift ;;
    --rank) RANK=$2; shift 2 ;;
    --tokens) TOKENS=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "dejavu_sweep.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
for v in "--rank:$RANK" "--tokens:$TOKENS" "--mlp-group:$GROUP"; do
  [[ "${v#*:}" =~ ^[1-9][0-9]*$ ]] || { echo "dejavu_sweep.sh: ${v%%:*} must be a positive integer, got '${v#*:}'" >&2; exit 2; }
done
[ -x "$SPECULA" ] || { echo "dejavu_sweep.sh: $SPECULA not built" >&2; exit 2; }
mkdir -p "$OUT"
name=$(basename "$MODEL" .gguf)
suffix=""
[ "$GROUP" = 1 ] || suffix="_g$GROUP"
[ "$RANK" = 128 ] && [ "$TOKENS" = 8192 ] || suffix="${suffix}_r${RANK}_t${TOKENS}"
LAS=(on off)
[ "$MLP_ONLY" = 0 ] || LAS=(on)
LEVELS=(0 0.3 0.5 0.7 0.8 0.9 0.95)
PER_TASK=2
if [ "$QUICK" = 1 ]; then LEVELS=(0 0.5 0.8 0.9 0.95); PER_TASK=1; fi

for la in "${LAS[@]}"; do
  f="$OUT/dejavu_${name}_la${la}${suffix}.bin"
  if [ ! -f "$f" ]; then
    echo "== calibrate $name lookahead=$la mlp-group=$GROUP" >&2
    /usr/bin/time -f "calibrate wall %e s" "$SPECULA" calibrate dejavu -m "$MODEL" -t "$THREADS" \
      --data "$DATA/tinyshakespeare_input.txt" --out "$f" --lookahead "$la" --mlp-group "$GROUP" \
      --rank "$RANK" --tokens "$TOKENS" --json \
      > "$OUT/dejavu_${name}_la${la}${suffix}_calib.json"
  fi
done

md="$OUT/dejavu_$name$suffix.md"
{
  echo "# Deja Vu sweep: $name ($THREADS threads, perplexity on the first $PPL_TOKENS WikiText-2 tokens)$([ "$GROUP" = 1 ] || echo ", GROUP sparsity: MLP neurons in groups of $GROUP")"
  echo
  echo "| lookahead | mlp skip | heads skip | ppl | achieved mlp / head sparsity | decode tok/s | vs dense |"
  echo "|---|---|---|---|---|---|---|"
} > "$md"
dense_ppl=$("$SPECULA" perplexity -m "$MODEL" -t "$THREADS" --data "$DATA/wikitext2_wiki.test.raw" --max-tokens "$PPL_TOKENS" --json | jq .ppl)
echo "| dense | 0 | 0 | $dense_ppl | 0 / 0 | | 1.00 |" >> "$md"
cell() {  # la mlp heads
  local la=$1 m=$2 h=$3
  local spec="dejavu:path=$OUT/dejavu_${name}_la${la}${suffix}.bin,mlp=$m,heads=$h"
  local tag="${name}_la${la}${suffix}_m${m}_h${h}"
  "$SPECULA" perplexity -m "$MODEL" -t "$THREADS" --data "$DATA/wikitext2_wiki.test.raw" --max-tokens "$PPL_TOKENS" \
    --strategy "$spec" --json > "$OUT/dejavu_ppl_$tag.json" 2>/dev/null
  "$SPECULA" bench -m "$MODEL" -t "$THREADS" --reps 3 --strategy "$spec" --json > "$OUT/dejavu_bench_$tag.json" 2>/dev/null
  local ppl ms hs tps ratio
  ppl=$(jq .ppl "$OUT/dejavu_ppl_$tag.json")
  ms=$(jq '.strategy_metrics.mlp_sparsity // 0 | . * 1000 | round / 1000' "$OUT/dejavu_ppl_$tag.json")
  hs=$(jq '.strategy_metrics.head_sparsity // 0 | . * 1000 | round / 1000' "$OUT/dejavu_ppl_$tag.json")
  tps=$(jq ".strategy_decode_tok_s | . * 10 | round / 10" "$OUT/dejavu_bench_$tag.json")
  ratio=$(jq ".strategy_decode_speedup | . * 100 | round / 100" "$OUT/dejavu_bench_$tag.json")
  echo "| $la | $m | $h | $ppl | $ms / $hs | $tps | $ratio |" >> "$md"
  echo "$la mlp=$m heads=$h ppl=$ppl tok/s=$tps ratio=$ratio" >&2
}
for la in "${LAS[@]}"; do
  for m in "${LEVELS[@]}"; do cell "$la" "$m" 0; done
  [ "$la" = on ] && [ "$MLP_ONLY" = 0 ] || continue
  for h in 0.3 0.5 0.7; do cell "$la" 0 "$h"; done
  for m in "${LEVELS[@]}"; do [ "$m" = 0 ] || cell "$la" "$m" 0.5; done
done

if [ "$SPEC" = 1 ]; then
  L=$("$SPECULA" models --json 2>/dev/null | jq -r --arg m "$name" '.[] | select(.name == $m) | .n_layer' 2>/dev/null || true)
  [ -n "$L" ] || L=30
  f="$OUT/dejavu_${name}_laon${suffix}.bin"
  bench/spec_decode.sh --model "$MODEL" --threads "$THREADS" --per-task "$PER_TASK" --max-tokens 64 --out "$OUT" \
    --draft "layerskip:skip=$((L / 3))-$((2 * L / 3 - 1))" \
    --draft "dejavu:path=$f,mlp=0.5,heads=0.3" --draft "dejavu:path=$f,mlp=0.8,heads=0.5" \
    --draft "dejavu:path=$f,mlp=0.9,heads=0.5" --draft "dejavu:path=$f,mlp=0.95,heads=0.7"
  { echo; echo "## Self-draft (dense target verifies): Spec-Bench, $PER_TASK prompt(s) per task, 64 tokens, k=4"; echo;
    cat "$OUT/spec_decode_$name.md"; } >> "$md"
fi
echo "wrote $md" >&2

#!/usr/bin/env bash
# bench/spec_equal.sh --jobs/--slices/--out: the prompt file is cut into interleaved slices run side by
# side, every prompt is checked once, a rerun with the same --out resumes (complete slices are kept,
# incomplete ones rerun), and a mismatch or an incomplete slice in any slice fails the whole check.
# 5 prompts x 8 tokens, two drafters, on SmolLM2 (a few seconds).
# Usage: spec_equal_slices.sh path/to/specula models_dir
set -u
source "$(dirname "$0")/common.sh"
head -5 "$ROOT/../shared/data/spec_bench_question.jsonl" > "$tmp/p.jsonl"
eq() { SPECULA=$SPECULA "$ROOT/bench/spec_equal.sh" --model "$MODEL" --max-tokens 8 --draft ngram --draft early-exit:layers=15 \
         --data "$tmp/p.jsonl" "$@"; }
dir="$tmp/out/SmolLM2-135M-Instruct.Q4_1"

eq --jobs 2 --slices 3 --out "$tmp/out" > "$tmp/1.log" 2>&1 || { cat "$tmp/1.log"; fail "first run failed"; }
grep -q "0 mismatching (drafter, prompt) pairs over 5 prompts in 3 complete slices; 0 incomplete" "$tmp/1.log" \
  || { cat "$tmp/1.log"; fail "expected 5 prompts in 3 slices"; }
[ "$(cat "$dir"/slice*.jsonl | sort | uniq | wc -l)" -eq 5 ] || fail "slices do not hold the 5 prompts once each"
[ "$(wc -l < "$dir/slice00.jsonl")" -eq 2 ] || fail "slice00 should hold prompts 1 and 4"

eq --jobs 2 --slices 3 --out "$tmp/out" > "$tmp/2.log" 2>&1 || { cat "$tmp/2.log"; fail "resumed run failed"; }
grep -q "0 of 3 slices to run" "$tmp/2.log" || { cat "$tmp/2.log"; fail "a complete run was not kept on resume"; }

head -c 100 "$dir/slice01.log" > "$tmp/t" && mv "$tmp/t" "$dir/slice01.log"  # cut short: incomplete
eq --jobs 2 --slices 3 --out "$tmp/out" > "$tmp/3.log" 2>&1 || { cat "$tmp/3.log"; fail "rerun of an incomplete slice failed"; }
grep -q "1 of 3 slices to run" "$tmp/3.log" || { cat "$tmp/3.log"; fail "an incomplete slice was not rerun"; }

# A slice whose log reports a mismatch fails the check, and its MISMATCH line is shown.
sed -i 's/^equality: 0 mismatching/equality: 1 mismatching/' "$dir/slice02.log"
echo "MISMATCH drafter 'ngram' prompt #5 (mt_bench): first difference at generated token 3" >> "$dir/slice02.log"
if eq --jobs 2 --slices 3 --out "$tmp/out" > "$tmp/4.log" 2>&1; then cat "$tmp/4.log"; fail "a mismatch did not fail the check"; fi
grep -q "^MISMATCH drafter 'ngram' prompt #5" "$tmp/4.log" || fail "the MISMATCH line was not shown"
grep -q "1 mismatching (drafter, prompt) pairs over 5 prompts" "$tmp/4.log" || { cat "$tmp/4.log"; fail "mismatch not counted"; }

# Bad options: each a clear error, exit 2.
for args in "--jobs 0 --out $tmp/o" "--jobs 2" "--out $tmp/o --per-task 2" "--slices x --out $tmp/o" "--out $tmp/o -- --data x"; do
  # shellcheck disable=SC2086
  eq $args > "$tmp/bad.log" 2>&1
  rc=$?
  [ $rc -eq 2 ] || { cat "$tmp/bad.log"; fail "'$args': exit $rc, expected 2"; }
  grep -q "^spec_equal.sh: " "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "'$args': no error message"; }
done
echo "PASS: spec_equal.sh slices, resume, mismatch and bad options"

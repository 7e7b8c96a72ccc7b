#!/usr/bin/env bash
# `specula run` interrupted with SIGINT in the middle of a grid, then resumed:
#   * the interrupted run exits 130 with a message that says how to resume, and writes no metrics.json;
#   * the rerun skips exactly the cells that had finished and completes the grid;
#   * every cell's tokens equal those of an uninterrupted run with the same config and seed.
# Usage: run_interrupt.sh path/to/specula models_dir
set -u
source "$(dirname "$0")/common.sh"
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }

cat > "$tmp/grid.yaml" <<EOF
name: interrupt-test
model: {path: $MODEL, threads: 1}
data: {limit: 2}
generation: {max_tokens: 20}
draft: {spec: "ngram:min=1,max=3"}
grid:
  draft.k: [1, 2, 3, 4, 5, 6]
EOF
cells=7  # 6 grid cells + the baseline

"$SPECULA" run "$tmp/grid.yaml" --out "$tmp/ref" --no-plots > "$tmp/ref.log" 2>&1 || fail "uninterrupted run failed"

# Start the run, wait until two cells have finished, then interrupt it (in the middle of the third).
"$SPECULA" run "$tmp/grid.yaml" --out "$tmp/int" --no-plots > "$tmp/int.log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do
  n=$(ls "$tmp"/int/cells/*/result.json 2>/dev/null | wc -l)
  [ "$n" -ge 2 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 130 ] || fail "interrupted run exited with $rc, expected 130 (did it finish before the interrupt?)"
grep -Eq "interrupted (during|before) cell" "$tmp/int.log" || fail "no interrupt message"
grep -q "Resume with: specula run .* --out $tmp/int" "$tmp/int.log" || fail "the message does not say how to resume"
[ ! -e "$tmp/int/metrics.json" ] || fail "an interrupted run wrote metrics.json"
done_before=$(ls "$tmp"/int/cells/*/result.json | wc -l)
[ "$done_before" -ge 2 ] && [ "$done_before" -lt "$cells" ] || fail "$done_before cells finished before the interrupt"
ls "$tmp"/int/cells/*/result.json.tmp.* >/dev/null 2>&1 && fail "a half-written result file was left behind"

"$SPECULA" run "$tmp/grid.yaml" --out "$tmp/int" --no-plots > "$tmp/resume.log" 2>&1 || fail "resumed run failed"
skipped=$(grep -c "finished earlier, skipped" "$tmp/resume.log")
[ "$skipped" -eq "$done_before" ] || fail "resume skipped $skipped cells, expected $done_before"
[ -f "$tmp/int/metrics.json" ] && [ -f "$tmp/int/report.md" ] || fail "the resumed run did not complete"

python3 - "$tmp/ref" "$tmp/int" <<'PY' || fail "tokens differ from the uninterrupted run"
import json, os, sys
ref, got = sys.argv[1], sys.argv[2]
cells = sorted(os.listdir(os.path.join(ref, "cells")))
assert cells == sorted(os.listdir(os.path.join(got, "cells"))), "different cell ids"
for c in cells:
    a = [p["tokens"] for p in json.load(open(os.path.join(ref, "cells", c, "result.json")))["prompts"]]
    b = [p["tokens"] for p in json.load(open(os.path.join(got, "cells", c, "result.json")))["prompts"]]
    assert a == b, f"cell {c}: tokens differ"
m = json.load(open(os.path.join(got, "metrics.json")))
assert all(c["lossless_check"] == "pass" for c in m["cells"]), "lossless check failed"
print(f"ok: {len(cells)} cells, tokens identical to the uninterrupted run")
PY
echo "ok: interrupted after $done_before of $cells cells (exit 130), resume skipped them and completed"

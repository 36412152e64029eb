#!/usr/bin/env bash
# The embedded suites' accuracy per storage format: the f32 model, then its q8_0, q4_k and
# q4_k_moe GGUF copies, decoded with the same spec; per suite, accuracy with its 95% Wilson
# interval and the paired comparison with f32 (items right in one and wrong in the other, exact
# McNemar p), edit intensity (T2T edits per 100 generated tokens), final-digit errors and
# over-corrected items.
#
#   DRAFTSCOPE=target/release/draftscope JOBS=1 scripts/format_suites.sh OUT [MODEL_DIR] [SUITES] [LIMIT]
#
# MODEL_DIR defaults to assets/model (the embedded model), SUITES to arith,facts,arith-add4-testbed,
# LIMIT (items per suite) to all. Stores go to OUT/sessions, quantized copies to OUT/<format>.
set -euo pipefail
ds=${DRAFTSCOPE:-target/release/draftscope}
out=${1:?usage: format_suites.sh OUT [MODEL_DIR] [SUITES] [LIMIT]}
model=${2:-assets/model}
suites=${3:-arith,facts,arith-add4-testbed}
limit=${4:-}
mkdir -p "$out"
lim=()
[[ -n $limit ]] && lim=(--limit "$limit")
"$ds" bench --model "$model" --suite "$suites" --sessions "$out/sessions" --jobs "${JOBS:-1}" "${lim[@]}" >"$out/f32.txt"
for f in q8_0 q4_k q4_k_moe; do
  [[ -f $out/$f/model.gguf ]] || "$ds" quantize --model "$model" --to "$f" --out "$out/$f" >"$out/$f.quantize.txt"
  "$ds" bench --model "$out/$f" --suite "$suites" --sessions "$out/sessions" --jobs "${JOBS:-1}" "${lim[@]}" >"$out/$f.txt"
done
python3 - "$out/sessions/results.jsonl" <<'PY'
import json, math, sys  # accuracy intervals are the bench's own (Wilson)
rows = [json.loads(l) for l in open(sys.argv[1])]
def fmt(r):
    m = r["model"]
    for f in ("q4_k_moe", "q4_k", "q8_0"):
        if m.rstrip("/").endswith("/" + f):
            return f
    return "f32"
def mcnemar(b, c):
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
latest = {}
for r in rows:
    latest[(r["suite"], fmt(r))] = r
print(f"{'suite':<20}{'format':<10}{'accuracy':>9}  {'95% CI':<15}{'f32 only':>9}{'fmt only':>9}{'McNemar p':>11}{'edits/100':>10}{'final-digit':>12}{'over-corr':>10}")
for suite in dict.fromkeys(s for s, _ in latest):
    base = {i["id"]: i["correct"] for i in latest[(suite, "f32")]["items"]}
    for f in ("f32", "q8_0", "q4_k", "q4_k_moe"):
        r = latest.get((suite, f))
        if r is None:
            continue
        items = {i["id"]: i["correct"] for i in r["items"]}
        k, n = sum(items.values()), len(items)
        lo, hi = (100 * x for x in r["metrics"]["accuracy_ci"])
        b = sum(1 for i, ok in items.items() if base.get(i) and not ok)
        c = sum(1 for i, ok in items.items() if ok and base.get(i) is False)
        p = "" if f == "f32" else f"{mcnemar(b, c):.3f}"
        m = r["metrics"]
        fd = m["final_digit_errors"]["total"]
        print(f"{suite:<20}{f:<10}{100 * k / n:8.1f}%  [{lo:4.1f}, {hi:4.1f}]   {b:>8} {c:>8} {p:>10} "
              f"{m['edit_intensity']:9.2f} {fd:>11} {m['over_corrected']:>9}")
PY

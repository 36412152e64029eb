#!/usr/bin/env bash
# Regenerates the results set the results pane (`r`) shows on a fresh clone: the final
# comparison (experiments/testbed-g05.json: the embedded base model vs 5 seeds each of
# `self --gate 0.5` (the default recipe), `self --gate 0.7` (the earlier one) and `random`,
# 300 LoRA steps each on the long world corpus, all items of arith-add4-testbed, arith and
# facts, Q-Mode and S-Mode), packed small.
#
#   sessions/results/make.sh                    # runs (or resumes) the experiment in EXP, then packs
#   EXP=/path/to/finished/experiment sessions/results/make.sh   # pack an experiment you already ran
#   SPEC=experiments/self-vs-random.json EXP=... sessions/results/make.sh   # another grid
#   APPEND=1 SPEC=... EXP=... REPORT_DIR=sessions/experiment-x \
#     sessions/results/make.sh     # add a second grid over the same runs to the set
#
# Writes sessions/results/results.jsonl (every record, adapters pointed at the copies below),
# the traces of the first KEEP_TRACES failing items of each row under sessions/results/bench/
# (the pane says so when asked to open a pruned one), and sessions/results/runs/<model>/ with
# run.json, metrics.jsonl and the final adapter (no checkpoints or optimizer states). The report
# of the same experiment is copied to REPORT_DIR (sessions/experiment/). With APPEND=1 the set is
# kept and EXP's records are added: a run already in the set must have the same adapter bytes
# (a grid that reused the set's runs), a new one is copied. Needs a release build and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${DRAFTSCOPE_BIN:-target/release/draftscope}
SPEC=${SPEC:-experiments/testbed-g05.json}
EXP=${EXP:-exp/final}  # the experiment directory (hours of CPU on 2 cores when run from scratch)
KEEP_TRACES=${KEEP_TRACES:-3}   # failing-item traces kept per row
APPEND=${APPEND:-0}             # 1: add EXP's records to the set instead of replacing it
REPORT_DIR=${REPORT_DIR:-sessions/experiment}
OUT=sessions/results

[ -x "$BIN" ] || { echo "make.sh: $BIN not built (cargo build --release)"; exit 1; }
command -v python3 >/dev/null || { echo "make.sh: python3 is needed to pack the set"; exit 1; }
if [ -f "$EXP/experiment.json" ]; then
  "$BIN" experiment --resume "$EXP"
else
  "$BIN" experiment --spec "$SPEC" --out "$EXP"
fi

if [ "$APPEND" != 1 ]; then
  rm -rf "$OUT/results.jsonl" "$OUT/results.lock" "$OUT/bench" "$OUT/runs"
fi
python3 - "$EXP" "$OUT" "$KEEP_TRACES" "$APPEND" <<'PY'
import filecmp, json, os, shutil, sys
exp, out, per_row, append = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
runs = os.path.join(exp, "runs")
for name in sorted(os.listdir(runs)):
    src, dst = os.path.join(runs, name), os.path.join(out, "runs", name)
    if os.path.exists(dst):
        a, b = (os.path.join(d, "adapter", "adapter_model.safetensors") for d in (src, dst))
        if not filecmp.cmp(a, b, shallow=False):
            sys.exit(f"make.sh: {dst} holds a different adapter than {src}: not the same run")
        continue
    os.makedirs(dst)
    for f in ("run.json", "metrics.jsonl"):
        shutil.copy(os.path.join(src, f), dst)
    shutil.copytree(os.path.join(src, "adapter"), os.path.join(dst, "adapter"))
runs_abs = os.path.abspath(runs)
keep = drop = 0
lines = []
if append:
    lines = [l.rstrip("\n") for l in open(os.path.join(out, "results.jsonl")) if l.strip()]
before = len(lines)
# A row the set already has (same model, adapter, suite, mode, attention and decode parameters:
# the base model benchmarked again by a second grid) is not added twice.
def identity(r):
    return json.dumps([r["model"], r["adapter"], r["suite"], r["mode"], r["attention"], r["params"]], sort_keys=True)
have = {identity(r): r["metrics"]["correct"] for r in map(json.loads, lines)}
same = 0
for line in open(os.path.join(exp, "sessions", "results.jsonl")):
    if not line.strip():
        continue
    r = json.loads(line)
    if append and r["adapter"] is None and identity(r) in have:
        if have[identity(r)] != r["metrics"]["correct"]:
            sys.exit(f"make.sh: the base model scored {r['metrics']['correct']} on {r['suite']} ({r['mode']}) in {exp}, {have[identity(r)]} in the set: not the same model")
        same += 1
        continue
    if r["adapter"]:
        rel = os.path.relpath(os.path.abspath(r["adapter"]), runs_abs)
        r["adapter"] = os.path.join(out, "runs", rel)
    r["source"] = os.path.relpath(r["source"], os.getcwd()) if os.path.isabs(r["source"]) else r["source"]
    failing = 0
    for it in r["items"]:
        if not it["correct"] and failing < per_row:
            failing += 1
            src = os.path.join(exp, "sessions", it["trace"])
            if os.path.exists(src):
                os.makedirs(os.path.dirname(os.path.join(out, it["trace"])), exist_ok=True)
                shutil.copy(src, os.path.join(out, it["trace"]))
                keep += 1
        else:
            drop += 1
    lines.append(json.dumps(r, separators=(",", ":")))
with open(os.path.join(out, "results.jsonl.tmp"), "w") as f:
    f.write("\n".join(lines) + "\n")
os.replace(os.path.join(out, "results.jsonl.tmp"), os.path.join(out, "results.jsonl"))
print(f"{len(lines)} records ({len(lines) - before} added, {same} already in the set); traces: kept {keep} (first {per_row} failing items per row), pruned {drop}")
PY
mkdir -p "$REPORT_DIR"
cp "$EXP/report.md" "$EXP/report.json" "$EXP/experiment.json" "$REPORT_DIR/"
"$BIN" results --sessions "$OUT" > /dev/null
du -sh "$OUT"

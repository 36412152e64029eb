#!/usr/bin/env python3
"""Where the embedded model's four-digit-addition failures start, and what wrote them.

For every failed item of an `arith-add4-testbed` (or `assets/dev/arith-add4-dev.jsonl`) bench
directory, rebuilds the gold worked solution for the equation the model wrote (the world's
format: `a+b: x+y=s, x+y+1=s, …, so V. Answer: V`), finds the first token where the output departs
from it, and replays the trace to say what last wrote that token: a T2T edit or an M2T commit, and
whether the gold token stood there at some step before (so an edit destroyed it).

    python3 scripts/error_origin.py PATH [PATH …]   # a trace, or <sessions>/bench/<run-id>/<suite>

Four-digit addition only (the testbed's family). Standard library only; reads traces
(docs/trace.md), writes nothing; a missing or unreadable trace exits 2.
"""
import json
import os
import re
import sys
from collections import Counter


def gold_solution(a, b):
    da = [int(c) for c in reversed(str(a))]
    db = [int(c) for c in reversed(str(b))]
    steps, carry = [], 0
    for i, x in enumerate(da):
        y = db[i] if i < len(db) else 0
        s = x + y + carry
        steps.append(f"{x}+{y}+{carry}={s}" if carry else f"{x}+{y}={s}")
        carry = s // 10
    v = a + b
    return f"{a}+{b}: {', '.join(steps)}, so {v}. Answer: {v}"


def section(gold, idx):
    """Which part of the gold solution character idx falls in."""
    head = gold.index(": ")
    so = gold.index(", so ")
    ans = gold.index(". Answer: ")
    if idx < head:
        return "equation"
    if idx < so:
        return "column step"
    if idx < ans:
        return "worked value"
    return "answer line"


def analyse(path):
    t = json.load(open(path))
    text_of = {int(k): v for k, v in t["token_text"].items()}
    p = t["params"]
    plen = len(t["prompt_ids"])
    # Replay: who last wrote each position, and which tokens it held over the decode.
    writer, held = {}, {}
    for b in t["blocks"]:
        for s in b["steps"]:
            for c in s["commits"]:
                writer[c["pos"]] = "commit"
                held.setdefault(c["pos"], []).append(c["token"])
            for e in s["edits"]:
                writer[e["pos"]] = "edit"
                held.setdefault(e["pos"], []).append(e["to"])
    out = []
    for pos in range(plen, len(t["final_canvas"])):
        tok = t["final_canvas"][pos]
        if tok in (p["eos_id"], p["mask_id"]):
            break
        out.append((pos, tok, text_of.get(tok, "?")))
    text = "".join(s for _, _, s in out)
    nums = [int(n) for n in re.findall(r"\d+", t["prompt"] or "")]
    answer = re.findall(r"Answer:\s*(\d+)", text)
    if len(nums) >= 2 and len(answer) == 1 and int(answer[0]) == nums[0] + nums[1]:
        return None  # answered right
    m = re.match(r"\s*(\d+)\+(\d+):", text)
    if not m or len(nums) < 2:
        return {"where": "no equation", "writer": None, "destroyed": False}
    a, b = int(m.group(1)), int(m.group(2))
    if sorted((a, b)) != sorted(nums[:2]):
        gold = gold_solution(nums[0], nums[1])
    else:
        gold = gold_solution(a, b)
    lead = len(text) - len(text.lstrip())
    body = text[lead:]
    i = 0
    while i < min(len(body), len(gold)) and body[i] == gold[i]:
        i += 1
    if i == len(gold) and len(body) == len(gold):
        return None  # the output is the gold solution
    where = section(gold, min(i, len(gold) - 1))
    # The output token covering character lead + i.
    acc, pos, gold_tok = 0, None, None
    for q, tok, s in out:
        if acc + len(s) > lead + i:
            pos = q
            break
        acc += len(s)
    if pos is None:
        return {"where": where, "writer": "nothing (the output ends early)", "destroyed": False}
    # Did a token that agrees with the gold text at this token's place stand there before?
    at = acc - lead
    destroyed = at >= 0 and any(
        gold[at:].startswith(text_of.get(x, "\0")) for x in held.get(pos, [])[:-1]
    )
    return {"where": where, "writer": writer.get(pos, "prompt"), "destroyed": destroyed}


def fail(msg):
    print(f"error_origin.py: {msg}", file=sys.stderr)
    sys.exit(2)


def main(args):
    paths = []
    for arg in args:
        if os.path.isdir(arg):
            paths += [os.path.join(arg, f) for f in sorted(os.listdir(arg)) if f.endswith(".json")]
        elif os.path.isfile(arg):
            paths.append(arg)
        else:
            fail(f"{arg}: no such trace or directory")
    by_writer, by_place = Counter(), Counter()
    for path in paths:
        try:
            r = analyse(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            fail(f"{path}: not a draftscope trace ({e})")
        if r is None:
            continue
        by_writer[(r["writer"], r["destroyed"])] += 1
        by_place[(r["where"], r["writer"])] += 1
    n = sum(by_writer.values())
    edits = sum(v for (w, _), v in by_writer.items() if w == "edit")
    print(f"traces: {len(paths)}; failed (the answer line is not the sum): {n}")
    if n:
        print(f"first wrong token written by a T2T edit: {edits} ({100 * edits / n:.1f}%)")
    for (w, destroyed), v in sorted(by_writer.items(), key=lambda kv: -kv[1]):
        print(f"  last written by {w}{', replacing the right token' if destroyed else ''}: {v}")
    for (where, w), v in sorted(by_place.items(), key=lambda kv: -kv[1]):
        print(f"  {where:>13} / {w}: {v}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])

#!/usr/bin/env python3
"""The official LLaDA2 `generate()` on the side-by-side mid config, for `scripts/official_speed.sh`.

Builds the mid config of `draftscope speed --config mid` (hidden 512, 8 layers, 32 experts
top-4, vocab 8192) with the official config and model classes, seeded random weights (the
classes' own initialisation), saves it as a HF directory draftscope can load, then times the
official `generate()` (f32, eager attention, Q-Mode thresholds) at a fixed thread count and
prints one JSON line: seconds per run, forward calls, output ids.

The official files are not part of this repository: pass the folder holding
`modeling_llada2_moe.py`, `configuration_llada2_moe.py` and `__init__.py` (lingjiechen2/dllm at
9268328a71b56e08a0be48e4319b938e29cfe1a8, `dllm/pipelines/llada21/models/`, the files the
`llada2-tiny` fixture was made with). Needs torch and transformers (the fixture's versions:
torch 2.15.0, transformers 4.57.6).
"""

import argparse
import importlib.util
import json
import os
import sys
import time


def load_official(folder):
    """Import the official package from `folder` under the name `llada2_official`."""
    init = os.path.join(folder, "__init__.py")
    for f in ("modeling_llada2_moe.py", "configuration_llada2_moe.py", "__init__.py"):
        if not os.path.isfile(os.path.join(folder, f)):
            sys.exit(f"official_speed: {folder} has no {f} (pass the official models folder with --official)")
    spec = importlib.util.spec_from_file_location("llada2_official", init, submodule_search_locations=[folder])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["llada2_official"] = mod
    spec.loader.exec_module(mod)
    conf = importlib.import_module("llada2_official.configuration_llada2_moe")
    model = importlib.import_module("llada2_official.modeling_llada2_moe")
    return conf.LLaDA2MoeConfig, model.LLaDA2MoeModelLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="folder with the official modeling files")
    ap.add_argument("--out", required=True, help="where to write the model directory")
    ap.add_argument("--prompt-ids", default="5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20")
    ap.add_argument("--gen-length", type=int, default=256)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    Config, Model = load_official(a.official)
    vocab = 8192
    cfg = Config(
        vocab_size=vocab, hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
        num_key_value_heads=2, head_dim=64, partial_rotary_factor=0.5, rope_theta=600000.0,
        rms_norm_eps=1e-6, intermediate_size=1408, first_k_dense_replace=1, num_experts=32,
        num_experts_per_tok=4, n_group=4, topk_group=2, routed_scaling_factor=2.5,
        moe_intermediate_size=256, num_shared_experts=1, max_position_embeddings=8192,
        use_qk_norm=True, use_qkv_bias=False, use_bias=False, tie_word_embeddings=False,
        eos_token_id=vocab - 4, pad_token_id=vocab - 4,
    )
    cfg._attn_implementation = "eager"  # f32 weights: SDPA rejects generate()'s bf16 mask
    torch.manual_seed(a.seed)
    model = Model(cfg).eval()
    if not os.path.exists(os.path.join(a.out, "config.json")):
        model.save_pretrained(a.out, safe_serialization=True)
        p = os.path.join(a.out, "config.json")
        with open(p) as f:
            c = json.load(f)
        c["mask_token_id"] = vocab - 1
        with open(p + ".tmp", "w") as f:
            json.dump(c, f, indent=2)
        os.replace(p + ".tmp", p)

    calls = [0]
    fwd = model.forward

    def counted(*args, **kw):
        calls[0] += 1
        return fwd(*args, **kw)

    model.forward = counted
    prompt = torch.tensor([[int(x) for x in a.prompt_ids.split(",")]], dtype=torch.long)
    secs, out = [], None
    for _ in range(max(a.reps, 1)):
        calls[0] = 0
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                inputs=prompt, temperature=0.0, block_length=a.block_length, steps=32,
                gen_length=a.gen_length, eos_early_stop=False, threshold=0.7, editing_threshold=0.5,
                max_post_steps=16, eos_id=vocab - 4, mask_id=vocab - 1, num_to_transfer=1,
            )
        secs.append(time.perf_counter() - t)
    print(json.dumps({"seconds": secs, "forwards": calls[0], "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "output": out[0].tolist()}))


if __name__ == "__main__":
    main()

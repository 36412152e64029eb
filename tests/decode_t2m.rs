//! T2M remasking (arXiv 2604.18738) as a decode policy: the step loop fed hand-built logits
//! sequences (each strategy, each guard, block termination), then real decodes on the
//! official-code fixture and the embedded model.

mod common;

use std::cell::Cell;
use std::ops::ControlFlow;
use std::process::Command;

use anyhow::Result;
use draftscope::decode::{
    AttentionMode, BlockEnd, Decision, DecodeParams, Decoder, EditPolicy, Limits, Mode, RemaskStrategy,
    Trace, run_loop,
};

// A vocabulary of 8: tokens 0..=5, EOS 6, mask 7. The prompt fills block 0 (4 tokens); block
// 1 (positions 4..8) is generated.
const V: usize = 8;
const EOS: u32 = 6;
const MASK: u32 = 7;
const PROMPT: [u32; 4] = [0, 1, 2, 3];
const LIMITS: Limits = Limits { vocab_size: V, max_positions: 64 };

fn params(strategy: RemaskStrategy) -> DecodeParams {
    let mut p = DecodeParams::preset(Mode::Q, EOS, MASK).with_remask(strategy);
    p.block_length = 4;
    p.gen_length = 4;
    p
}

/// A logits row whose softmax gives `probs` (the rest of the mass spread evenly).
fn row(probs: &[(u32, f32)]) -> Vec<f32> {
    let given: f32 = probs.iter().map(|(_, p)| p).sum();
    let rest = ((1.0 - given) / (V - probs.len()) as f32).max(1e-6);
    (0..V as u32).map(|t| probs.iter().find(|(id, _)| *id == t).map_or(rest, |(_, p)| *p).ln()).collect()
}

/// Runs the loop with one scripted block of rows per forward (the last repeats).
fn decode(p: &DecodeParams, script: Vec<Vec<Vec<f32>>>) -> Trace {
    let calls = Cell::new(0usize);
    let mut forward = |_: &[u32], _: usize| -> Result<Vec<Vec<f32>>> {
        let i = calls.get().min(script.len() - 1);
        calls.set(calls.get() + 1);
        Ok(script[i].clone())
    };
    run_loop(p, LIMITS, &PROMPT, &mut forward, &mut |_| ControlFlow::Continue(())).unwrap()
}

/// The rows of a confident block predicting `tokens`.
fn confident(tokens: [u32; 4]) -> Vec<Vec<f32>> {
    tokens.iter().map(|&t| row(&[(t, 0.95)])).collect()
}

#[test]
fn low_prob_remasks_a_doubted_token_and_m2t_refills_it() {
    let doubt = vec![row(&[(1, 0.95)]), row(&[(2, 0.95)]), row(&[(5, 0.6), (3, 0.21)]), row(&[(4, 0.95)])];
    let t = decode(
        &params(RemaskStrategy::LowProb),
        vec![confident([1, 2, 3, 4]), doubt, confident([1, 2, 5, 4])],
    );
    let b = &t.blocks[0];
    assert_eq!(b.steps.len(), 4);
    // Step 1 started with no mask, remasked position 6 and did not end the block.
    let s1 = &b.steps[1];
    assert_eq!((s1.post_step_counter, s1.after.clone()), (1, vec![1, 2, MASK, 4]));
    assert_eq!(s1.remasks.len(), 1);
    let r = &s1.remasks[0];
    assert_eq!((r.pos, r.from, r.nth), (6, 3, 1));
    assert!((r.p_current - 0.21).abs() < 1e-5 && (r.score - r.p_current).abs() < 1e-7);
    assert_eq!(s1.positions[2].decision, Decision::Remask);
    assert!(s1.edits.is_empty());
    // Step 2 refills it from the mask with the new argmax.
    assert_eq!(b.steps[2].commits.iter().map(|c| (c.pos, c.token)).collect::<Vec<_>>(), vec![(6, 5)]);
    assert_eq!(b.ended_by, BlockEnd::NoEditAfterFill);
    assert_eq!(t.output, vec![1, 2, 5, 4]);
    assert_eq!(t.remask_count(), 1);
    assert_eq!(t.why(0, 1, 2).unwrap(), "remask <3> at step 1: p(<3>)=0.21 < 0.50");
}

#[test]
fn t2t_remask_remasks_where_t2t_would_have_edited() {
    let flip = vec![row(&[(1, 0.95)]), row(&[(5, 0.93)]), row(&[(3, 0.95)]), row(&[(4, 0.95)])];
    let script = vec![confident([1, 2, 3, 4]), flip, confident([1, 5, 3, 4])];
    let t = decode(&params(RemaskStrategy::T2tRemask), script.clone());
    let r = &t.blocks[0].steps[1].remasks[0];
    assert_eq!((r.pos, r.from, r.argmax), (5, 2, 5));
    assert!((r.score - 0.07).abs() < 1e-5);
    assert_eq!(t.output, vec![1, 5, 3, 4]);
    assert!(t.why(0, 1, 1).unwrap().starts_with("remask <2> at step 1: argmax <5> p=0.93 > 0.90"));
    // The same logits under T2T: an edit, no remask, the same answer one forward sooner.
    let mut p = params(RemaskStrategy::T2tRemask);
    p.edit_policy = EditPolicy::T2t;
    let t2t = decode(&p, script);
    assert_eq!((t2t.edit_count(), t2t.remask_count(), t2t.output.clone()), (1, 0, vec![1, 5, 3, 4]));
    assert_eq!(t2t.forward_calls + 1, t.forward_calls);
}

#[test]
fn logit_diff_remasks_when_the_probability_moved_since_the_previous_step() {
    // Step 0 commits 3 at p 0.95; at step 1 p(3) is 0.55 (|Δ| 0.40 > 0.30) though still the argmax.
    let moved = vec![row(&[(1, 0.95)]), row(&[(2, 0.95)]), row(&[(3, 0.55)]), row(&[(4, 0.8)])];
    let t = decode(
        &params(RemaskStrategy::LogitDiff),
        vec![confident([1, 2, 3, 4]), moved, confident([1, 2, 3, 4])],
    );
    let s1 = &t.blocks[0].steps[1];
    assert_eq!(s1.remasks.iter().map(|r| r.pos).collect::<Vec<_>>(), vec![6]);
    let r = &s1.remasks[0];
    assert!((r.p_prev.unwrap() - 0.95).abs() < 1e-5 && (r.p_current - 0.55).abs() < 1e-5);
    // p(4) moved 0.95 → 0.80: not enough.
    assert_eq!(s1.positions[3].decision, Decision::Keep);
    assert_eq!(
        t.why(0, 1, 2).unwrap(),
        "remask <3> at step 1: p(<3>) moved 0.95 → 0.55 since the previous step (|Δ|=0.40 > 0.30)"
    );
    assert_eq!(t.why(0, 1, 3).unwrap(), "keep <4>: p(<4>) moved 0.95 → 0.80, not more than 0.30");
}

#[test]
fn the_step_cap_remasks_the_least_likely_token_first() {
    // All four doubted; 4 editable × 0.25 = one remask per step, lowest p(current) first.
    let doubt = vec![row(&[(1, 0.4)]), row(&[(2, 0.3)]), row(&[(3, 0.1)]), row(&[(4, 0.45)])];
    let mut script = vec![confident([1, 2, 3, 4]), doubt];
    script.push(confident([1, 2, 3, 4]));
    let t = decode(&params(RemaskStrategy::LowProb), script);
    assert_eq!(t.blocks[0].steps[1].remasks.iter().map(|r| r.pos).collect::<Vec<_>>(), vec![6]);
    assert!(t.why(0, 1, 1).unwrap().contains("step cap (25% of editable positions)"));
}

#[test]
fn a_forever_doubting_model_still_ends_the_block_within_the_per_position_cap() {
    // Every step the model fills with p 0.45 (a fallback) and then doubts that very token:
    // each position is remasked max_remask_per_pos times, then the block settles.
    let mut p = params(RemaskStrategy::LowProb);
    p.max_remask_per_pos = 3;
    p.max_remask_ratio = 1.0;
    let t = decode(&p, vec![vec![row(&[(1, 0.45)]); 4]]);
    let b = &t.blocks[0];
    assert_eq!(t.remask_count(), 4 * 3);
    let per_pos: Vec<usize> =
        (4..8).map(|pos| b.steps.iter().flat_map(|s| &s.remasks).filter(|r| r.pos == pos).count()).collect();
    assert_eq!(per_pos, vec![3, 3, 3, 3]);
    assert_eq!(b.ended_by, BlockEnd::NoEditAfterFill);
    let bound = 4 * (1 + p.max_remask_per_pos) + p.max_post_steps + 1;
    assert!(b.steps.len() <= bound, "{} steps", b.steps.len());
}

#[test]
fn max_post_steps_still_bounds_a_block_that_keeps_remasking() {
    // Fill, then a doubt at every step without a mask: post-step 1 remasks, the refill,
    // post-step 2 remasks again, the refill; post-step 3 exceeds max_post_steps 2 and the
    // block stops without a forward, though the model still doubts (the counter never resets).
    let mut p = params(RemaskStrategy::LowProb);
    p.max_post_steps = 2;
    p.max_remask_per_pos = 100;
    let doubt = vec![row(&[(1, 0.95)]), row(&[(2, 0.95)]), row(&[(5, 0.6), (3, 0.2)]), row(&[(4, 0.95)])];
    let t = decode(&p, vec![confident([1, 2, 3, 4]), doubt.clone(), confident([1, 2, 3, 4]), doubt]);
    let b = &t.blocks[0];
    assert_eq!(b.ended_by, BlockEnd::MaxPostSteps);
    assert_eq!((b.steps.len(), t.remask_count()), (5, 2));
    assert_eq!(b.steps.iter().map(|s| s.post_step_counter).collect::<Vec<_>>(), vec![0, 1, 1, 2, 2]);
    assert_eq!(t.output, vec![1, 2, 5, 4]);
}

#[test]
fn t2t_policy_is_the_default_and_never_remasks() {
    let mut p = DecodeParams::preset(Mode::Q, EOS, MASK);
    p.block_length = 4;
    p.gen_length = 4;
    assert_eq!(p.edit_policy, EditPolicy::T2t);
    let doubt = vec![row(&[(1, 0.95)]), row(&[(2, 0.95)]), row(&[(5, 0.6), (3, 0.21)]), row(&[(4, 0.95)])];
    let t = decode(&p, vec![confident([1, 2, 3, 4]), doubt, confident([1, 2, 5, 4])]);
    assert_eq!((t.remask_count(), t.edit_count()), (0, 1));
}

#[test]
fn a_version_1_trace_loads_as_a_t2t_decode() {
    let t = decode(&params(RemaskStrategy::LowProb), vec![confident([1, 2, 3, 4])]);
    let mut v = serde_json::to_value(&t).unwrap();
    v["version"] = 1.into();
    let params = v["params"].as_object_mut().unwrap();
    for k in ["edit_policy", "remask_strategy", "remask_threshold", "max_remask_per_pos", "max_remask_ratio"]
    {
        params.remove(k);
    }
    for s in v["blocks"][0]["steps"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("remasks");
    }
    let old = Trace::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!((old.version, old.params.edit_policy), (1, EditPolicy::T2t));
    assert_eq!(old.blocks, t.blocks);
    let e = Trace::from_slice(br#"{"version": 3}"#).unwrap_err().to_string();
    assert!(e.contains("versions 1 to 2"), "{e}");
}

// ---- real models -----------------------------------------------------------------------

#[test]
fn fixture_model_remasks_at_least_once_under_t2m_low_prob() {
    let lm = common::fixture_model();
    let mut p = DecodeParams::preset(Mode::Q, lm.model.cfg.eos_token_id, lm.model.cfg.mask_token_id)
        .with_remask(RemaskStrategy::LowProb);
    p.block_length = 8;
    p.gen_length = 32;
    let t = Decoder::new(&lm.model, p, AttentionMode::Hf)
        .unwrap()
        .run(&[409, 191, 80, 91, 337], &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert!(t.remask_count() >= 1);
    assert_eq!(t.edit_count(), 0);
    for b in &t.blocks {
        for s in &b.steps {
            for r in &s.remasks {
                assert!(r.p_current < 0.5 && r.nth <= 5);
                assert_eq!(s.after[r.pos - b.start], lm.model.cfg.mask_token_id);
            }
        }
    }
    let why = (0..t.blocks.len())
        .flat_map(|bi| (0..t.blocks[bi].steps.len()).map(move |si| (bi, si)))
        .find_map(|(bi, si)| {
            let s = &t.blocks[bi].steps[si];
            let r = s.remasks.first()?;
            t.why(bi, si, r.pos - t.blocks[bi].start)
        })
        .unwrap();
    assert!(why.starts_with("remask ") && why.contains(" < 0.50"), "{why}");
}

#[test]
fn decode_cli_runs_t2m_on_the_fixture_and_reports_remasks() {
    let m = common::fixture_dir();
    let d = tempfile::tempdir().unwrap();
    let json = d.path().join("t.json");
    let out = Command::new(common::bin())
        .args(["decode", "--model", m.to_str().unwrap(), "--prompt-ids", "409,191,80,91,337"])
        .args(["--block-length", "8", "--gen-length", "32", "--attention", "hf"])
        .args(["--edit-policy", "t2m", "--remask-strategy", "low_prob", "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("T2M remasks") && stdout.contains("low_prob τ=0.50"), "{stdout}");
    let t = Trace::load(&json).unwrap();
    assert_eq!((t.version, t.params.edit_policy), (2, EditPolicy::T2m));
    assert!(t.remask_count() >= 1);
}

#[test]
fn remask_flags_out_of_range_are_rejected_with_the_flag_name() {
    let m = common::fixture_dir();
    let run = |extra: &[&str]| {
        let out = Command::new(common::bin())
            .args(["decode", "--model", m.to_str().unwrap(), "--prompt-ids", "5,6,7", "--block-length", "8"])
            .args(["--gen-length", "8", "--edit-policy", "t2m"])
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    assert!(run(&["--remask-threshold", "2"]).contains("--remask-threshold must be in [0, 1]"));
    assert!(run(&["--max-remask-ratio", "0"]).contains("--max-remask-ratio must be in (0, 1]"));
    assert!(run(&["--remask-strategy", "nope"]).contains("low_prob"));
}

#[test]
fn embedded_model_decodes_a_chat_prompt_under_t2m() {
    let out = Command::new(common::bin())
        .args(["decode", "--chat", "--prompt", "What is 47+38?", "--gen-length", "64"])
        .args(["--edit-policy", "t2m", "--remask-strategy", "low_prob"])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("T2M remasks"), "{stdout}");
}

//! Hand-built traces with known numbers, for tests and the benchmark. `small()` has every
//! kind of event (commit, fallback commit, edit, hold, keep, EOS, post-steps, both block end
//! reasons) in 3 blocks of 4; `small_t2m()` is the same prompt decoded under T2M (a remask and
//! its refill); `synthetic(n)` has `n` generated tokens with realistic shape.

use std::collections::BTreeMap;

use crate::decode::trace::{
    BlockEnd, BlockTrace, Commit, CommitKind, Decision, Edit, PositionRecord, Remask, StepTrace,
    TRACE_VERSION,
};
use crate::decode::{AttentionMode, DecodeParams, Mode, RemaskStrategy, Trace};

pub const MASK: u32 = 99;
pub const EOS: u32 = 98;

fn rec(argmax: u32, p: f32, p_current: f32, decision: Decision) -> PositionRecord {
    let rest = (1.0 - p).max(0.0);
    let second = if argmax == 7 { 1 } else { 7 };
    PositionRecord {
        argmax,
        p,
        p_current,
        top: vec![(argmax, p), (second, rest * 0.6), (5, rest * 0.3)],
        decision,
    }
}

struct StepSpec {
    before: Vec<u32>,
    positions: Vec<PositionRecord>,
    post: usize,
}

fn block(block: usize, b: usize, end: BlockEnd, steps: Vec<StepSpec>, forward: &mut usize) -> BlockTrace {
    let start = block * b;
    let mut out = Vec::new();
    for (i, s) in steps.into_iter().enumerate() {
        let mut after = s.before.clone();
        let mut commits = Vec::new();
        let mut edits = Vec::new();
        let mut remasks = Vec::new();
        for (o, r) in s.positions.iter().enumerate() {
            let pos = start + o;
            match r.decision {
                Decision::Commit | Decision::CommitFallback => {
                    after[o] = r.argmax;
                    let kind = if r.decision == Decision::Commit {
                        CommitKind::Threshold
                    } else {
                        CommitKind::Fallback
                    };
                    commits.push(Commit { pos, token: r.argmax, p: r.p, kind });
                }
                Decision::Edit => {
                    after[o] = r.argmax;
                    edits.push(Edit { pos, from: s.before[o], to: r.argmax, p: r.p });
                }
                Decision::Remask => {
                    after[o] = MASK;
                    let (from, p_current, argmax, p) = (s.before[o], r.p_current, r.argmax, r.p);
                    remasks.push(Remask {
                        pos,
                        from,
                        p_current,
                        argmax,
                        p,
                        p_prev: None,
                        score: p_current,
                        nth: 1,
                    });
                }
                _ => {}
            }
        }
        out.push(StepTrace {
            step: i,
            forward: *forward,
            post_step_counter: s.post,
            before: s.before,
            after,
            commits,
            edits,
            remasks,
            positions: s.positions,
            forward_ms: 1.0,
        });
        *forward += 1;
    }
    BlockTrace { block, start, window_end: start + b, ended_by: end, steps: out }
}

/// Prompt "The answer is" (3 tokens), block length 4, gen length 8, thresholds 0.7 / 0.5,
/// max_post_steps 2. Block 0 commits `7` (p 0.91); block 1 falls back to `2` (p 0.40),
/// commits `3` and `7`, then edits `7→1` (p 0.83, p(7) 0.12) while committing EOS; block 2
/// fills EOS and churns EOS→5→EOS until max-post-steps.
pub fn small() -> Trace {
    use Decision::*;
    let m = MASK;
    let mut params = DecodeParams::preset(Mode::Q, EOS, MASK);
    params.block_length = 4;
    params.gen_length = 8;
    params.max_post_steps = 2;
    params.record_top_k = 3;
    let mut f = 0;
    let b0 = block(
        0,
        4,
        BlockEnd::NoEditAfterFill,
        vec![
            StepSpec {
                before: vec![10, 11, 12, m],
                positions: vec![
                    rec(11, 0.5, 0.0, Prompt),
                    rec(12, 0.5, 0.0, Prompt),
                    rec(7, 0.5, 0.0, Prompt),
                    rec(7, 0.91, 0.0, Commit),
                ],
                post: 0,
            },
            StepSpec {
                before: vec![10, 11, 12, 7],
                positions: vec![
                    rec(11, 0.5, 0.0, Prompt),
                    rec(12, 0.5, 0.0, Prompt),
                    rec(7, 0.5, 0.0, Prompt),
                    rec(7, 0.95, 0.95, Keep),
                ],
                post: 1,
            },
        ],
        &mut f,
    );
    let b1 = block(
        1,
        4,
        BlockEnd::NoEditAfterFill,
        vec![
            StepSpec {
                before: vec![m, m, m, m],
                positions: vec![
                    rec(2, 0.40, 0.0, CommitFallback),
                    rec(3, 0.30, 0.0, Hold),
                    rec(7, 0.20, 0.0, Hold),
                    rec(EOS, 0.10, 0.0, Hold),
                ],
                post: 0,
            },
            StepSpec {
                before: vec![2, m, m, m],
                positions: vec![
                    rec(2, 0.60, 0.60, Keep),
                    rec(3, 0.85, 0.0, Commit),
                    rec(7, 0.75, 0.0, Commit),
                    rec(EOS, 0.50, 0.0, Hold),
                ],
                post: 0,
            },
            StepSpec {
                before: vec![2, 3, 7, m],
                positions: vec![
                    rec(2, 0.70, 0.70, Keep),
                    rec(3, 0.90, 0.90, Keep),
                    rec(1, 0.83, 0.12, Edit),
                    rec(EOS, 0.90, 0.0, Commit),
                ],
                post: 0,
            },
            StepSpec {
                before: vec![2, 3, 1, EOS],
                positions: vec![
                    rec(2, 0.72, 0.72, Keep),
                    rec(3, 0.93, 0.93, Keep),
                    rec(1, 0.88, 0.88, Keep),
                    rec(EOS, 0.97, 0.97, Keep),
                ],
                post: 1,
            },
        ],
        &mut f,
    );
    let b2 = block(
        2,
        4,
        BlockEnd::MaxPostSteps,
        vec![
            StepSpec {
                before: vec![m, m, m, m],
                positions: vec![
                    rec(EOS, 0.95, 0.0, Commit),
                    rec(EOS, 0.96, 0.0, Commit),
                    rec(EOS, 0.97, 0.0, Commit),
                    rec(EOS, 0.98, 0.0, Commit),
                ],
                post: 0,
            },
            StepSpec {
                before: vec![EOS, EOS, EOS, EOS],
                positions: vec![
                    rec(5, 0.60, 0.30, Edit),
                    rec(EOS, 0.96, 0.96, Keep),
                    rec(EOS, 0.97, 0.97, Keep),
                    rec(EOS, 0.98, 0.98, Keep),
                ],
                post: 1,
            },
            StepSpec {
                before: vec![5, EOS, EOS, EOS],
                positions: vec![
                    rec(EOS, 0.70, 0.25, Edit),
                    rec(EOS, 0.96, 0.96, Keep),
                    rec(EOS, 0.97, 0.97, Keep),
                    rec(EOS, 0.98, 0.98, Keep),
                ],
                post: 2,
            },
        ],
        &mut f,
    );
    let mut final_canvas = vec![10, 11, 12];
    final_canvas.extend(&b0.steps.last().unwrap().after[3..]);
    final_canvas.extend(&b1.steps.last().unwrap().after);
    final_canvas.extend(&b2.steps.last().unwrap().after);
    let token_text: BTreeMap<u32, String> = [
        (10, "The"),
        (11, " answer"),
        (12, " is"),
        (1, "1"),
        (2, "2"),
        (3, "3"),
        (5, "5"),
        (7, "7"),
        (EOS, "<|eos|>"),
    ]
    .into_iter()
    .map(|(i, s)| (i, s.to_string()))
    .collect();
    Trace {
        version: TRACE_VERSION,
        model: "sample".into(),
        adapter: None,
        params,
        attention: AttentionMode::BlockCausal,
        prompt: Some("The answer is".into()),
        prompt_ids: vec![10, 11, 12],
        output: vec![7, 2, 3, 1, EOS],
        forward_calls: f,
        stopped_early: false,
        cancelled: false,
        blocks: vec![b0, b1, b2],
        final_canvas,
        wall_ms: 9.0,
        token_text,
    }
}

/// `small()`'s prompt under T2M `low_prob` (τ 0.5): block 1 falls back to `2`, commits `3`
/// and `7`, then remasks `7` (p(7) 0.12, argmax `1` p 0.83) while committing EOS, refills `1`
/// (p 0.88) and settles; block 2 fills EOS and settles. Output `7 2 3 1 EOS`, as `small()`.
pub fn small_t2m() -> Trace {
    use Decision::*;
    let m = MASK;
    let mut t = small();
    t.params = t.params.clone().with_remask(RemaskStrategy::LowProb);
    let mut f = t.blocks[0].steps.len();
    let keep = |tok: u32, p: f32| rec(tok, p, p, Keep);
    let b1 = block(
        1,
        4,
        BlockEnd::NoEditAfterFill,
        vec![
            StepSpec {
                before: vec![m, m, m, m],
                positions: vec![
                    rec(2, 0.40, 0.0, CommitFallback),
                    rec(3, 0.30, 0.0, Hold),
                    rec(7, 0.20, 0.0, Hold),
                    rec(EOS, 0.10, 0.0, Hold),
                ],
                post: 0,
            },
            StepSpec {
                before: vec![2, m, m, m],
                positions: vec![
                    keep(2, 0.60),
                    rec(3, 0.85, 0.0, Commit),
                    rec(7, 0.75, 0.0, Commit),
                    rec(EOS, 0.50, 0.0, Hold),
                ],
                post: 0,
            },
            StepSpec {
                before: vec![2, 3, 7, m],
                positions: vec![
                    keep(2, 0.70),
                    keep(3, 0.90),
                    rec(1, 0.83, 0.12, Remask),
                    rec(EOS, 0.90, 0.0, Commit),
                ],
                post: 0,
            },
            StepSpec {
                before: vec![2, 3, m, EOS],
                positions: vec![keep(2, 0.72), keep(3, 0.93), rec(1, 0.88, 0.0, Commit), keep(EOS, 0.97)],
                post: 0,
            },
            StepSpec {
                before: vec![2, 3, 1, EOS],
                positions: vec![keep(2, 0.72), keep(3, 0.93), keep(1, 0.90), keep(EOS, 0.97)],
                post: 1,
            },
        ],
        &mut f,
    );
    let all_eos = |p: &[f32; 4], d: Decision| {
        p.iter().map(|&q| rec(EOS, q, if d == Keep { q } else { 0.0 }, d)).collect()
    };
    let b2 = block(
        2,
        4,
        BlockEnd::NoEditAfterFill,
        vec![
            StepSpec { before: vec![m; 4], positions: all_eos(&[0.95, 0.96, 0.97, 0.98], Commit), post: 0 },
            StepSpec { before: vec![EOS; 4], positions: all_eos(&[0.95, 0.96, 0.97, 0.98], Keep), post: 1 },
        ],
        &mut f,
    );
    t.final_canvas.truncate(4);
    t.final_canvas.extend(&b1.steps.last().unwrap().after);
    t.final_canvas.extend(&b2.steps.last().unwrap().after);
    t.blocks.truncate(1);
    t.blocks.extend([b1, b2]);
    t.forward_calls = f;
    t.model = "sample-t2m".into();
    t
}

/// A deterministic trace of `gen_tokens` generated tokens in blocks of 32 with top-5
/// alternatives everywhere (the shape of a real `--mode q` decode: a few fills per step, an
/// edit now and then, some post-steps). Vocabulary of 1000 words with token texts.
pub fn synthetic(gen_tokens: usize) -> Trace {
    const B: usize = 32;
    const MASK_ID: u32 = 1023;
    const EOS_ID: u32 = 1022;
    let mut rng: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut params = DecodeParams::preset(Mode::Q, EOS_ID, MASK_ID);
    params.block_length = B;
    params.gen_length = gen_tokens;
    let prompt_ids: Vec<u32> = (0..B as u32).map(|i| 100 + i).collect();
    let total = prompt_ids.len() + gen_tokens.div_ceil(B) * B;
    let mut canvas = vec![MASK_ID; total];
    canvas[..B].copy_from_slice(&prompt_ids);
    let mut blocks = Vec::new();
    let mut forward = 0;
    for bi in 1..total / B {
        let start = bi * B;
        let mut steps = Vec::new();
        let mut post = 0;
        loop {
            let before = canvas[start..start + B].to_vec();
            let masks: Vec<usize> = (0..B).filter(|&i| before[i] == MASK_ID).collect();
            if masks.is_empty() {
                post += 1;
            }
            let mut after = before.clone();
            let mut commits = Vec::new();
            let mut edits = Vec::new();
            let mut positions = Vec::with_capacity(B);
            let n_fill = if masks.is_empty() { 0 } else { 1 + (next() % 4) as usize };
            let fill: Vec<usize> = masks.iter().copied().take(n_fill).collect();
            for i in 0..B {
                let tok = (next() % 1000) as u32;
                let p = 0.3 + (next() % 700) as f32 / 1000.0;
                let top: Vec<(u32, f32)> =
                    (0..5).map(|k| ((tok + k * 7) % 1000, p / (1 + k) as f32)).collect();
                let pos = start + i;
                let decision = if fill.contains(&i) {
                    after[i] = tok;
                    let fb = fill.len() == 1 && p <= params.threshold;
                    commits.push(Commit {
                        pos,
                        token: tok,
                        p,
                        kind: if fb { CommitKind::Fallback } else { CommitKind::Threshold },
                    });
                    if fb { Decision::CommitFallback } else { Decision::Commit }
                } else if before[i] == MASK_ID {
                    Decision::Hold
                } else if next() % 40 == 0 {
                    after[i] = tok;
                    edits.push(Edit { pos, from: before[i], to: tok, p });
                    Decision::Edit
                } else {
                    Decision::Keep
                };
                positions.push(PositionRecord { argmax: tok, p, p_current: p * 0.9, top, decision });
            }
            canvas[start..start + B].copy_from_slice(&after);
            let no_edit = edits.is_empty();
            steps.push(StepTrace {
                step: steps.len(),
                forward,
                post_step_counter: post,
                before,
                after,
                commits,
                edits,
                remasks: Vec::new(),
                positions,
                forward_ms: 2.0,
            });
            forward += 1;
            if masks.is_empty() && (no_edit || post >= 3) {
                break;
            }
        }
        blocks.push(BlockTrace {
            block: bi,
            start,
            window_end: start + B,
            ended_by: BlockEnd::NoEditAfterFill,
            steps,
        });
    }
    let output = canvas[B..B + gen_tokens].to_vec();
    let token_text = (0..1000u32).map(|i| (i, format!(" w{i}"))).collect();
    Trace {
        version: TRACE_VERSION,
        model: "synthetic".into(),
        adapter: None,
        params,
        attention: AttentionMode::BlockCausal,
        prompt: None,
        prompt_ids,
        output,
        forward_calls: forward,
        stopped_early: false,
        cancelled: false,
        blocks,
        final_canvas: canvas,
        wall_ms: 0.0,
        token_text,
    }
}

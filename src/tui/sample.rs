//! Hand-built traces with known numbers, for tests and the benchmark. `small()` has every
//! kind of event (commit, fallback commit, edit, hold, keep, EOS, post-steps, both block end
//! reasons) in 3 blocks of 4; `small_t2m()` is the same prompt decoded under T2M (a remask and
//! its refill). Test scaffolding: compiled only for tests (the `testutil` feature).

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

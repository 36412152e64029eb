//! A synthetic trace of any size with a realistic shape, for `draftscope bench-tui` (the
//! workbench's open and frame-time benchmark).

use crate::decode::trace::{
    BlockEnd, BlockTrace, Commit, CommitKind, Decision, Edit, PositionRecord, StepTrace, TRACE_VERSION,
};
use crate::decode::{AttentionMode, DecodeParams, Mode, Trace};

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

//! Projections of a [`Trace`] that the panels draw: a navigation index over every step, and
//! the per-position state of one block at one step. Pure functions of the trace, built once
//! (or extended step by step during a live decode) so a frame never scans the whole trace.

use crate::decode::Trace;
use crate::decode::trace::{BlockEnd, CommitKind, Decision, StepTrace};

/// Where the cursor can stand: one step of one block (indices into `trace.blocks` and its
/// `steps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepRef {
    pub block: usize,
    pub step: usize,
}

/// Every step of a trace in decode order, with the steps worth jumping to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceIndex {
    /// Flat step list, in decode order.
    pub steps: Vec<StepRef>,
    /// Flat index of each block's first step (`steps.len()` for a block with no steps).
    pub block_first: Vec<usize>,
    /// Flat indices of steps that changed a committed token: a T2T edit or a T2M remask.
    pub edit_steps: Vec<usize>,
    /// Flat indices of steps with a fallback commit.
    pub fallback_steps: Vec<usize>,
    pub edits: usize,
    pub remasks: usize,
    pub commits: usize,
    pub fallbacks: usize,
}

impl TraceIndex {
    pub fn build(trace: &Trace) -> Self {
        let mut ix = Self::default();
        for (bi, b) in trace.blocks.iter().enumerate() {
            ix.block_first.push(ix.steps.len());
            for s in &b.steps {
                ix.push_step(bi, s);
            }
        }
        ix
    }

    /// Appends one step (live decoding). A step of a block not yet indexed opens the block.
    pub fn push_step(&mut self, block: usize, s: &StepTrace) {
        while self.block_first.len() <= block {
            self.block_first.push(self.steps.len());
        }
        let flat = self.steps.len();
        self.steps.push(StepRef { block, step: s.step });
        if !s.edits.is_empty() || !s.remasks.is_empty() {
            self.edit_steps.push(flat);
        }
        let fb = s.commits.iter().filter(|c| c.kind == CommitKind::Fallback).count();
        if fb > 0 {
            self.fallback_steps.push(flat);
        }
        self.edits += s.edits.len();
        self.remasks += s.remasks.len();
        self.commits += s.commits.len();
        self.fallbacks += fb;
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Flat index of a step reference (clamped into the trace).
    pub fn flat_of(&self, r: StepRef) -> usize {
        let first = self.block_first.get(r.block).copied().unwrap_or(self.steps.len());
        (first + r.step).min(self.steps.len().saturating_sub(1))
    }

    /// The first entry of `list` after (or before, `forward = false`) `flat`.
    pub fn next_in(list: &[usize], flat: usize, forward: bool) -> Option<usize> {
        if forward {
            let i = list.partition_point(|&x| x <= flat);
            list.get(i).copied()
        } else {
            let i = list.partition_point(|&x| x < flat);
            i.checked_sub(1).map(|i| list[i])
        }
    }
}

/// What happened to one block position at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellKind {
    Prompt,
    /// Still a mask after the step (`p` is the best candidate's probability).
    Mask,
    /// Committed by M2T this step.
    Commit {
        fallback: bool,
    },
    /// Rewritten by T2T this step.
    Edit {
        from: u32,
    },
    /// Reset to the mask by T2M this step (`p` is p(from) at this step).
    Remask {
        from: u32,
    },
    /// A token committed earlier, unchanged by this step.
    Keep,
}

/// One block position at one step, ready to draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenCell {
    /// Absolute canvas position.
    pub pos: usize,
    pub offset: usize,
    /// Token after the step.
    pub token: u32,
    pub kind: CellKind,
    /// Confidence of the token shown: p(new) for commits and edits, p(current) for kept
    /// tokens, p(best candidate) for masks; `None` when the step recorded no numbers.
    pub p: Option<f32>,
    pub eos: bool,
}

/// The block's positions after step `r`, classified for drawing.
pub fn block_cells(trace: &Trace, r: StepRef) -> Vec<TokenCell> {
    let Some(b) = trace.blocks.get(r.block) else { return Vec::new() };
    let Some(s) = b.steps.get(r.step) else { return Vec::new() };
    let prompt_len = trace.prompt_ids.len();
    let mask = trace.params.mask_id;
    (0..s.after.len())
        .map(|i| {
            let pos = b.start + i;
            let rec = s.positions.get(i);
            let token = s.after[i];
            let commit = s.commits.iter().find(|c| c.pos == pos);
            let edit = s.edits.iter().find(|e| e.pos == pos);
            let remask = s.remasks.iter().find(|r| r.pos == pos);
            let (kind, p) = if pos < prompt_len || rec.is_some_and(|r| r.decision == Decision::Prompt) {
                (CellKind::Prompt, None)
            } else if let Some(c) = commit {
                (CellKind::Commit { fallback: c.kind == CommitKind::Fallback }, Some(c.p))
            } else if let Some(e) = edit {
                (CellKind::Edit { from: e.from }, Some(e.p))
            } else if let Some(r) = remask {
                (CellKind::Remask { from: r.from }, Some(r.p_current))
            } else if token == mask {
                (CellKind::Mask, rec.map(|r| r.p))
            } else {
                (CellKind::Keep, rec.map(|r| r.p_current))
            };
            TokenCell { pos, offset: i, token, kind, p, eos: token == trace.params.eos_id }
        })
        .collect()
}

/// A block's end reason as a short label; `live` marks the block a running decode is in.
pub fn end_label(end: BlockEnd, live: bool) -> &'static str {
    if live {
        return "running…";
    }
    match end {
        BlockEnd::NoEditAfterFill => "done",
        BlockEnd::MaxPostSteps => "max-post-steps",
        BlockEnd::Cancelled => "cancelled",
    }
}

/// Display form of a token's text: whitespace made visible, control characters escaped.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            ' ' => out.push('␣'),
            '\n' => out.push('⏎'),
            '\t' => out.push('⇥'),
            c if c.is_control() => out.push('�'),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        out.push('∅');
    }
    out
}

/// Display text of a token in a trace (EOS shown as `EOS`).
pub fn token_label(trace: &Trace, id: u32) -> String {
    if id == trace.params.eos_id {
        return "EOS".into();
    }
    visible(&trace.text_of(id))
}

/// Tokens generated so far (non-mask positions of the generated span of the final canvas).
pub fn generated_so_far(trace: &Trace) -> usize {
    if !trace.output.is_empty() {
        return trace.output.len();
    }
    let p0 = trace.prompt_ids.len();
    let end = (p0 + trace.params.gen_length).min(trace.final_canvas.len());
    trace.final_canvas.get(p0..end).map_or(0, |g| g.iter().filter(|&&t| t != trace.params.mask_id).count())
}

/// Whether two traces differ at step `r` of block `r.block` (block states after the step,
/// step-aligned; a missing step compares with the block's last step).
pub fn step_after(trace: &Trace, r: StepRef) -> Option<(&[u32], bool)> {
    let b = trace.blocks.get(r.block)?;
    let last = b.steps.len().checked_sub(1)?;
    let s = &b.steps[r.step.min(last)];
    Some((&s.after, r.step > last))
}

/// Offsets in the block whose tokens differ between `a` and `b` after the aligned step.
pub fn diff_offsets(a: &Trace, b: &Trace, r: StepRef) -> Vec<bool> {
    match (step_after(a, r), step_after(b, r)) {
        (Some((x, _)), Some((y, _))) => (0..x.len().max(y.len())).map(|i| x.get(i) != y.get(i)).collect(),
        (Some((x, _)), None) => vec![true; x.len()],
        (None, Some((y, _))) => vec![true; y.len()],
        (None, None) => Vec::new(),
    }
}

/// The first step (flat index in `a`) where the two traces' block states differ.
pub fn first_difference(a: &Trace, ia: &TraceIndex, b: &Trace) -> Option<usize> {
    ia.steps.iter().position(|&r| diff_offsets(a, b, r).iter().any(|&d| d))
}

/// Final generated positions that differ between two traces (over the longer span).
pub fn final_differences(a: &Trace, b: &Trace) -> usize {
    let (pa, pb) = (a.prompt_ids.len(), b.prompt_ids.len());
    let ga = a.final_canvas.get(pa..).unwrap_or(&[]);
    let gb = b.final_canvas.get(pb..).unwrap_or(&[]);
    (0..ga.len().max(gb.len())).filter(|&i| ga.get(i) != gb.get(i)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::sample;

    #[test]
    fn index_lists_steps_in_decode_order_with_edit_and_fallback_steps() {
        let ix = TraceIndex::build(&sample::small());
        assert_eq!(ix.len(), 9);
        assert_eq!(ix.block_first, vec![0, 2, 6]);
        assert_eq!(ix.steps[4], StepRef { block: 1, step: 2 });
        assert_eq!(ix.edit_steps, vec![4, 7, 8]);
        assert_eq!(ix.fallback_steps, vec![2]);
        assert_eq!((ix.edits, ix.commits, ix.fallbacks), (3, 9, 1));
    }

    #[test]
    fn index_built_step_by_step_equals_index_built_at_once() {
        let t = sample::small();
        let mut ix = TraceIndex::default();
        for (bi, b) in t.blocks.iter().enumerate() {
            for s in &b.steps {
                ix.push_step(bi, s);
            }
        }
        assert_eq!(ix, TraceIndex::build(&t));
    }

    #[test]
    fn next_in_finds_strictly_later_or_earlier_entries() {
        let l = [2, 5, 9];
        assert_eq!(TraceIndex::next_in(&l, 2, true), Some(5));
        assert_eq!(TraceIndex::next_in(&l, 0, true), Some(2));
        assert_eq!(TraceIndex::next_in(&l, 9, true), None);
        assert_eq!(TraceIndex::next_in(&l, 5, false), Some(2));
        assert_eq!(TraceIndex::next_in(&l, 2, false), None);
    }

    #[test]
    fn block_cells_classify_every_position() {
        let t = sample::small();
        let kinds: Vec<CellKind> =
            block_cells(&t, StepRef { block: 1, step: 2 }).iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![
                CellKind::Keep,
                CellKind::Keep,
                CellKind::Edit { from: 7 },
                CellKind::Commit { fallback: false }
            ]
        );
        let c0 = block_cells(&t, StepRef { block: 0, step: 0 });
        assert_eq!(c0[0].kind, CellKind::Prompt);
        let c1 = block_cells(&t, StepRef { block: 1, step: 0 });
        assert_eq!(c1[0].kind, CellKind::Commit { fallback: true });
        assert_eq!((c1[1].kind, c1[1].p), (CellKind::Mask, Some(0.30)));
        assert!(block_cells(&t, StepRef { block: 1, step: 2 })[3].eos);
    }

    #[test]
    fn visible_shows_whitespace() {
        assert_eq!(visible(" a\n\t"), "␣a⏎⇥");
        assert_eq!(visible(""), "∅");
    }

    #[test]
    fn generated_so_far_counts_filled_positions_of_a_live_trace() {
        let mut t = sample::small();
        t.output.clear();
        assert_eq!(generated_so_far(&t), 8, "the whole generated span is filled");
        t.final_canvas[5] = sample::MASK;
        assert_eq!(generated_so_far(&t), 7);
    }
}

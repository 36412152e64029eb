//! What one step decides from the block's probabilities (DESIGN.md §3): M2T commits, then
//! either T2T edits or T2M remasks. Pure functions of the numbers, so the rules are tested on
//! hand-built probability rows without a model.

use super::params::{DecodeParams, EditPolicy, RemaskStrategy};
use super::trace::{CommitKind, Remask};

/// What the step knows about one block position after the forward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The candidate (argmax at temperature 0) and its probability.
    pub token: u32,
    pub p: f32,
    /// Probability of the token held before the step (0 for a mask).
    pub p_current: f32,
}

/// The step's decisions, one slot per block offset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub commit: Vec<Option<CommitKind>>,
    pub edit: Vec<bool>,
    pub remask: Vec<Option<Remask>>,
}

impl Plan {
    pub fn remasked(&self) -> usize {
        self.remask.iter().flatten().count()
    }
}

/// T2M memory across the steps of one block: remasks per position (a position belongs to one
/// block, so this is "per decode") and each position's probability of its token at the
/// previous step (for `logit_diff`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemaskState {
    counts: Vec<usize>,
    prev: Vec<Option<f32>>,
}

impl RemaskState {
    pub fn new(block_length: usize) -> Self {
        Self { counts: vec![0; block_length], prev: vec![None; block_length] }
    }

    /// Remasks of the position at `offset` so far.
    pub fn count(&self, offset: usize) -> usize {
        self.counts.get(offset).copied().unwrap_or(0)
    }
}

/// The block's decisions for one step. `before` is the block at step start, `first_gen` the
/// first offset that is not prompt; `state` carries T2M memory from step to step.
pub fn plan_step(
    p: &DecodeParams,
    block_start: usize,
    first_gen: usize,
    before: &[u32],
    rows: &[Row],
    state: &mut RemaskState,
) -> Plan {
    let b = before.len();
    let active: Vec<bool> = before.iter().map(|&t| t == p.mask_id).collect();
    let editable: Vec<bool> = (0..b).map(|i| !active[i] && i >= first_gen).collect();
    let commit = m2t(p, &active, rows);
    let mut plan = Plan { commit, edit: vec![false; b], remask: vec![None; b] };
    match p.edit_policy {
        EditPolicy::T2t => plan.edit = t2t(p, before, &editable, rows),
        EditPolicy::T2m => plan.remask = t2m(p, block_start, before, &editable, rows, state),
    }
    remember(&mut state.prev, &plan, &active, rows);
    plan
}

/// M2T: every mask above the threshold, else the most confident `num_to_transfer`.
fn m2t(p: &DecodeParams, active: &[bool], rows: &[Row]) -> Vec<Option<CommitKind>> {
    let b = active.len();
    let mut commit = vec![None; b];
    if !active.iter().any(|&a| a) {
        return commit;
    }
    let high: Vec<usize> = (0..b).filter(|&i| active[i] && rows[i].p > p.threshold).collect();
    if high.len() >= p.num_to_transfer {
        for i in high {
            commit[i] = Some(CommitKind::Threshold);
        }
    } else {
        let mut masks: Vec<usize> = (0..b).filter(|&i| active[i]).collect();
        // Most confident first; ties keep the lower position (as torch.topk on CPU).
        masks.sort_by(|&x, &y| rows[y].p.total_cmp(&rows[x].p).then(x.cmp(&y)));
        for &i in masks.iter().take(p.num_to_transfer) {
            commit[i] = Some(CommitKind::Fallback);
        }
    }
    commit
}

/// T2T: an editable position whose argmax differs with p above the editing threshold.
fn t2t(p: &DecodeParams, before: &[u32], editable: &[bool], rows: &[Row]) -> Vec<bool> {
    (0..before.len())
        .map(|i| editable[i] && rows[i].token != before[i] && rows[i].p > p.editing_threshold)
        .collect()
}

/// T2M: the strategy's candidates, then the per-position cap, then the per-step cap of
/// `max(1, ⌊ratio × editable⌋)` keeping the lowest scores (the reference's `topk(largest=False)`;
/// ties keep the lower position).
fn t2m(
    p: &DecodeParams,
    block_start: usize,
    before: &[u32],
    editable: &[bool],
    rows: &[Row],
    state: &mut RemaskState,
) -> Vec<Option<Remask>> {
    let b = before.len();
    let mut cands: Vec<Remask> = (0..b)
        .filter(|&i| editable[i] && state.count(i) < p.max_remask_per_pos)
        .filter_map(|i| candidate(p, before[i], &rows[i], state.prev[i]).map(|c| (i, c)))
        .map(|(i, (score, p_prev))| Remask {
            pos: block_start + i,
            from: before[i],
            p_current: rows[i].p_current,
            argmax: rows[i].token,
            p: rows[i].p,
            p_prev,
            score,
            nth: state.count(i) + 1,
        })
        .collect();
    let n_editable = editable.iter().filter(|&&e| e).count();
    let allowed = ((n_editable as f64 * p.max_remask_ratio as f64).floor() as usize).max(1);
    cands.sort_by(|x, y| x.score.total_cmp(&y.score).then(x.pos.cmp(&y.pos)));
    cands.truncate(allowed);
    let mut out = vec![None; b];
    for r in cands {
        let i = r.pos - block_start;
        state.counts[i] += 1;
        out[i] = Some(r);
    }
    out
}

/// Whether the strategy picks a position, with its score (lower = remasked first) and, for
/// `logit_diff`, the previous probability it compared against.
fn candidate(p: &DecodeParams, current: u32, row: &Row, prev: Option<f32>) -> Option<(f32, Option<f32>)> {
    let tau = p.remask_threshold;
    match p.remask_strategy {
        RemaskStrategy::LowProb => (row.p_current < tau).then_some((row.p_current, None)),
        RemaskStrategy::T2tRemask => (row.token != current && row.p > tau).then_some((1.0 - row.p, None)),
        RemaskStrategy::LogitDiff => {
            let before = prev?;
            let diff = (row.p_current - before).abs();
            (diff > tau).then_some((-diff, Some(before)))
        }
    }
}

/// Each position's probability (this step) of the token it holds after the step: the commit's
/// p for a fill, p(current) for a kept token, nothing for a mask (the next step's `p_prev`).
fn remember(prev: &mut [Option<f32>], plan: &Plan, active: &[bool], rows: &[Row]) {
    for (i, slot) in prev.iter_mut().enumerate() {
        *slot = if plan.commit[i].is_some() {
            Some(rows[i].p)
        } else if active[i] || plan.remask[i].is_some() {
            None
        } else if plan.edit[i] {
            Some(rows[i].p)
        } else {
            Some(rows[i].p_current)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Mode;

    const M: u32 = 99;

    fn params(strategy: RemaskStrategy) -> DecodeParams {
        DecodeParams::preset(Mode::Q, 98, M).with_remask(strategy)
    }

    fn row(token: u32, p: f32, p_current: f32) -> Row {
        Row { token, p, p_current }
    }

    /// Offsets remasked by one step on `before` with `rows`.
    fn remasked(p: &DecodeParams, before: &[u32], rows: &[Row], st: &mut RemaskState) -> Vec<usize> {
        let plan = plan_step(p, 0, 0, before, rows, st);
        (0..before.len()).filter(|&i| plan.remask[i].is_some()).collect()
    }

    #[test]
    fn low_prob_remasks_where_the_current_token_fell_below_tau() {
        let p = params(RemaskStrategy::LowProb);
        let mut st = RemaskState::new(4);
        let rows = [row(1, 0.9, 0.9), row(5, 0.6, 0.21), row(3, 0.8, 0.5), row(4, 0.9, 0.0)];
        let plan = plan_step(&p, 10, 0, &[1, 2, 3, M], &rows, &mut st);
        let r = plan.remask[1].clone().unwrap();
        assert_eq!((r.pos, r.from, r.p_current, r.score, r.nth), (11, 2, 0.21, 0.21, 1));
        // 0.5 is not below 0.5; the mask is filled by M2T, not remasked.
        assert_eq!((plan.remask[2].is_some(), plan.remask[3].is_some()), (false, false));
        assert_eq!(plan.commit[3], Some(CommitKind::Threshold));
        assert!(plan.edit.iter().all(|&e| !e));
    }

    #[test]
    fn t2t_remask_uses_the_t2t_condition_and_scores_one_minus_p() {
        let p = params(RemaskStrategy::T2tRemask);
        let mut st = RemaskState::new(4);
        // Same token high p: no; different token p 0.95: yes; different token p 0.9: not > τ.
        let rows = [row(1, 0.99, 0.99), row(7, 0.95, 0.01), row(8, 0.9, 0.05), row(1, 0.2, 0.0)];
        let plan = plan_step(&p, 0, 0, &[1, 2, 3, 4], &rows, &mut st);
        assert_eq!(plan.remasked(), 1);
        let r = plan.remask[1].as_ref().unwrap();
        assert!((r.score - 0.05).abs() < 1e-6);
        assert_eq!((r.argmax, r.p), (7, 0.95));
    }

    #[test]
    fn logit_diff_needs_a_previous_step_and_compares_the_same_token() {
        let p = params(RemaskStrategy::LogitDiff);
        let mut st = RemaskState::new(2);
        // Step 0: offset 0 committed at p 0.92 (its previous value), offset 1 a kept token with
        // no previous step: never remasked on the first step.
        let plan = plan_step(&p, 0, 0, &[M, 5], &[row(4, 0.92, 0.0), row(5, 0.9, 0.1)], &mut st);
        assert_eq!((plan.commit[0], plan.remasked()), (Some(CommitKind::Threshold), 0));
        // Step 1: p(4) fell 0.92 → 0.50 (|Δ| 0.42 > 0.3); p(5) 0.1 → 0.3 (0.2, no).
        let plan = plan_step(&p, 0, 0, &[4, 5], &[row(4, 0.5, 0.5), row(5, 0.3, 0.3)], &mut st);
        let r = plan.remask[0].as_ref().unwrap();
        assert_eq!(r.p_prev, Some(0.92));
        assert!((r.score + 0.42).abs() < 1e-6);
        assert!(plan.remask[1].is_none());
        // Step 2: offset 0 is a mask again (no previous value until it is refilled).
        assert_eq!(st.prev[0], None);
        assert_eq!(st.prev[1], Some(0.3));
    }

    #[test]
    fn a_rising_probability_also_counts_for_logit_diff() {
        let p = params(RemaskStrategy::LogitDiff);
        let mut st = RemaskState::new(1);
        plan_step(&p, 0, 0, &[5], &[row(5, 0.2, 0.2)], &mut st);
        assert_eq!(remasked(&p, &[5], &[row(5, 0.6, 0.6)], &mut st), vec![0]);
    }

    #[test]
    fn prompt_positions_and_masks_are_never_remasked() {
        let p = params(RemaskStrategy::LowProb);
        let mut st = RemaskState::new(3);
        let plan = plan_step(
            &p,
            0,
            1,
            &[7, 8, M],
            &[row(1, 0.9, 0.01), row(1, 0.9, 0.3), row(1, 0.1, 0.0)],
            &mut st,
        );
        assert_eq!(plan.remask.iter().map(Option::is_some).collect::<Vec<_>>(), vec![false, true, false]);
        // The mask is still filled (fallback), the block moves on.
        assert_eq!(plan.commit[2], Some(CommitKind::Fallback));
    }

    #[test]
    fn a_position_is_remasked_at_most_max_remask_per_pos_times() {
        let mut p = params(RemaskStrategy::LowProb);
        p.max_remask_per_pos = 2;
        let mut st = RemaskState::new(1);
        let low = [row(1, 0.9, 0.1)];
        let mut remasks = 0;
        for _ in 0..5 {
            // The position is refilled with the same token, the model still doubts it.
            remasks += remasked(&p, &[1], &low, &mut st).len();
            plan_step(&p, 0, 0, &[M], &[row(1, 0.9, 0.0)], &mut st);
        }
        assert_eq!((remasks, st.count(0)), (2, 2));
        p.max_remask_per_pos = 0;
        assert!(remasked(&p, &[1], &low, &mut RemaskState::new(1)).is_empty());
    }

    #[test]
    fn the_step_cap_keeps_the_lowest_scores() {
        let p = params(RemaskStrategy::LowProb);
        // 8 editable positions × 0.25 = 2 remasks, the two least likely tokens.
        let pc = [0.4, 0.1, 0.3, 0.45, 0.05, 0.2, 0.9, 0.9];
        let rows: Vec<Row> = pc.iter().map(|&q| row(1, 0.9, q)).collect();
        assert_eq!(remasked(&p, &[2; 8], &rows, &mut RemaskState::new(8)), vec![1, 4]);
    }

    #[test]
    fn the_step_cap_allows_at_least_one_remask_and_breaks_ties_by_position() {
        // 3 editable × 0.25 = 0.75 → 0, raised to 1 as the reference's max(1, …).
        let p = params(RemaskStrategy::LowProb);
        let rows = [row(1, 0.9, 0.2), row(1, 0.9, 0.2), row(1, 0.9, 0.9)];
        assert_eq!(remasked(&p, &[2, 2, 2], &rows, &mut RemaskState::new(3)), vec![0]);
    }

    #[test]
    fn the_step_cap_counts_only_editable_positions() {
        let mut p = params(RemaskStrategy::LowProb);
        p.max_remask_ratio = 0.5;
        // 4 editable (2 masks, 2 prompt excluded): 2 allowed though all 4 qualify.
        let before = [7, 7, 2, 2, 2, 2, M, M];
        let rows: Vec<Row> = (0..8).map(|i| row(1, 0.1, 0.1 + i as f32 * 0.01)).collect();
        let plan = plan_step(&p, 0, 2, &before, &rows, &mut RemaskState::new(8));
        assert_eq!(
            plan.remask.iter().map(Option::is_some).collect::<Vec<_>>(),
            [false, false, true, true, false, false, false, false]
        );
    }

    #[test]
    fn t2t_policy_edits_and_never_remasks() {
        let p = DecodeParams::preset(Mode::Q, 98, M);
        let mut st = RemaskState::new(2);
        let plan = plan_step(&p, 0, 0, &[1, 2], &[row(3, 0.6, 0.1), row(4, 0.5, 0.1)], &mut st);
        assert_eq!((plan.edit.clone(), plan.remasked()), (vec![true, false], 0));
    }
}

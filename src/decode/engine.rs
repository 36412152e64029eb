//! The block-diffusion step loop of LLaDA2.1's official `generate()` (DESIGN.md §3), recording
//! every decision as a [`Trace`]. Knows nothing of the TUI: progress goes to a callback.

use std::ops::ControlFlow;
use std::time::Instant;

use anyhow::{Result, bail};
use candle_core::Tensor;
use rand::{Rng, SeedableRng};

use super::params::{AttentionMode, DecodeParams};
use super::policy::{Plan, RemaskState, Row, plan_step};
use super::trace::{
    BlockEnd, Commit, CommitKind, Decision, DecodeEvent, Edit, PositionRecord, StepTrace, Trace,
};
use crate::model::{Collect, KvCache, Llada2, MaskKind};

/// Per-row result of turning logits into a candidate token.
struct RowPick {
    token: u32,
    p: f32,
    dist: Dist,
}

/// The distribution a pick came from. At temperature 0 it is the row's softmax, kept as
/// (max, Σexp) so recording costs one top-k scan instead of a vocabulary-sized vector.
enum Dist {
    Softmax { max: f32, sum: f64 },
    Probs(Vec<f32>),
}

pub struct Decoder<'m> {
    model: &'m Llada2,
    params: DecodeParams,
    attention: AttentionMode,
}

impl<'m> Decoder<'m> {
    pub fn new(model: &'m Llada2, params: DecodeParams, attention: AttentionMode) -> Result<Self> {
        params.validate(model.cfg.vocab_size)?;
        Ok(Self { model, params, attention })
    }

    pub fn params(&self) -> &DecodeParams {
        &self.params
    }

    /// Runs the whole decode. The callback may stop it (`ControlFlow::Break`); the trace then
    /// ends with a `cancelled` block.
    pub fn run(
        &self,
        prompt_ids: &[u32],
        on_event: &mut dyn FnMut(DecodeEvent<'_>) -> ControlFlow<()>,
    ) -> Result<Trace> {
        check_run(&self.params, prompt_ids, self.limits())?;
        self.run_from(Trace::start(self.params.clone(), self.attention, prompt_ids), on_event)
    }

    /// What the model allows.
    pub fn limits(&self) -> Limits {
        let cfg = &self.model.cfg;
        Limits { vocab_size: cfg.vocab_size, max_positions: cfg.max_position_embeddings }
    }

    /// Runs the decode onto `head` (from [`Trace::start`], with this decoder's parameters;
    /// model, prompt text and token texts may already be filled in).
    pub fn run_from(
        &self,
        head: Trace,
        on_event: &mut dyn FnMut(DecodeEvent<'_>) -> ControlFlow<()>,
    ) -> Result<Trace> {
        let mut cache = KvCache::default();
        let mut forward = |window: &[u32], start: usize| -> Result<Vec<Vec<f32>>> {
            let logits = self.block_logits(window, start, &mut cache)?;
            Ok(logits.to_dtype(candle_core::DType::F32)?.squeeze(0)?.to_vec2::<f32>()?)
        };
        let limits = self.limits();
        let mut head = head;
        head.attention = self.attention;
        run_loop_from(head, limits, &mut forward, on_event)
    }

    /// Logits `[1, B, vocab]` of the current block for the window `canvas[..window_end]`.
    fn block_logits(&self, window: &[u32], start: usize, cache: &mut KvCache) -> Result<Tensor> {
        let b = self.params.block_length;
        let dev = self.model.device();
        let none = Collect::default();
        match self.attention {
            AttentionMode::Hf | AttentionMode::BlockCausalNoCache => {
                let mask = if self.attention == AttentionMode::Hf {
                    MaskKind::GenerateBias { block_length: b }
                } else {
                    MaskKind::BlockCausal { block_length: b }
                };
                let ids = Tensor::new(window, dev)?.unsqueeze(0)?;
                let bias = mask.bias(0, window.len(), window.len(), dev)?;
                let out = self.model.forward(&ids, 0, bias.as_ref(), None, start, &none)?;
                Ok(out.logits.expect("logits rows were asked"))
            }
            AttentionMode::BlockCausal => {
                if cache.len() < start {
                    // Completed blocks (and whole prompt blocks) enter the cache once.
                    let from = cache.len();
                    let ids = Tensor::new(&window[from..start], dev)?.unsqueeze(0)?;
                    let bias =
                        MaskKind::BlockCausal { block_length: b }.bias(from, start - from, start, dev)?;
                    let out =
                        self.model.forward(&ids, from, bias.as_ref(), Some(cache), start - from, &none)?;
                    cache.extend(out.new_kv)?;
                }
                let ids = Tensor::new(&window[start..], dev)?.unsqueeze(0)?;
                let out = self.model.forward(&ids, start, None, Some(cache), 0, &none)?;
                Ok(out.logits.expect("logits rows were asked"))
            }
        }
    }
}

/// What the model allows: token ids below `vocab_size`, at most `max_positions` positions.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub vocab_size: usize,
    pub max_positions: usize,
}

/// A source of block logits: `(window, start)` → one row per position of `window[start..]`.
pub type BlockForward<'a> = dyn FnMut(&[u32], usize) -> Result<Vec<Vec<f32>>> + 'a;

/// The block-diffusion step loop over any source of block logits: `forward(window, start)`
/// returns one logits row per position of the block `window[start..]` (the model, or
/// hand-built rows in tests). The trace's attention field is left at its default.
pub fn run_loop(
    p: &DecodeParams,
    limits: Limits,
    prompt_ids: &[u32],
    forward: &mut BlockForward<'_>,
    on_event: &mut dyn FnMut(DecodeEvent<'_>) -> ControlFlow<()>,
) -> Result<Trace> {
    check_run(p, prompt_ids, limits)?;
    run_loop_from(Trace::start(p.clone(), AttentionMode::default(), prompt_ids), limits, forward, on_event)
}

/// [`run_loop`] onto a trace head: the decode's parameters and prompt are the head's, and
/// every step and block end goes through the trace builder (and to `on_event`).
pub fn run_loop_from(
    mut trace: Trace,
    limits: Limits,
    forward: &mut BlockForward<'_>,
    on_event: &mut dyn FnMut(DecodeEvent<'_>) -> ControlFlow<()>,
) -> Result<Trace> {
    let p = &trace.params.clone();
    let prompt_ids = &trace.prompt_ids.clone();
    check_run(p, prompt_ids, limits)?;
    let b = p.block_length;
    let prompt_len = prompt_ids.len();
    let num_blocks = (prompt_len + p.gen_length).div_ceil(b);
    let total = num_blocks * b;
    let t0 = Instant::now();
    let mut canvas = vec![p.mask_id; total];
    canvas[..prompt_len].copy_from_slice(prompt_ids);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.seed);
    let mut forward_calls = 0usize;
    let mut stopped_early = false;
    let mut cancelled = false;
    // The head may come from a caller: it must be this decode's.
    trace.final_canvas.clone_from(&canvas);
    trace.blocks.clear();
    let _ = on_event(DecodeEvent::Start { trace: &trace });

    'blocks: for block in prompt_len / b..num_blocks {
        let start = block * b;
        let window_end = start + b;
        let first_gen = prompt_len.saturating_sub(start).min(b);
        let mut remask_state = RemaskState::new(b);
        let mut post_steps = 0usize;
        let mut steps = 0usize;
        // Ends: every step with a mask commits one (M2T), masks come back only through
        // remasks (at most max_remask_per_pos per position), and every step without a mask
        // counts a post-step; so a block takes at most B·(1 + max_remask_per_pos) +
        // max_post_steps + 1 forwards.
        let ended_by;
        loop {
            let before = canvas[start..window_end].to_vec();
            let active: Vec<bool> = before.iter().map(|&t| t == p.mask_id).collect();
            let any_mask = active.iter().any(|&a| a);
            if !any_mask {
                post_steps += 1;
            }
            if post_steps > p.max_post_steps {
                ended_by = BlockEnd::MaxPostSteps;
                break;
            }
            let tf = Instant::now();
            let rows = forward(&canvas[..window_end], start)?;
            forward_calls += 1;
            if rows.len() != b || rows.iter().any(|r| r.len() < limits.vocab_size) {
                bail!(
                    "the forward returned {} rows for a block of {b} (vocabulary {})",
                    rows.len(),
                    limits.vocab_size
                );
            }
            let picks = pick_rows(p, &rows, &mut rng);
            let forward_ms = tf.elapsed().as_secs_f64() * 1e3;
            let policy_rows: Vec<Row> = (0..b)
                .map(|i| Row {
                    token: picks[i].token,
                    p: picks[i].p,
                    p_current: if active[i] { 0.0 } else { prob_of(&picks[i], &rows[i], before[i]) },
                })
                .collect();
            let plan = plan_step(p, start, first_gen, &before, &policy_rows, &mut remask_state);

            let mut commits = Vec::new();
            let mut edits = Vec::new();
            let mut remasks = Vec::new();
            for i in 0..b {
                let pos = start + i;
                if let Some(kind) = plan.commit[i] {
                    canvas[pos] = picks[i].token;
                    commits.push(Commit { pos, token: picks[i].token, p: picks[i].p, kind });
                } else if plan.edit[i] {
                    canvas[pos] = picks[i].token;
                    edits.push(Edit { pos, from: before[i], to: picks[i].token, p: picks[i].p });
                } else if let Some(r) = &plan.remask[i] {
                    canvas[pos] = p.mask_id;
                    remasks.push(r.clone());
                }
            }
            let positions = if p.record_positions {
                (0..b)
                    .map(|i| {
                        let decision = decision_of(&plan, i, start + i < prompt_len, active[i]);
                        record(p, &picks[i], &rows[i], before[i], active[i], decision)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let step = StepTrace {
                step: steps,
                forward: forward_calls - 1,
                post_step_counter: post_steps,
                before,
                after: canvas[start..window_end].to_vec(),
                commits,
                edits,
                remasks,
                positions,
                forward_ms,
            };
            // A remask, like an edit, means the block is not settled.
            let settled = step.edits.is_empty() && step.remasks.is_empty();
            trace.push_step(block, start, step);
            steps += 1;
            let step = trace.blocks.last().and_then(|b| b.steps.last()).expect("the step just pushed");
            let flow = on_event(DecodeEvent::Step { block, block_start: start, num_blocks, step });
            if flow.is_break() {
                cancelled = true;
                break 'blocks;
            }
            if !any_mask && settled {
                ended_by = BlockEnd::NoEditAfterFill;
                break;
            }
        }
        trace.end_block(block, start, ended_by);
        let _ = on_event(DecodeEvent::BlockEnd { block, block_start: start, ended_by });
        if p.eos_early_stop {
            let generated = &canvas[prompt_len..window_end];
            if !generated.contains(&p.mask_id) && generated.contains(&p.eos_id) {
                stopped_early = true;
                break;
            }
        }
    }

    debug_assert_eq!(trace.final_canvas, canvas, "the trace's canvas follows the decode's");
    trace.finish(stopped_early, cancelled, t0.elapsed().as_secs_f64() * 1e3);
    Ok(trace)
}

/// Refuses parameters, prompts and lengths the model cannot run, before anything is allocated.
pub fn check_run(p: &DecodeParams, prompt_ids: &[u32], limits: Limits) -> Result<()> {
    p.validate(limits.vocab_size)?;
    if prompt_ids.is_empty() {
        bail!("the prompt is empty");
    }
    if let Some((i, &id)) = prompt_ids.iter().enumerate().find(|(_, id)| **id as usize >= limits.vocab_size) {
        bail!("prompt token {id} at index {i} is outside the vocabulary (size {})", limits.vocab_size);
    }
    let b = p.block_length;
    let prompt_len = prompt_ids.len();
    let total = (prompt_len.saturating_add(p.gen_length)).div_ceil(b).saturating_mul(b);
    if total > limits.max_positions {
        bail!(
            "prompt ({prompt_len}) + gen_length ({}) padded to blocks of {b} is {total} positions; the model has {} (max_position_embeddings)",
            p.gen_length,
            limits.max_positions
        );
    }
    Ok(())
}

/// The recorded decision of block offset `i`.
fn decision_of(plan: &Plan, i: usize, prompt: bool, is_mask: bool) -> Decision {
    if prompt {
        Decision::Prompt
    } else if let Some(k) = plan.commit[i] {
        if k == CommitKind::Threshold { Decision::Commit } else { Decision::CommitFallback }
    } else if plan.edit[i] {
        Decision::Edit
    } else if plan.remask[i].is_some() {
        Decision::Remask
    } else if is_mask {
        Decision::Hold
    } else {
        Decision::Keep
    }
}

/// Probability of `token` in the distribution `pick` came from (the row's softmax at
/// temperature 0, as the reference's `softmax(logits)[token]`).
fn prob_of(pick: &RowPick, logits: &[f32], token: u32) -> f32 {
    match &pick.dist {
        Dist::Softmax { max, sum } => {
            logits.get(token as usize).map(|&l| (((l - max) as f64).exp() / sum) as f32).unwrap_or(0.0)
        }
        Dist::Probs(probs) => probs.get(token as usize).copied().unwrap_or(0.0),
    }
}

fn record(
    p: &DecodeParams,
    pick: &RowPick,
    logits: &[f32],
    current: u32,
    is_mask: bool,
    decision: Decision,
) -> PositionRecord {
    let k = p.record_top_k;
    let top = match &pick.dist {
        Dist::Softmax { max, sum } => {
            let prob = |l: f32| (((l - max) as f64).exp() / sum) as f32;
            top_k(logits, k).into_iter().map(|(t, l)| (t, prob(l))).collect()
        }
        Dist::Probs(probs) => top_k(probs, k),
    };
    PositionRecord {
        argmax: pick.token,
        p: pick.p,
        p_current: if is_mask { 0.0 } else { prob_of(pick, logits, current) },
        top,
        decision,
    }
}

/// [`pick`] for every row of the block. Greedy picks draw no random number, so they are
/// spread over candle's pool (each row's softmax sum is a scan of the whole vocabulary: a few
/// percent of a cached step, serial before); sampled rows keep their order on the one
/// generator.
fn pick_rows(p: &DecodeParams, rows: &[Vec<f32>], rng: &mut rand_chacha::ChaCha8Rng) -> Vec<RowPick> {
    if p.temperature != 0.0 || candle_core::utils::get_num_threads() < 2 {
        return rows.iter().map(|r| pick(p, r, rng)).collect();
    }
    let slots: Vec<std::sync::OnceLock<RowPick>> = rows.iter().map(|_| std::sync::OnceLock::new()).collect();
    candle_core::utils::barrier_pool().execute_chunked(rows.len(), |range| {
        for i in range {
            let _ = slots[i].set(greedy(p, &rows[i]));
        }
    });
    slots.into_iter().zip(rows).map(|(s, r)| s.into_inner().unwrap_or_else(|| greedy(p, r))).collect()
}

/// The temperature-0 pick: the argmax and its softmax probability.
fn greedy(p: &DecodeParams, logits: &[f32]) -> RowPick {
    // First maximum wins ties, as torch.argmax. The mask token is never a candidate:
    // committing it would leave the position masked and the block could never end
    // (an untrained model does predict it; the official code would loop forever).
    let mask = p.mask_id as usize;
    let (mut best, mut best_l) = (usize::MAX, f32::NEG_INFINITY);
    let mut max = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        max = max.max(l);
        if i != mask && (best == usize::MAX || l > best_l) {
            best = i;
            best_l = l;
        }
    }
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let p_best = (((best_l - max) as f64).exp() / sum) as f32;
    RowPick { token: best as u32, p: p_best, dist: Dist::Softmax { max, sum } }
}

/// Official `_sample_with_temperature_topk_topp` for one row (the mask token excluded).
fn pick(p: &DecodeParams, logits: &[f32], rng: &mut rand_chacha::ChaCha8Rng) -> RowPick {
    if p.temperature == 0.0 {
        return greedy(p, logits);
    }
    let mut scaled: Vec<f32> = logits.iter().map(|&l| l / p.temperature).collect();
    if let Some(m) = scaled.get_mut(p.mask_id as usize) {
        *m = f32::NEG_INFINITY;
    }
    if let Some(k) = p.top_k
        && k < scaled.len()
    {
        let mut sorted = scaled.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[k - 1];
        for l in scaled.iter_mut() {
            if *l < kth {
                *l = f32::NEG_INFINITY;
            }
        }
    }
    if let Some(top_p) = p.top_p
        && top_p < 1.0
    {
        let probs = softmax(&scaled);
        let mut order: Vec<usize> = (0..scaled.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let mut cum = 0.0f32;
        let mut keep = vec![false; scaled.len()];
        for &i in &order {
            // Official: drop a token once the mass before it already exceeds top_p.
            keep[i] = cum <= top_p;
            cum += probs[i];
        }
        for (l, k) in scaled.iter_mut().zip(keep) {
            if !k {
                *l = f32::NEG_INFINITY;
            }
        }
    }
    let probs = softmax(&scaled);
    let u: f32 = rng.random();
    let mut acc = 0.0f32;
    let mut token = probs.iter().rposition(|&q| q > 0.0).unwrap_or(0);
    for (i, &q) in probs.iter().enumerate() {
        acc += q;
        if u < acc {
            token = i;
            break;
        }
    }
    RowPick { token: token as u32, p: probs[token], dist: Dist::Probs(probs) }
}

/// Softmax with an f64 accumulator (matches torch's f32 softmax to ~1e-7).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// The `k` largest values (probabilities or logits) with their ids, largest first (ties:
/// lower id first).
pub fn top_k(probs: &[f32], k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (i, &p) in probs.iter().enumerate() {
        if best.len() == k && p <= best[k - 1].1 {
            continue;
        }
        let at = best.iter().position(|&(_, q)| p > q).unwrap_or(best.len());
        best.insert(at, (i as u32, p));
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_probability_then_id() {
        assert_eq!(top_k(&[0.1, 0.5, 0.1, 0.3], 3), vec![(1, 0.5), (3, 0.3), (0, 0.1)]);
    }

    #[test]
    fn the_mask_token_is_never_a_candidate_even_when_most_likely() {
        let mut p = DecodeParams::preset(super::super::Mode::Q, 0, 2);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let r = pick(&p, &[1.0, 2.0, 9.0, 3.0], &mut rng);
        assert_eq!(r.token, 3);
        let want = softmax(&[1.0, 2.0, 9.0, 3.0])[3];
        assert!((r.p - want).abs() < 1e-6);
        p.temperature = 1.0;
        for _ in 0..50 {
            assert_ne!(pick(&p, &[1.0, 2.0, 9.0, 3.0], &mut rng).token, 2);
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        let s: f32 = softmax(&[1.0, 2.0, 3.0]).iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
    }
}

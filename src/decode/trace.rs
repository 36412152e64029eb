//! The decoding as data: every step's decisions with the numbers behind them, enough to
//! answer "why did this token change?" without rerunning the model. Schema: `docs/trace.md`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::params::{AttentionMode, DecodeParams, EditPolicy, RemaskStrategy};

/// Bumped on any schema change; loaders read [`OLDEST_TRACE_VERSION`]..=this and refuse others.
/// Version 2 added T2M: `remasks` per step, the `remask` decision and the `edit_policy` and
/// `remask_*` parameters (all defaulted, so a version-1 trace reads as a T2T decode).
pub const TRACE_VERSION: u32 = 2;
/// The oldest version this build still reads.
pub const OLDEST_TRACE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub version: u32,
    /// Model id as resolved (`embedded:…`, a directory, or a hub repo id).
    pub model: String,
    #[serde(default)]
    pub adapter: Option<String>,
    pub params: DecodeParams,
    pub attention: AttentionMode,
    /// Prompt text when the prompt was given as text.
    #[serde(default)]
    pub prompt: Option<String>,
    pub prompt_ids: Vec<u32>,
    /// What `generate()` returns: generated ids cut after the first EOS (EOS included).
    pub output: Vec<u32>,
    pub forward_calls: usize,
    pub stopped_early: bool,
    #[serde(default)]
    pub cancelled: bool,
    pub blocks: Vec<BlockTrace>,
    /// Final canvas (prompt + every processed block; unprocessed blocks stay mask).
    pub final_canvas: Vec<u32>,
    pub wall_ms: f64,
    /// Display text of every token id the trace mentions (empty without a tokenizer), so a
    /// trace opens with no model.
    #[serde(default)]
    pub token_text: BTreeMap<u32, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockTrace {
    pub block: usize,
    /// Absolute canvas position of the block's first token.
    pub start: usize,
    /// Forward input is `canvas[0..window_end]`.
    pub window_end: usize,
    pub ended_by: BlockEnd,
    pub steps: Vec<StepTrace>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockEnd {
    /// The block had no mask at step start and the step made no edit.
    NoEditAfterFill,
    /// `post_steps` exceeded `max_post_steps`.
    MaxPostSteps,
    /// The user cancelled the decode.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTrace {
    /// Step within the block.
    pub step: usize,
    /// Index of this step's forward call in the whole decode.
    pub forward: usize,
    /// The official `post_steps` value during this step.
    pub post_step_counter: usize,
    /// Block tokens before and after the step's update.
    pub before: Vec<u32>,
    pub after: Vec<u32>,
    pub commits: Vec<Commit>,
    pub edits: Vec<Edit>,
    /// T2M: committed tokens reset to the mask this step (empty under T2T).
    #[serde(default)]
    pub remasks: Vec<Remask>,
    /// One record per block position (empty when recording is off).
    #[serde(default)]
    pub positions: Vec<PositionRecord>,
    #[serde(default)]
    pub forward_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitKind {
    /// p > threshold.
    Threshold,
    /// No mask cleared the threshold; the most confident one(s) were taken.
    Fallback,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// Absolute canvas position.
    pub pos: usize,
    pub token: u32,
    pub p: f32,
    pub kind: CommitKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    pub pos: usize,
    pub from: u32,
    pub to: u32,
    pub p: f32,
}

/// A committed token reset to the mask by T2M, with the numbers the strategy read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remask {
    pub pos: usize,
    /// The token that was reset.
    pub from: u32,
    /// Its probability at this step.
    pub p_current: f32,
    /// The step's candidate at the position and its probability.
    pub argmax: u32,
    pub p: f32,
    /// `logit_diff`: p(from) at the previous step.
    #[serde(default)]
    pub p_prev: Option<f32>,
    /// The strategy's score; the per-step cap keeps the lowest (`low_prob`: p(from);
    /// `t2t_remask`: 1 − p(argmax); `logit_diff`: −|Δp|).
    pub score: f32,
    /// This is the position's n-th remask in the decode (1-based).
    pub nth: usize,
}

/// What the step decided for one block position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Prompt,
    Commit,
    CommitFallback,
    Edit,
    /// A committed token reset to the mask (T2M).
    Remask,
    /// A mask left masked (below threshold).
    Hold,
    /// A committed token left as it is.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionRecord {
    /// The (sampled, at temperature > 0) candidate token and its probability.
    pub argmax: u32,
    pub p: f32,
    /// Probability of the token at this position before the step (0 for a mask).
    pub p_current: f32,
    /// Top-k alternatives `[token, p]`, most likely first.
    pub top: Vec<(u32, f32)>,
    pub decision: Decision,
}

/// What the decoder reports while it runs (DESIGN.md §2: model → decoder → trace). The
/// callback may stop a decode by answering `ControlFlow::Break` to a `Step`.
#[derive(Debug, Clone, Copy)]
pub enum DecodeEvent<'a> {
    /// The decode began: the trace head (parameters, prompt, canvas of masks, no block).
    Start { trace: &'a Trace },
    /// One step of block `block` (canvas position `block_start`), of `num_blocks` in all.
    Step { block: usize, block_start: usize, num_blocks: usize, step: &'a StepTrace },
    /// Block `block` ended (not sent for a block cut short by a cancel).
    BlockEnd { block: usize, block_start: usize, ended_by: BlockEnd },
    /// The whole trace, finished (with the model, prompt and token texts filled in).
    Done { trace: &'a Trace },
}

/// The trace builder: the only code that assembles a trace. The decoder starts a head and
/// applies its steps and block ends to it as they happen; the workbench applies the same
/// events, streamed from its model thread, to its live copy. So a live trace and the final
/// one agree step for step by construction.
impl Trace {
    /// A trace with no step yet: `prompt_ids` followed by masks up to whole blocks.
    pub fn start(params: DecodeParams, attention: AttentionMode, prompt_ids: &[u32]) -> Trace {
        let b = params.block_length.max(1);
        let total = (prompt_ids.len() + params.gen_length).div_ceil(b) * b;
        let mut canvas = vec![params.mask_id; total];
        canvas[..prompt_ids.len()].copy_from_slice(prompt_ids);
        Trace {
            version: TRACE_VERSION,
            model: String::new(),
            adapter: None,
            params,
            attention,
            prompt: None,
            prompt_ids: prompt_ids.to_vec(),
            output: Vec::new(),
            forward_calls: 0,
            stopped_early: false,
            cancelled: false,
            blocks: Vec::new(),
            final_canvas: canvas,
            wall_ms: 0.0,
            token_text: BTreeMap::new(),
        }
    }

    /// Appends a step of block `block`; the block opens (ended by `cancelled` until its end
    /// arrives) on its first step. The canvas takes the step's result.
    pub fn push_step(&mut self, block: usize, block_start: usize, step: StepTrace) {
        self.open_block(block, block_start);
        if let Some(dst) = self.final_canvas.get_mut(block_start..block_start + step.after.len()) {
            dst.copy_from_slice(&step.after);
        }
        self.forward_calls = step.forward + 1;
        if let Some(b) = self.blocks.last_mut() {
            b.steps.push(step);
        }
    }

    /// Records how block `block` ended.
    pub fn end_block(&mut self, block: usize, block_start: usize, ended_by: BlockEnd) {
        self.open_block(block, block_start);
        if let Some(b) = self.blocks.last_mut() {
            b.ended_by = ended_by;
        }
    }

    fn open_block(&mut self, block: usize, start: usize) {
        if self.blocks.last().is_none_or(|l| l.block != block) {
            let window_end = start + self.params.block_length;
            self.blocks.push(BlockTrace {
                block,
                start,
                window_end,
                ended_by: BlockEnd::Cancelled,
                steps: vec![],
            });
        }
    }

    /// Closes the trace: the output is the generated part of the canvas cut after the first
    /// EOS (EOS included), as `generate()` returns it.
    pub fn finish(&mut self, stopped_early: bool, cancelled: bool, wall_ms: f64) {
        let p0 = self.prompt_ids.len();
        let end = (p0 + self.params.gen_length).min(self.final_canvas.len());
        let mut output = self.final_canvas[p0.min(end)..end].to_vec();
        if let Some(eos) = output.iter().position(|&t| t == self.params.eos_id) {
            output.truncate(eos + 1);
        }
        self.output = output;
        self.stopped_early = stopped_early;
        self.cancelled = cancelled;
        self.wall_ms = wall_ms;
    }

    /// The spec that re-runs this decode exactly (on a model with the same special ids).
    pub fn spec(&self) -> super::spec::DecodeSpec {
        super::spec::DecodeSpec::of(&self.params, self.attention)
    }
}

impl Trace {
    pub fn generated_tokens(&self) -> usize {
        self.output.len()
    }

    pub fn edit_count(&self) -> usize {
        self.blocks.iter().flat_map(|b| &b.steps).map(|s| s.edits.len()).sum()
    }

    /// T2T edits per 100 generated tokens.
    pub fn edits_per_100(&self) -> f64 {
        per_100(self.edit_count(), self.output.len())
    }

    pub fn remask_count(&self) -> usize {
        self.blocks.iter().flat_map(|b| &b.steps).map(|s| s.remasks.len()).sum()
    }

    /// T2M remasks per 100 generated tokens (remask intensity).
    pub fn remasks_per_100(&self) -> f64 {
        per_100(self.remask_count(), self.output.len())
    }

    /// Generated tokens per forward call.
    pub fn tokens_per_forward(&self) -> f64 {
        if self.forward_calls == 0 { 0.0 } else { self.output.len() as f64 / self.forward_calls as f64 }
    }

    /// One-line summary, as `decode` prints it.
    /// Under T2M the edit count gives way to the remask count and the strategy.
    pub fn summary(&self) -> String {
        let changes = match self.params.edit_policy {
            EditPolicy::T2t => {
                format!("{} T2T edits ({:.1} per 100 tokens)", self.edit_count(), self.edits_per_100())
            }
            EditPolicy::T2m => format!(
                "{} T2M remasks ({:.1} per 100 tokens, {} τ={:.2})",
                self.remask_count(),
                self.remasks_per_100(),
                self.params.remask_strategy.label(),
                self.params.remask_threshold
            ),
        };
        format!(
            "{} tokens, {} forwards, {:.2} tokens/forward, {changes}, {:.0} ms [{}]",
            self.generated_tokens(),
            self.forward_calls,
            self.tokens_per_forward(),
            self.wall_ms,
            self.attention.label()
        )
    }

    pub fn text_of(&self, id: u32) -> String {
        if id == self.params.mask_id {
            return "▒".into();
        }
        self.token_text.get(&id).cloned().unwrap_or_else(|| format!("<{id}>"))
    }

    /// Writes atomically (temp file + rename) so a crash never leaves half a trace.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self)?;
        crate::session::atomic_write(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read trace {}", path.display()))?;
        Self::from_slice(&bytes).with_context(|| format!("{}: not a draftscope trace", path.display()))
    }

    /// Parses once on the happy path (large traces stay fast to open); only a failed parse
    /// probes the version, to say "wrong version" rather than "missing field".
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            version: Option<u32>,
        }
        let check = |v: Option<u32>| match v {
            Some(v) if (OLDEST_TRACE_VERSION..=TRACE_VERSION).contains(&v) => Ok(()),
            Some(v) => bail!(
                "trace version {v} is not supported (this build reads versions {OLDEST_TRACE_VERSION} to {TRACE_VERSION})"
            ),
            None => bail!("field `version` is missing"),
        };
        match serde_json::from_slice::<Trace>(bytes) {
            Ok(t) => {
                check(Some(t.version))?;
                t.validate()?;
                Ok(t)
            }
            Err(e) => {
                let probe: Probe = serde_json::from_slice(bytes).map_err(|_| anyhow::anyhow!("{e}"))?;
                check(probe.version)?;
                Err(anyhow::anyhow!("{e}"))
            }
        }
    }

    /// Explains one position's change at one step in a sentence built from the numbers.
    pub fn why(&self, block: usize, step: usize, offset: usize) -> Option<String> {
        let b = self.blocks.get(block)?;
        let s = b.steps.get(step)?;
        let rec = s.positions.get(offset)?;
        let pos = b.start + offset;
        let t = |id: u32| self.text_of(id);
        let p = &self.params;
        Some(match rec.decision {
            Decision::Prompt => format!("prompt token {} (never edited)", t(s.before[offset])),
            Decision::Commit => format!(
                "commit {} at step {step}: p={:.2} > {:.2} threshold",
                t(rec.argmax),
                rec.p,
                p.threshold
            ),
            Decision::CommitFallback => format!(
                "fallback commit {} at step {step}: no mask cleared {:.2}; this was the most confident (p={:.2})",
                t(rec.argmax),
                p.threshold,
                rec.p
            ),
            Decision::Edit => {
                let from = s.before[offset];
                let history = self.history(block, offset);
                let peak = history
                    .iter()
                    .filter(|h| h.token == from && h.step < step)
                    .max_by(|a, b| a.p_current.total_cmp(&b.p_current));
                let fell = match peak {
                    Some(h) => format!(
                        "; p({}) fell from {:.2} (step {}) to {:.2}",
                        t(from),
                        h.p_current,
                        h.step,
                        rec.p_current
                    ),
                    None => format!("; p({})={:.2}", t(from), rec.p_current),
                };
                format!(
                    "edit {}→{} at step {step}: p({})={:.2} > {:.2} editing threshold{fell}",
                    t(from),
                    t(rec.argmax),
                    t(rec.argmax),
                    rec.p,
                    p.editing_threshold
                )
            }
            Decision::Remask => match s.remasks.iter().find(|r| r.pos == pos) {
                Some(r) => self.remask_why(r, step),
                None => format!("remask {} at step {step}", t(s.before[offset])),
            },
            Decision::Hold => format!(
                "hold mask at pos {pos}: best {} p={:.2} ≤ {:.2} threshold",
                t(rec.argmax),
                rec.p,
                p.threshold
            ),
            Decision::Keep if p.edit_policy == EditPolicy::T2m => self.keep_t2m_why(block, step, offset),
            Decision::Keep => {
                let cur = s.before[offset];
                if rec.argmax == cur {
                    format!("keep {}: still the argmax (p={:.2})", t(cur), rec.p)
                } else {
                    format!(
                        "keep {}: argmax {} p={:.2} ≤ {:.2} editing threshold (p({})={:.2})",
                        t(cur),
                        t(rec.argmax),
                        rec.p,
                        p.editing_threshold,
                        t(cur),
                        rec.p_current
                    )
                }
            }
        })
    }

    /// "remask 7 at step 9: p(7)=0.21 < 0.50" and the strategy's other forms.
    fn remask_why(&self, r: &Remask, step: usize) -> String {
        let t = |id: u32| self.text_of(id);
        let tau = self.params.remask_threshold;
        let reason = match self.params.remask_strategy {
            RemaskStrategy::LowProb => format!("p({})={:.2} < {tau:.2}", t(r.from), r.p_current),
            RemaskStrategy::T2tRemask => {
                format!(
                    "argmax {} p={:.2} > {tau:.2} (the T2T condition; p({})={:.2})",
                    t(r.argmax),
                    r.p,
                    t(r.from),
                    r.p_current
                )
            }
            RemaskStrategy::LogitDiff => format!(
                "p({}) moved {:.2} → {:.2} since the previous step (|Δ|={:.2} > {tau:.2})",
                t(r.from),
                r.p_prev.unwrap_or(f32::NAN),
                r.p_current,
                (r.p_current - r.p_prev.unwrap_or(f32::NAN)).abs()
            ),
        };
        let nth = if r.nth > 1 {
            format!(" (remask {} of at most {})", r.nth, self.params.max_remask_per_pos)
        } else {
            String::new()
        };
        format!("remask {} at step {step}: {reason}{nth}", t(r.from))
    }

    /// Why T2M kept a committed token: the strategy did not pick it, or a guard held it.
    fn keep_t2m_why(&self, block: usize, step: usize, offset: usize) -> String {
        let b = &self.blocks[block];
        let s = &b.steps[step];
        let rec = &s.positions[offset];
        let p = &self.params;
        let cur = s.before[offset];
        let tc = self.text_of(cur);
        let tau = p.remask_threshold;
        let done =
            b.steps[..step].iter().flat_map(|s| &s.remasks).filter(|r| r.pos == b.start + offset).count();
        let qualifies = match p.remask_strategy {
            RemaskStrategy::LowProb => rec.p_current < tau,
            RemaskStrategy::T2tRemask => rec.argmax != cur && rec.p > tau,
            RemaskStrategy::LogitDiff => {
                self.prev_p(block, step, offset).is_some_and(|q| (rec.p_current - q).abs() > tau)
            }
        };
        if done >= p.max_remask_per_pos && qualifies {
            return format!("keep {tc}: already remasked {done} times (max {})", p.max_remask_per_pos);
        }
        if qualifies {
            return format!(
                "keep {tc}: qualified for remask, but the step cap ({:.0}% of editable positions) took lower scores",
                100.0 * p.max_remask_ratio
            );
        }
        match p.remask_strategy {
            RemaskStrategy::LowProb => {
                format!("keep {tc}: p({tc})={:.2} ≥ {tau:.2} remask threshold", rec.p_current)
            }
            RemaskStrategy::T2tRemask if rec.argmax == cur => {
                format!("keep {tc}: still the argmax (p={:.2})", rec.p)
            }
            RemaskStrategy::T2tRemask => format!(
                "keep {tc}: argmax {} p={:.2} ≤ {tau:.2} remask threshold",
                self.text_of(rec.argmax),
                rec.p
            ),
            RemaskStrategy::LogitDiff => match self.prev_p(block, step, offset) {
                Some(q) => {
                    format!("keep {tc}: p({tc}) moved {q:.2} → {:.2}, not more than {tau:.2}", rec.p_current)
                }
                None => format!("keep {tc}: no previous step to compare p({tc})={:.2} with", rec.p_current),
            },
        }
    }

    /// The probability the previous step gave the token a position holds at `step` (what
    /// `logit_diff` compares with): the fill's p if it was committed then, else p(current).
    fn prev_p(&self, block: usize, step: usize, offset: usize) -> Option<f32> {
        let prev = self.blocks.get(block)?.steps.get(step.checked_sub(1)?)?;
        let r = prev.positions.get(offset)?;
        match r.decision {
            Decision::Commit | Decision::CommitFallback | Decision::Edit => Some(r.p),
            Decision::Keep => Some(r.p_current),
            Decision::Prompt | Decision::Remask | Decision::Hold => None,
        }
    }

    /// A position's numbers at every step of its block (for sparklines and "why").
    pub fn history(&self, block: usize, offset: usize) -> Vec<HistoryPoint> {
        let Some(b) = self.blocks.get(block) else { return Vec::new() };
        b.steps
            .iter()
            .filter_map(|s| {
                let r = s.positions.get(offset)?;
                Some(HistoryPoint {
                    step: s.step,
                    token: s.before[offset],
                    p_current: r.p_current,
                    argmax: r.argmax,
                    p: r.p,
                    decision: r.decision,
                })
            })
            .collect()
    }
}

fn per_100(n: usize, tokens: usize) -> f64 {
    if tokens == 0 { 0.0 } else { 100.0 * n as f64 / tokens as f64 }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    pub step: usize,
    /// Token at the position before the step.
    pub token: u32,
    pub p_current: f32,
    pub argmax: u32,
    pub p: f32,
    pub decision: Decision,
}

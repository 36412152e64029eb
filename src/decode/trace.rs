//! The decoding as data: every step's decisions with the numbers behind them, enough to
//! answer "why did this token change?" without rerunning the model. Schema: `docs/trace.md`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::params::{AttentionMode, DecodeParams};

/// Bumped on any incompatible schema change; loaders refuse other versions.
pub const TRACE_VERSION: u32 = 1;

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

/// What the step decided for one block position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Prompt,
    Commit,
    CommitFallback,
    Edit,
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

impl Trace {
    pub fn generated_tokens(&self) -> usize {
        self.output.len()
    }

    pub fn edit_count(&self) -> usize {
        self.blocks.iter().flat_map(|b| &b.steps).map(|s| s.edits.len()).sum()
    }

    /// T2T edits per 100 generated tokens.
    pub fn edits_per_100(&self) -> f64 {
        if self.output.is_empty() { 0.0 } else { 100.0 * self.edit_count() as f64 / self.output.len() as f64 }
    }

    /// Generated tokens per forward call.
    pub fn tokens_per_forward(&self) -> f64 {
        if self.forward_calls == 0 { 0.0 } else { self.output.len() as f64 / self.forward_calls as f64 }
    }

    /// One-line summary, as `decode` prints it.
    pub fn summary(&self) -> String {
        format!(
            "{} tokens, {} forwards, {:.2} tokens/forward, {} T2T edits ({:.1} per 100 tokens), {:.0} ms [{}]",
            self.generated_tokens(),
            self.forward_calls,
            self.tokens_per_forward(),
            self.edit_count(),
            self.edits_per_100(),
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
            Some(TRACE_VERSION) => Ok(()),
            Some(v) => bail!("trace version {v} is not supported (this build reads version {TRACE_VERSION})"),
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
            Decision::Hold => format!(
                "hold mask at pos {pos}: best {} p={:.2} ≤ {:.2} threshold",
                t(rec.argmax),
                rec.p,
                p.threshold
            ),
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
